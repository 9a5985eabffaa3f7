"""The PyPI pacsys client's DMQ backend, unchanged, against the simulated DMQ: read, stream, write.

pacsys asks for the lab's service principal ``daeset/bd/dmq.fnal.gov@FNAL.GOV``
whatever broker it reaches; the session KDC knows it and its keytab holds
it, beside ``daeset/bd/localhost`` (ours), and the simulator accepts a ticket
for any principal in its keytab. Each test has its own simulator: two on one
broker would both answer every INIT.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from acnet_proto.status import Status
from tests.support.servers.kdc import KDC
from tests.support.servers.rabbitmq import RabbitMQ

pytest.importorskip("pika")
pytest.importorskip("gssapi")
pacsys = pytest.importorskip("pacsys")
from pacsys.backends.dmq import DMQ_SERVICE_PRINCIPAL  # noqa: E402

from acnet_proto.adapters.sim.dmq import DMQSimServer  # noqa: E402
from acnet_proto.sim.devices import SimDevice  # noqa: E402

pytestmark = pytest.mark.integration

DPM_PRIV = Status.from_name("DPM_PRIV")
T = 10.0  # generous: a failure must fail, never hang, on a loaded machine


def device(sim: DMQSimServer, name: str) -> SimDevice:
    found = sim.model.device(name)
    assert found is not None, name
    return found


@pytest.fixture
def sim(rabbitmq: RabbitMQ, kdc: KDC) -> Iterator[DMQSimServer]:
    with DMQSimServer(rabbitmq.url, keytab=kdc.keytab) as server:
        yield server


@pytest.fixture
def theirs(sim: DMQSimServer, rabbitmq: RabbitMQ) -> Iterator[Any]:
    with pacsys.dmq(
        host=rabbitmq.host, port=rabbitmq.port, auth=pacsys.KerberosAuth(), timeout=T
    ) as backend:
        yield backend


def test_pacsys_asks_for_the_labs_principal_which_the_keytab_holds(kdc: KDC) -> None:
    assert DMQ_SERVICE_PRINCIPAL == "daeset/bd/dmq.fnal.gov@FNAL.GOV"
    assert DMQ_SERVICE_PRINCIPAL in kdc.services.values()


def test_pacsys_reads_what_the_model_says(theirs: Any, sim: DMQSimServer) -> None:
    reading = theirs.get("M:OUTTMP")
    assert reading.ok
    expected = device(sim, "M:OUTTMP").reading(reading.timestamp.timestamp())[0]
    assert reading.value == pytest.approx(expected, abs=1e-3)
    assert theirs.read("Z:STRTST") == "the quick brown fox"
    array = theirs.get("Z:ACLTS1[0:2]")
    elements = device(sim, "Z:ACLTS1").reading(array.timestamp.timestamp())[0:3]
    assert list(array.value) == pytest.approx(elements, abs=1e-3)


def test_pacsys_streams_at_the_period_asked(theirs: Any) -> None:
    readings = []
    with theirs.subscribe(["M:OUTTMP@p,100"]) as handle:
        for reading, _ in handle.readings(timeout=T):
            readings.append(reading)
            if len(readings) == 6:
                break
    assert all(r.ok for r in readings)
    stamps = [r.timestamp.timestamp() for r in readings]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 0.49  # 5 periods of 100 ms


def test_pacsys_streams_to_a_callback(theirs: Any) -> None:
    seen: list[Any] = []
    enough = threading.Event()

    def on_reading(reading: Any, handle: Any) -> None:
        seen.append(reading)
        if len(seen) == 3:
            enough.set()

    handle = theirs.subscribe(["Z:ACLTS1[1]@p,100"], callback=on_reading)
    try:
        assert enough.wait(T)
    finally:
        handle.stop()
    assert all(r.ok for r in seen[:3]), seen[:3]
    assert all(isinstance(r.value, float) and r.drf == "Z:ACLTS1[1]@p,100" for r in seen[:3])


def test_pacsys_writes_a_z_device_and_reads_it_back(theirs: Any, sim: DMQSimServer) -> None:
    result = theirs.write("Z:ACLTST", 46.5)
    assert result.success, (result.error_code, result.message)
    assert device(sim, "Z:ACLTST").setting == [46.5]
    assert theirs.read("Z:ACLTST.SETTING") == pytest.approx(46.5)


def test_pacsys_is_refused_a_device_the_policy_keeps(theirs: Any, sim: DMQSimServer) -> None:
    before = device(sim, "G:AMANDA").setting
    result = theirs.write("G:AMANDA", "changed")
    assert not result.success
    assert Status(result.facility_code, result.error_code) == DPM_PRIV
    assert device(sim, "G:AMANDA").setting == before
