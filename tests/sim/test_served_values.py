"""Raw and scaled values and raw alarm blocks over a real simulated DPM, read by the lab's client.

pacsys (PyPI, unchanged) reads through the simulator what its suite for the lab's
servers reads, and writes with Kerberos (the session KDC) as its lab tests do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.sim.scaling import dec_f_encode
from tests.support.servers.kdc import KDC

pacsys = pytest.importorskip("pacsys")
alarm_block = pytest.importorskip("pacsys.alarm_block")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bench(start_sim: Callable[..., SimServer]) -> SimServer:
    return start_sim()


@pytest.fixture(scope="module")
def theirs(bench: SimServer) -> Iterator[Any]:
    with pacsys.dpm(host=bench.host, port=bench.port) as backend:
        yield backend


def test_outtmp_raw_is_two_bytes_that_scale_to_the_reading(bench: SimServer, theirs: Any) -> None:
    raw, scaled = theirs.get_many(["M:OUTTMP.RAW@I", "M:OUTTMP.PRIMARY@I"], timeout=10)
    assert raw.ok and scaled.ok, (raw.message, scaled.message)
    assert isinstance(raw.value, bytes) and len(raw.value) == 2
    # a 2-byte reading at 3276.8 counts a volt, the primary value the lab's database states
    assert int.from_bytes(raw.value, "little", signed=True) / 3276.8 == pytest.approx(
        scaled.value, abs=0.01
    )


def test_h801_alarm_blocks_read_as_the_lab_s_client_reads_them(theirs: Any) -> None:
    analog = alarm_block.AnalogAlarm.read("N:H801", theirs)
    structured = theirs.get("N@H801", timeout=10)
    assert structured.ok, structured.message
    assert analog.value1 / 3276.8 == pytest.approx(structured.value["minimum"], rel=1e-6)
    assert analog.value2 / 3276.8 == pytest.approx(structured.value["maximum"], rel=1e-6)
    assert analog.tries_needed == structured.value["tries_needed"]
    digital = alarm_block.DigitalAlarm.read("N:H801", theirs)
    assert digital.mask == theirs.get("N$H801", timeout=10).value["mask"]


def test_a_missing_digital_alarm_is_dbm_noprop_before_its_range(theirs: Any) -> None:
    reading = theirs.get("M:OUTTMP.DIGITAL{0:20}.RAW", timeout=10)
    assert (reading.facility_code, reading.error_code) == (16, -13)


@pytest.fixture(scope="module")
def kerberos_bench(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    pytest.importorskip("gssapi")
    return start_sim(keytab=kdc.keytab)


def test_raw_block_and_dec_setting_written_by_the_lab_s_client(kerberos_bench: SimServer) -> None:
    with pacsys.dpm(
        host=kerberos_bench.host,
        port=kerberos_bench.port,
        auth=pacsys.KerberosAuth(),
        role="testing",
    ) as writer:
        block = alarm_block.AnalogAlarm.read("Z:ACLTST", writer)
        block.value2_raw = dec_f_encode(90.0)  # Z:ACLTST's limits are DEC F_floating
        assert block.write("Z:ACLTST", writer).success
        assert writer.get("Z@ACLTST.MAX", timeout=10).value == 90.0
        assert writer.write("Z:ACLTST", 12.5, timeout=10).success
        assert writer.read("Z:ACLTST.SETTING.RAW", timeout=10) == bytes.fromhex("48420000")
