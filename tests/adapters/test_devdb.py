"""DevDB: our client against the simulated service over real grpcio on loopback, the TTL cache
on an injected clock, Device.info() and digital_status(), and pacsys's client against our
service (in a child process: its protos and ours cannot share one)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

import acnet_proto
from acnet_proto.adapters import devdb as devdb_adapter
from acnet_proto.adapters.devdb import DevDBClient, DevDBRpcError
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.grpc.stubs import DevDB_pb2_grpc
from acnet_proto.adapters.sim.devdb import DevDBSimServer, serve
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.api.device import Device
from acnet_proto.api.digital_status import DigitalStatus
from acnet_proto.errors import ConfigurationError, ConnectionLost, DeviceError
from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
from acnet_proto.services.devdb import (
    DevDBSettings,
    ExtStatusBitDef,
    StatusBitDef,
    TTLCache,
    resolve_devdb,
)
from acnet_proto.sim import DeviceModel
from acnet_proto.status import Status
from acnet_proto.testing import FakeBackend

pytestmark = pytest.mark.integration


class Clock:
    """The cache's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def sim() -> Iterator[DevDBSimServer]:
    with DevDBSimServer() as server:
        yield server


@pytest.fixture
def db(sim: DevDBSimServer) -> Iterator[DevDBClient]:
    with DevDBClient(sim.host, sim.port) as client:
        yield client


def status_name(error: DeviceError) -> str | None:
    return Status(error.facility_code, error.error_code).name


# --- what the service says ----------------------------------------------------------------------


def test_a_settable_device_with_status_and_control(db: DevDBClient) -> None:
    info = db.get_device_info(["Z:ACLTST"])["Z:ACLTST"]
    # what pacsys's tests read from the lab's DevDB
    assert (info.device_index, info.description) == (140013, "ACL test device!")
    assert info.reading is not None and info.setting is not None
    assert (info.reading.primary_units, info.reading.common_units) == ("blip", "blip")
    assert (info.reading.min_val, info.reading.max_val) == (-500.0, 500.0)
    assert (info.reading.p_index, info.reading.c_index) == (22, 0)  # DEC float in, identity
    assert info.setting.is_knobbable and not info.reading.is_knobbable
    # the lab's table and layout (lab-devices.md): 12 commands, 4 bits, no remote bit
    assert [(c.value, c.short_name) for c in info.control] == [
        (3, "RESET"), (1, "ON"), (2, "OFF"), (4, "POSITIVE"), (16, "NEGATIVE"), (5, "RAMP"),
        (6, "DC"), (8, "TEST"), (256, "TEST2"), (257, "TEST3"), (258, "TEST4"), (259, "TEST5"),
    ]  # fmt: skip
    assert [(b.mask, b.match, b.short_name, b.true_str, b.false_str) for b in info.status_bits] == [
        (1, 1, "OnOff", "Yes", "No"),
        (2, 2, "Ready", "Yes", "No"),
        (8, 8, "Polarity", "Plus", "Minus"),
        (0x200, 0x200, "Ramp", "Ramp", "DC"),
    ]
    assert [(b.bit_no, b.name0, b.name1) for b in info.ext_status_bits][2:] == [
        (3, "Minus", "Plus"), (9, "DC", "Ramp"),
    ]  # fmt: skip


def test_read_only_text_and_family_devices(db: DevDBClient) -> None:
    got = db.get_device_info(["M:OUTTMP", "Z:STRTST", "z:sim0042"])
    outtmp, text, family = got["M:OUTTMP"], got["Z:STRTST"], got["z:sim0042"]
    assert outtmp.reading.common_units == "DegF" and outtmp.setting is None
    assert outtmp.control is None and outtmp.status_bits is None
    assert (text.description, text.reading, text.setting) == ("string test device", None, None)
    assert (family.device_index, family.description) == (900042, "simulated scalar 42")
    assert family.setting.common_units == "V"


def test_an_unknown_device_is_no_such_device(db: DevDBClient) -> None:
    with pytest.raises(DeviceError) as info:
        db.get_device_info(["M:OUTTMP", "Z:NOTFND"])
    assert status_name(info.value) == "DPM_NO_SUCH_DEVICE"
    assert info.value.drf == "Z:NOTFND" and str(info.value).startswith("Z:NOTFND: not found")


def test_a_name_devdb_refuses_carries_its_message(db: DevDBClient) -> None:
    with pytest.raises(DeviceError) as info:
        db.get_device_info(["M:OUTTMP.SETTING"])
    assert status_name(info.value) == "DPM_LOOKUP_FAILED"
    assert "'M:OUTTMP.SETTING' is not a device name" in str(info.value)


def test_alarm_blocks_and_their_texts(db: DevDBClient, sim: DevDBSimServer) -> None:
    [block] = db.get_alarm_info(["M:OUTTMP"])
    analog, digital = db.get_alarm_info(["Z:ACLTST"])
    assert db.get_alarm_info(["Z:STRTST", "Z:NOTFND"]) == []
    limits = sim.model.device("M:OUTTMP").analog
    raw = block.alarm_block.min_or_nom, block.alarm_block.max_or_tol
    scaling = sim.model.device("M:OUTTMP").scaling  # its raw type is int16
    held = [scaling.decode(struct.pack("<i", r)[:2]) for r in raw]
    assert held == [limits.minimum, limits.maximum]
    assert (block.alarm_block.pi, block.alarm_block.status & 1) == (16, 1)  # enabled
    assert block.digital_alarm_text_id is None
    assert (analog.alarm_block.pi, digital.alarm_block.pi) == (16, 17)
    assert (digital.digital_alarm_condition, digital.digital_alarm_mask) == (3, 3)
    ids = [analog.analog_alarm_text_id, digital.digital_alarm_text_id, 12345]
    texts = db.get_alarm_text(ids)
    assert [t.alarm_text_id for t in texts] == ids[:2]  # an id DevDB does not know is left out
    assert texts[0].text == "Z:ACLTST ACL test device!: reading is outside its limits"
    assert texts[1].length == len(texts[1].text)


# --- the cache -------------------------------------------------------------------------------


def test_records_are_kept_for_the_ttl(sim: DevDBSimServer) -> None:
    clock, device = Clock(), sim.model.device("G:AMANDA")
    with DevDBClient(sim.host, sim.port, cache_ttl=60.0, clock=clock) as db:
        first = db.get_device_info(["G:AMANDA"])["G:AMANDA"]
        device.description = "renamed"  # what DevDB would say now
        try:
            clock.now += 59.9
            assert db.get_device_info(["g:amanda"])["g:amanda"] is first  # any case
            clock.now += 0.1
            assert db.get_device_info(["G:AMANDA"])["G:AMANDA"].description == "renamed"
        finally:
            device.description = first.description


def test_clear_cache_forgets_one_device_or_all(sim: DevDBSimServer) -> None:
    model = sim.model
    names = ["Z:ACLTST", "Z:ACLTS1"]
    before = {n: model.device(n).description for n in names}
    with DevDBClient(sim.host, sim.port, clock=Clock()) as db:
        db.get_device_info(names)
        try:
            for name in names:
                model.device(name).description = f"{name} (new)"
            db.clear_cache("z:acltst")
            got = db.get_device_info(names)
            assert [got[n].description for n in names] == ["Z:ACLTST (new)", before["Z:ACLTS1"]]
            db.clear_cache()
            assert db.get_device_info(["Z:ACLTS1"])["Z:ACLTS1"].description == "Z:ACLTS1 (new)"
        finally:
            for name, text in before.items():
                model.device(name).description = text


def test_a_failed_batch_keeps_what_it_found(sim: DevDBSimServer) -> None:
    device = sim.model.device("Z:RAWTST")
    with DevDBClient(sim.host, sim.port, clock=Clock()) as db:
        with pytest.raises(DeviceError, match="Z:NOTFND"):
            db.get_device_info(["Z:RAWTST", "Z:NOTFND"])
        original, device.description = device.description, "changed"
        try:
            assert db.get_device_info(["Z:RAWTST"])["Z:RAWTST"].description == original
        finally:
            device.description = original


def test_a_zero_ttl_keeps_nothing(sim: DevDBSimServer) -> None:
    device = sim.model.device("Z:STRTST")
    with DevDBClient(sim.host, sim.port, cache_ttl=0, clock=Clock()) as db:
        original = db.get_device_info(["Z:STRTST"])["Z:STRTST"].description
        device.description = "changed"
        try:
            assert db.get_device_info(["Z:STRTST"])["Z:STRTST"].description == "changed"
        finally:
            device.description = original


def test_the_cache_evicts_expired_entries_then_the_least_recently_used() -> None:
    cache: TTLCache[int] = TTLCache(10.0, max_size=3)
    for t, key in enumerate("abc"):
        cache.put(key, t, now=float(t))
    assert cache.get("a", now=3.0) == 0  # a is now the most recently used
    cache.put("d", 3, now=3.0)
    assert [cache.get(k, now=3.0) for k in "abcd"] == [0, None, 2, 3]
    cache.put("e", 4, now=12.5)  # a (put at 0) and c (at 2) have expired: only they go
    assert (len(cache), cache.get("d", now=12.5), cache.get("e", now=12.5)) == (2, 3, 4)
    with pytest.raises(ValueError, match="cache_ttl"):
        TTLCache(-1.0)


# --- settings and failures ---------------------------------------------------------------------


def test_settings_come_from_arguments_then_the_environment() -> None:
    env = {"PACSYS_DEVDB_HOST": "pacsys-host", "ACNET_DEVDB_PORT": "7000"}
    assert resolve_devdb(environ=env) == DevDBSettings("pacsys-host", 7000, 5.0)
    assert resolve_devdb("mine", 7001, 1.5, environ=env) == DevDBSettings("mine", 7001, 1.5)
    assert resolve_devdb(environ={"ACNET_DEVDB_HOST": "a"}).port == 6802
    with pytest.raises(ConfigurationError, match="no DevDB host is configured: set ACNET_DEVDB"):
        resolve_devdb(environ={})
    with pytest.raises(ConfigurationError, match="ACNET_DEVDB_PORT='x' is not a port"):
        resolve_devdb(environ={"ACNET_DEVDB_HOST": "a", "ACNET_DEVDB_PORT": "x"})
    with pytest.raises(ConfigurationError, match="timeout must be positive"):
        resolve_devdb("a", timeout=0)


def test_the_factory_reads_the_environment(
    sim: DevDBSimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACNET_DEVDB_HOST", sim.host)
    monkeypatch.setenv("ACNET_DEVDB_PORT", str(sim.port))
    with acnet_proto.devdb() as db:
        assert repr(db) == f"DevDBClient({sim.host!r}, {sim.port}, open)"
        assert db.get_device_info(["M:OUTTMP"])["M:OUTTMP"].device_index == 27235
    assert repr(db).endswith("closed)")
    with pytest.raises(RuntimeError, match="closed"):
        db.get_device_info(["M:OUTTMP"])


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listened on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_an_unreachable_service_is_an_rpc_error_and_connection_lost() -> None:
    with (
        refusing_port() as port,
        DevDBClient("127.0.0.1", port, timeout=2) as db,
        pytest.raises(DevDBRpcError) as info,
    ):
        db.get_device_info(["M:OUTTMP"])
    error = info.value
    assert isinstance(error, grpc.RpcError) and isinstance(error, ConnectionLost)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert str(error).startswith(f"DevDB at 127.0.0.1:{port}: getDeviceInfo failed: UNAVAILABLE")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda db: db.get_device_info("M:OUTTMP"), "must be a list of device names"),
        (lambda db: db.get_device_info(["M:OUTTMP", 7]), r"names\[1\] must be a device name"),
        (lambda db: db.get_alarm_info(None), "must be a list of device names"),
        (lambda db: db.get_alarm_text([1, -2]), r"ids\[1\] must be an alarm text id \(uint32\)"),
        (lambda db: db.get_alarm_text([1.0]), r"ids\[0\] must be an alarm text id \(int\)"),
        (lambda db: db.get_alarm_text("12"), "must be a list of alarm text ids"),
        (lambda db: db.get_device_info(["M:OUTTMP"], timeout=-1), "timeout must be positive"),
    ],
)
def test_bad_arguments_fail_before_any_call(db: DevDBClient, call: Any, error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):  # ConfigurationError too
        call(db)


def test_the_simulated_service_serves_beside_the_others() -> None:
    model = DeviceModel.default()

    async def main() -> str:
        started: asyncio.Future[DevDBSimServer] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(port=0, model=model, ready=started.set_result))
        server = await started
        with DevDBClient(server.host, server.port) as db:
            info = await asyncio.to_thread(db.get_device_info, ["M:OUTTMP"])
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return info["M:OUTTMP"].description

    assert asyncio.run(main()) == "Outdoor temperature"


def test_plot_configurations_are_not_simulated(sim: DevDBSimServer) -> None:
    with (
        grpc.insecure_channel(f"{sim.host}:{sim.port}") as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        DevDB_pb2_grpc.DevDBStub(channel).getPlotConfiguration(DevDB_pb2.PlotSelector(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --- Device.info() and digital_status() --------------------------------------------------------


def test_device_info_asks_the_client_given_or_the_process_wide_one(sim: DevDBSimServer) -> None:
    with DevDBClient(sim.host, sim.port) as db:
        assert Device("Z:ACLTST@p,1000").info(devdb=db).device_index == 140013
        with pytest.raises(DeviceError, match="Z:NOTFND"):
            Device("Z:NOTFND").info(devdb=db)
    devdb_adapter.configure_default(sim.host, sim.port)
    try:
        assert Device("M:OUTTMP").info().description == "Outdoor temperature"
        assert devdb_adapter.default_devdb() is devdb_adapter.default_devdb()
    finally:
        devdb_adapter.configure_default()
        devdb_adapter.close_default()


def test_digital_status_from_devdb_definitions_and_the_status_word(db: DevDBClient) -> None:
    fake = FakeBackend()
    fake.set_reading("Z:PSTEST.STATUS.BIT_VALUE", 0b10110)
    status = Device("Z:PSTEST", fake).digital_status(devdb=db)
    assert fake.reads == ["Z:PSTEST.STATUS.BIT_VALUE@I"]  # one read: the names are DevDB's
    assert status.raw_value == 0b10110
    assert (status.on, status.ready, status.remote, status.positive, status.ramp) == (
        False, True, True, False, True,
    )  # fmt: skip
    assert status.to_dict() == {
        "On": "Off", "Ready": "Ready", "Remote": "Remote", "Polarity": "Negative", "Ramp": "Ramp",
    }  # fmt: skip
    assert str(status).splitlines()[:2] == ["Z:PSTEST status=0x16", "  On:       Off"]


@pytest.fixture(scope="module")
def machine() -> Iterator[tuple[SimServer, DevDBSimServer]]:
    """A simulated DPM and a simulated DevDB describing the same devices."""
    with SimServer.in_thread() as dpm, DevDBSimServer(dpm.model) as devdb:
        yield dpm, devdb


def test_digital_status_against_the_simulators(
    machine: tuple[SimServer, DevDBSimServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    dpm, devdb = machine
    status = dpm.model.device("Z:ACLTST").status
    with DPMBackend(dpm.host, dpm.port) as backend, DevDBClient(devdb.host, devdb.port) as db:
        device = Device("Z:ACLTST", backend)
        status.on, status.ramp = False, True
        try:
            defined = device.digital_status(devdb=db)
            # without a DevDB: the names and texts come from the device, three reads in one
            for name in ("ACNET_DEVDB_HOST", "PACSYS_DEVDB_HOST"):
                monkeypatch.delenv(name, raising=False)
            read = device.digital_status()
        finally:
            status.on, status.ramp = True, False
    # Z:ACLTST's own layout: ready 0x2, positive 0x8, ramp 0x200, and no remote bit
    assert defined.raw_value == read.raw_value == 0x20A
    # as at the lab, DevDB calls bit 0 "OnOff" and DPM's BIT_NAMES call it "On"
    assert defined.to_dict() == {"OnOff": "No", "Ready": "Yes", "Polarity": "Plus", "Ramp": "Ramp"}
    assert read.to_dict() == {"On": "No", "Ready": "Yes", "Polarity": "Plus", "Ramp": "Ramp"}
    assert [b.position for b in defined] == [b.position for b in read] == [0, 1, 3, 9]
    assert (defined.on, read.on, defined.ramp, read.ramp) == (False, False, True, True)


def test_digital_status_of_a_device_without_status_is_a_device_error(
    machine: tuple[SimServer, DevDBSimServer],
) -> None:
    dpm, devdb = machine
    with (
        DPMBackend(dpm.host, dpm.port) as backend,
        DevDBClient(devdb.host, devdb.port) as db,
        pytest.raises(DeviceError) as info,
    ):
        Device("M:OUTTMP", backend).digital_status(devdb=db)
    assert status_name(info.value) == "DBM_NOPROP"


def test_digital_status_evaluates_masks_inversion_and_extended_bits() -> None:
    def bit(mask: int, match: int, invert: bool, name: str) -> StatusBitDef:
        return StatusBitDef(mask, match, invert, name, name, "yes", "no", 0, "", 0, "")

    definitions = [
        bit(0b11, 0b01, False, "Mode"),
        bit(0b100, 0b100, True, "Armed"),
        bit(0, 0, False, "X"),
    ]
    ext = [
        ExtStatusBitDef(0, "covered", "a", "b", 0, 0),
        ExtStatusBitDef(5, "Beam", "off", "on", 0, 0),
    ]
    status = DigitalStatus.from_devdb_bits("Z:DEV", 0b100101, definitions, ext)
    assert [(b.position, b.name, b.value) for b in status] == [
        (0, "Mode", "yes"), (2, "Armed", "no"), (2, "X", "yes"), (5, "Beam", "on"),
    ]  # fmt: skip
    assert status["armed"].is_set is False and status[5].value == "on"
    assert "Beam" in status and 9 not in status
    with pytest.raises(KeyError, match="Z:DEV has no status bit named 'Nope'"):
        status["Nope"]
    with pytest.raises(IndexError, match="no status bit at position 9"):
        status[9]
    arrays = DigitalStatus.from_bit_arrays("Z:DEV", 0b1, ["On", "", "Remote"], ["On", "", "Local"])
    assert [(b.position, b.is_set) for b in arrays] == [(0, True), (2, False)]
    assert (arrays.on, arrays.remote, arrays.ready) == (True, False, None)


def test_concurrent_lookups_share_one_client(sim: DevDBSimServer) -> None:
    errors: list[BaseException] = []
    with DevDBClient(sim.host, sim.port, clock=Clock()) as db:

        def look() -> None:
            try:
                for i in range(20):
                    name = f"Z:SIM{i:04d}"
                    assert db.get_device_info([name])[name].device_index == 900000 + i
            except BaseException as e:  # reported below, in the test's thread
                errors.append(e)

        threads = [threading.Thread(target=look) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == []


# --- pacsys's client, our service ---------------------------------------------------------

PACSYS_DEVDB = r"""
import json, sys
from pacsys.devdb import DevDBClient

with DevDBClient(host=sys.argv[1], port=int(sys.argv[2]), tls=False, timeout=5) as db:
    info = db.get_device_info(["Z:ACLTST", "M:OUTTMP"])
    acltst, outtmp = info["Z:ACLTST"], info["M:OUTTMP"]
    try:
        db.get_device_info(["Z:NOTFND"])
        missing = None
    except Exception as e:
        missing = type(e).__name__ + ": " + str(e)
    alarms = db.get_alarm_info(["Z:ACLTST"])
    texts = db.get_alarm_text([a.analog_alarm_text_id or a.digital_alarm_text_id for a in alarms])
print(json.dumps({
    "description": acltst.description,
    "units": outtmp.reading.common_units,
    "bits": [[b.short_name, b.mask] for b in acltst.status_bits],
    "control": [c.value for c in acltst.control],
    "missing": missing,
    "alarm_pis": [a.alarm_block.pi for a in alarms],
    "texts": [t.text for t in texts],
}))
"""


def test_pacsys_reads_our_devdb(sim: DevDBSimServer) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PACSYS_DEVDB, sim.host, str(sim.port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["description"], out["units"]) == ("ACL test device!", "DegF")
    assert out["bits"] == [["OnOff", 1], ["Ready", 2], ["Polarity", 8], ["Ramp", 0x200]]
    assert out["control"] == [3, 1, 2, 4, 16, 5, 6, 8, 256, 257, 258, 259]
    # pacsys reads the all-zero entry of an unknown device as "not found", as from the real one
    assert out["missing"].startswith("DeviceError") and "Z:NOTFND" in out["missing"]
    assert out["alarm_pis"] == [16, 17]
    assert out["texts"] == [
        "Z:ACLTST ACL test device!: reading is outside its limits",
        "Z:ACLTST ACL test device!: status is not nominal",
    ]
