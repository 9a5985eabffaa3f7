"""The PyPI pacsys client, unchanged, against the simulated DPM: read, get_many, subscribe."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pacsys
import pytest
from pacsys.errors import DeviceError

from acnet_proto.adapters.sim.dpm import SimServer

pytestmark = pytest.mark.integration

DEADLINE = 10.0


@pytest.fixture(scope="module")
def backend(sim: SimServer) -> Iterator[object]:
    with pacsys.dpm(host=sim.host, port=sim.port, timeout=DEADLINE) as b:
        yield b


def test_read(backend: object) -> None:
    value = backend.read("M:OUTTMP")
    assert isinstance(value, float)
    assert 41.7 - 0.3 <= value <= 41.7 + 0.3


def test_reads_reuse_pooled_connections(backend: object) -> None:
    # each read leaves its connection with StopList + ClearList for the next
    values = [backend.read("Z:ACLTS1[2]") for _ in range(8)]
    assert all(2.5 <= v <= 3.5 for v in values)


def test_get_carries_the_device_metadata(backend: object) -> None:
    reading = backend.get("M:OUTTMP")
    assert reading.ok
    meta = reading.meta
    assert (meta.device_index, meta.name, meta.description, meta.units) == (
        27235,
        "M:OUTTMP",
        "Outdoor temperature",
        "DegF",
    )


def test_read_of_a_missing_device_raises_the_dpm_status(backend: object) -> None:
    with pytest.raises(DeviceError) as info:
        backend.read("Z:NOTFND")
    # DPM_PEND, a warning with no data: what the lab's DPM answers (pacsys's tests/real)
    assert (info.value.facility_code, info.value.error_code) == (17, 1)


def test_get_many_of_every_kind_with_a_failure_in_the_middle(backend: object) -> None:
    drfs = [
        "M:OUTTMP",
        "Z:NOTFND",
        "Z:ACLTS1[0:3]",
        "Z:STRTST",
        "Z:RAWTST{0:4}",
        "M:OUTTMP.RAW",
        "Z|ACLTST",
        "Z@ACLTST",
        "Z$ACLTST",
        "M~OUTTMP",
        "Z_ACLTST",
        "M_OUTTMP",
    ]
    readings = backend.get_many(drfs)
    assert [r.ok for r in readings] == [True, False] + [True] * 9 + [False]
    by_drf = {r.drf: r for r in readings}
    assert (by_drf["Z:NOTFND"].facility_code, by_drf["Z:NOTFND"].error_code) == (17, 1)
    assert by_drf["Z:NOTFND"].is_warning and by_drf["Z:NOTFND"].value is None
    assert (by_drf["M_OUTTMP"].facility_code, by_drf["M_OUTTMP"].error_code) == (16, -13)
    assert len(by_drf["Z:ACLTS1[0:3]"].value) == 4
    assert by_drf["Z:STRTST"].value == "the quick brown fox"
    assert by_drf["Z:RAWTST{0:4}"].value == bytes.fromhex("00112233")
    assert len(by_drf["M:OUTTMP.RAW"].value) == 2  # as at the lab (lab-devices.md)
    # Z:ACLTST has no remote bit, so its status has no "remote", as at the lab
    assert by_drf["Z|ACLTST"].value == {"on": True, "ready": True, "positive": True, "ramp": False}
    assert by_drf["Z@ACLTST"].value["maximum"] == 100.0
    assert by_drf["Z$ACLTST"].value["mask"] == 3
    assert by_drf["M~OUTTMP"].value == "Outdoor temperature"
    assert by_drf["Z_ACLTST"].value == 45.0


def test_get_many_of_two_thousand_devices(backend: object) -> None:
    drfs = [f"Z:SIM{i:04d}" for i in range(0, 10_000, 5)]
    readings = backend.get_many(drfs)
    assert [r.meta.name for r in readings] == drfs
    assert all(r.ok and isinstance(r.value, float) for r in readings)


def test_get_many_mixes_immediate_and_periodic(backend: object) -> None:
    readings = backend.get_many(["M:OUTTMP@I", "Z:SIM0001@p,100", "Z:SIM0002@e,02"])
    assert all(r.ok for r in readings)


def test_subscribe_with_a_callback(backend: object) -> None:
    got: list[object] = []
    enough = threading.Event()

    def on_reading(reading: object, handle: object) -> None:
        got.append(reading)
        if len(got) >= 5:
            enough.set()

    handle = backend.subscribe(["M:OUTTMP@p,100"], callback=on_reading)
    try:
        assert enough.wait(DEADLINE)
    finally:
        handle.stop()
    assert all(r.ok and r.drf == "M:OUTTMP@p,100" for r in got)
    assert handle.stopped


def test_subscribe_as_an_iterator_to_several_devices(backend: object) -> None:
    drfs = ["Z:SIM0010@p,50", "Z:ACLTS1[0:1]@e,02", "Z:NOTFND@p,100"]
    seen: dict[str, list[object]] = {d: [] for d in drfs}
    with backend.subscribe(drfs) as handle:
        for reading, _ in handle.readings(timeout=DEADLINE):
            seen[reading.drf].append(reading)
            if len(seen[drfs[0]]) >= 5 and len(seen[drfs[1]]) >= 3:
                break
    assert all(r.ok for r in seen[drfs[0]] + seen[drfs[1]])
    assert all(len(r.value) == 2 for r in seen[drfs[1]])
    # the missing device is reported, not silently dropped
    assert seen[drfs[2]] and all(r.error_code == 1 and not r.ok for r in seen[drfs[2]])
    assert handle.stopped
