"""DPM over gRPC: generated code, the pure mapping, the simulated DAQ service and the clients.

Servers are real grpcio servers on loopback, on free ports: the simulated
DAQ service (:class:`DAQSimServer`) on the packaged device model, a canned
servicer that answers what a test hands it (value kinds the model does not
make, replies out of order, broken replies), and a listener that never
answers. Client tests run against all three backends (blocking, asyncio,
trio) through the faces of tests/support/clients.py.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import itertools
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import jwt
import numpy as np
import pytest

from acnet_proto.adapters.grpc.asyncio import AsyncioGRPCBackend
from acnet_proto.adapters.grpc.stubs import DAQ_pb2_grpc
from acnet_proto.adapters.grpc.threaded import GRPCBackend
from acnet_proto.adapters.sim.daq import DAQSimServer
from acnet_proto.api.auth import JWTAuth
from acnet_proto.drf import DRFError
from acnet_proto.errors import (
    AuthenticationError,
    ConnectionLost,
    DeviceError,
    ReadError,
    RemoteProtocolError,
    SettingOutcomeUnknown,
)
from acnet_proto.protos import controls
from acnet_proto.protos.controls.common.v1 import device_pb2, status_pb2
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.services import daq as gv
from acnet_proto.sim import DeviceModel, SettingsPolicy
from acnet_proto.status import Status
from acnet_proto.types import Reading, ValueType
from tests.adapters._watch import free_port
from tests.support import ROOT
from tests.support.clients import GRPC_ADAPTERS, Client
from tests.support.vectors import SHARED

pytestmark = pytest.mark.integration

KEY = "acnet-proto tests: the HS256 key of the simulated DAQ"
PRINCIPAL = "tester@FNAL.GOV"


def token(
    sub: str | None = PRINCIPAL,
    *,
    roles: Sequence[str] = (),
    lifetime: float = 60.0,
    key: str = KEY,
) -> JWTAuth:
    claims: dict[str, Any] = {"exp": int(time.time() + lifetime)}
    if sub is not None:
        claims["sub"] = sub
    if roles:
        claims["realm_access"] = {"roles": list(roles)}
    return JWTAuth(jwt.encode(claims, key, algorithm="HS256"))


def status_name(item: Any) -> str | None:
    return Status(item.facility_code, item.error_code).name


# --- servers --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[DAQSimServer]:
    """A simulated DAQ that tests only read (writers get :func:`fresh_sim`)."""
    with DAQSimServer(jwt_key=KEY) as server:
        yield server


@pytest.fixture
def fresh_sim() -> Iterator[DAQSimServer]:
    with DAQSimServer(jwt_key=KEY) as server:
        yield server


class CannedDAQ(DAQ_pb2_grpc.DAQServicer):
    """A DAQ service whose Read answers ``answer(drfs)``, then holds the stream open."""

    def __init__(self, answer: Callable[[list[str]], list[DAQ_pb2.ReadingReply]]) -> None:
        self.answer = answer
        self.requests: list[list[str]] = []

    def Read(self, request: Any, context: Any) -> Iterator[DAQ_pb2.ReadingReply]:
        self.requests.append(list(request.drf))
        yield from self.answer(list(request.drf))
        while context.is_active():
            time.sleep(0.01)


@contextlib.contextmanager
def canned(answer: Callable[[list[str]], list[DAQ_pb2.ReadingReply]]) -> Iterator[Any]:
    servicer = CannedDAQ(answer)
    server = grpc.server(ThreadPoolExecutor(4))
    DAQ_pb2_grpc.add_DAQServicer_to_server(servicer, server)
    servicer.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer
    finally:
        server.stop(None).wait()


class Mute:
    """A listener that lets clients connect and never answers (not even HTTP/2's preface)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]

    def close(self) -> None:
        self._listener.close()


@pytest.fixture(params=list(GRPC_ADAPTERS))
def flavour(request: pytest.FixtureRequest) -> str:
    return request.param


@contextlib.contextmanager
def client_of(flavour: str, port: int, auth: JWTAuth | None = None) -> Iterator[Client]:
    client = GRPC_ADAPTERS[flavour]("127.0.0.1", port, auth)
    try:
        yield client
    finally:
        client.close()


# --- generated code -------------------------------------------------------------------------------


def test_proto_sources_are_the_specs() -> None:
    spec = SHARED / "spec" / "grpc" / "proto" / "controls"
    if not spec.is_dir():
        pytest.skip(f"the shared spec is not at {spec}")
    ours = ROOT / "protos" / "controls"
    names = sorted(p.relative_to(spec).as_posix() for p in spec.rglob("*.proto"))
    assert names == sorted(p.relative_to(ours).as_posix() for p in ours.rglob("*.proto"))
    for name in names:
        assert (ours / name).read_bytes() == (spec / name).read_bytes(), name


#: what scripts/regen-protos --grpc writes, relative to the checkout: the messages (protobuf
#: only, imported by the core) and the service stubs (they import grpc, so they are adapters)
GENERATED_TREES = (Path("protos", "controls"), Path("adapters", "grpc", "stubs"))


def _generated_files(root: Path) -> list[Path]:
    return sorted(
        path.relative_to(root)
        for tree in GENERATED_TREES
        if (root / tree).is_dir()
        for path in (root / tree).rglob("*")
        if path.is_file() and path.suffix in (".py", ".pyi") and "__pycache__" not in path.parts
    )


def test_committed_modules_are_what_regen_protos_makes(tmp_path: Path) -> None:
    try:
        installed = importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("grpcio-tools is not installed")
    if installed != controls.GRPCIO_TOOLS_VERSION:
        pytest.skip(
            f"grpcio-tools {installed} is not {controls.GRPCIO_TOOLS_VERSION}, "
            "which made the committed modules"
        )
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "regen-protos"), "--grpc", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    made, kept = _generated_files(tmp_path), _generated_files(ROOT)
    assert {tree for tree in GENERATED_TREES if (tmp_path / tree).is_dir()} == set(GENERATED_TREES)
    missing = sorted(map(str, set(made) - set(kept)))
    extra = sorted(map(str, set(kept) - set(made)))
    assert made == kept, (
        f"regen-protos makes these but the checkout lacks them: {missing}; "
        f"the checkout has these but regen-protos no longer makes them: {extra}"
    )
    stale = [
        str(path) for path in made if (tmp_path / path).read_text() != (ROOT / path).read_text()
    ]
    assert not stale, f"committed files that differ from what regen-protos makes: {stale}"
    # nothing generated is left in the old place, where the core's package would ship it
    assert not list((ROOT / "protos").rglob("*_pb2_grpc.py"))


def test_generated_messages_keep_the_specs_wire_names_and_numbers() -> None:
    reply = DAQ_pb2.ReadingReply.DESCRIPTOR
    assert reply.full_name == "services.daq.ReadingReply"
    assert {f.name: f.number for f in reply.fields} == {"index": 1, "readings": 2, "status": 3}
    assert DAQ_pb2.DESCRIPTOR.services_by_name["DAQ"].full_name == "services.daq.DAQ"
    assert device_pb2.Value.DESCRIPTOR.fields_by_name["basicStatus"].number == 8
    assert status_pb2.Status.DESCRIPTOR.full_name == "common.status.Status"


# --- the pure mapping -----------------------------------------------------------------------------

T0 = datetime(2025, 11, 22, 0, 0, 0, 15000, tzinfo=UTC)

KINDS = [
    (ValueType.SCALAR, 41.7),
    (ValueType.SCALAR_ARRAY, np.array([0.0, 1.5, -3.25])),
    (ValueType.RAW, b"\x00\x11\xff"),
    (ValueType.TEXT, "the quick brown fox"),
    (ValueType.TEXT_ARRAY, ("On", "Off", "")),
    (
        ValueType.ANALOG_ALARM,
        {
            "minimum": -20.0,
            "maximum": 110.0,
            "alarm_enable": True,
            "alarm_status": False,
            "abort": False,
            "abort_inhibit": True,
            "tries_needed": 2,
            "tries_now": 1,
        },
    ),
    (
        ValueType.DIGITAL_ALARM,
        {
            "nominal": -3,
            "mask": 0xFFFF,
            "alarm_enable": False,
            "alarm_status": True,
            "abort": True,
            "abort_inhibit": False,
            "tries_needed": 1,
            "tries_now": 0,
        },
    ),
    (ValueType.BASIC_STATUS, {"on": True, "ready": False, "remote": True, "positive": False}),
    (ValueType.BASIC_STATUS, {"On": "Yes", "Shutter": "Closed"}),  # real DPM's display text
    (
        ValueType.TIMED_SCALAR_ARRAY,
        {
            "data": np.array([1.0, 2.0, 4.0]),
            "micros": np.array([1763769600015000, 1763769600115000, 1763769600215007]),
        },
    ),
]


@pytest.mark.parametrize(
    ("value_type", "value"), KINDS, ids=[f"{k.name}-{i}" for i, (k, _) in enumerate(KINDS)]
)
def test_every_kind_survives_a_reply(value_type: ValueType, value: Any) -> None:
    sent = Reading("Z:ANY", value_type, value=value, timestamp=T0)
    wire = gv.reading_reply(3, sent).SerializeToString()
    reply = DAQ_pb2.ReadingReply.FromString(wire)
    assert reply.index == 3
    [got] = gv.readings_of_reply(reply, "Z:ANY")
    assert got == sent  # value, type, status, timestamp; value equality includes arrays
    if value_type is ValueType.SCALAR_ARRAY:
        assert got.value.dtype == np.float64 and not got.value.flags.writeable
    if value_type is ValueType.TIMED_SCALAR_ARRAY:
        assert got.value["micros"].dtype == np.int64
        assert got.timestamp == datetime.fromtimestamp(value["micros"][0] / 1e6, UTC)
    if value_type is ValueType.TEXT_ARRAY:
        assert isinstance(got.value, tuple)


def test_error_and_warning_readings_survive_a_reply() -> None:
    missing = Reading("Z:NOTFND", facility_code=17, error_code=-26, message="no such device")
    reply = gv.reading_reply(0, missing)
    assert reply.WhichOneof("value") == "status"
    assert gv.readings_of_reply(reply, "Z:NOTFND") == [missing]
    warned = Reading("Z:ANY", ValueType.SCALAR, 1, 5, 2.0, "a warning", T0)
    assert gv.readings_of_reply(gv.reading_reply(0, warned), "Z:ANY") == [warned]


def test_a_status_without_a_message_is_named() -> None:
    reply = DAQ_pb2.ReadingReply(index=0, status={"facility_code": 17, "status_code": -26})
    [reading] = gv.readings_of_reply(reply, "Z:NOTFND")
    assert reading.message == str(Status(17, -26)) and reading.value is None


def test_an_unsigned_error_number_is_read_as_negative() -> None:
    assert gv.status_parts(status_pb2.Status(facility_code=17, status_code=230))[:2] == (17, -26)


@pytest.mark.parametrize(("facility", "code"), [(256, 0), (-1, 0), (17, 256), (17, -129)])
def test_a_status_no_acnet_status_can_be_is_a_protocol_error(facility: int, code: int) -> None:
    reply = DAQ_pb2.ReadingReply(status={"facility_code": facility, "status_code": code})
    with pytest.raises(RemoteProtocolError, match=f"facility_code={facility}"):
        gv.readings_of_reply(reply, "Z:ANY")


def test_an_empty_value_with_success_is_a_reading_without_value() -> None:
    reply = DAQ_pb2.ReadingReply(readings={"reading": [{"timestamp": {"seconds": 1}}]})
    [reading] = gv.readings_of_reply(reply, "Z:ANY")
    assert reading.value is None and not reading.ok and reading.error_code == 0
    with pytest.raises(RemoteProtocolError, match="no value set"):
        gv.value_from_proto(device_pb2.Value())


def test_an_error_among_several_readings_is_the_reading() -> None:
    entries = [
        {"data": {"scalar": 1.0}, "timestamp": {"seconds": 1}},
        {"status": {"facility_code": 1, "status_code": -6}, "timestamp": {"seconds": 2}},
    ]
    reply = DAQ_pb2.ReadingReply(readings={"reading": entries})
    [reading] = gv.readings_of_reply(reply, "Z:ANY")
    assert status_name(reading) == "ACNET_REQTMO" and reading.value is None


def test_several_non_scalar_readings_stay_separate() -> None:
    entries = [{"data": {"text": "a"}}, {"data": {"text": "b"}}]
    reply = DAQ_pb2.ReadingReply(readings={"reading": entries})
    assert [r.value for r in gv.readings_of_reply(reply, "Z:ANY")] == ["a", "b"]


@pytest.mark.parametrize(
    ("value", "kind", "wire"),
    [
        (45.0, "scalar", 45.0),
        (3, "scalar", 3.0),
        (True, "scalar", 1.0),
        ([1, 2.5], "scalarArr", [1.0, 2.5]),
        (np.array([1.0, 2.0]), "scalarArr", [1.0, 2.0]),
        ("text", "text", "text"),
        (["a", "b"], "textArr", ["a", "b"]),
        (b"\x01\x02", "raw", b"\x01\x02"),
    ],
)
def test_setting_values(value: Any, kind: str, wire: Any) -> None:
    proto = gv.setting_value("Z:ACLTST", value)
    assert proto.WhichOneof("value") == kind
    got = getattr(proto, kind)
    assert (list(got.value) if kind.endswith("Arr") else got) == wire


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (object(), TypeError),
        ({"minimum": 1.0}, TypeError),
        ([], ValueError),
        (float("nan"), ValueError),
        (np.zeros((2, 2)), TypeError),
        ([1.0, "x"], TypeError),
    ],
)
def test_bad_setting_values_are_refused_naming_the_drf(value: Any, error: type) -> None:
    with pytest.raises(error, match="Z:ACLTST"):
        gv.SettingBatch([("Z:ACLTST", value)])


def test_setting_batch_sends_write_drfs_and_fills_unanswered_settings() -> None:
    batch = gv.SettingBatch({"Z:ACLTST": 1.0, "Z|ACLTST": 1, "Z:ACLTS1[2]": 3.0})
    assert [s.device for s in batch.request().setting] == [
        "Z:ACLTST.SETTING@N",
        "Z:ACLTST.CONTROL@N",
        "Z:ACLTS1.SETTING[2]@N",
    ]
    results = batch.results(gv.setting_reply([0, Status.from_name("DPM_PRIV")]))
    assert [r.drf for r in results] == ["Z:ACLTST", "Z|ACLTST", "Z:ACLTS1[2]"]
    assert results[0].ok
    assert status_name(results[1]) == "DPM_PRIV"
    assert status_name(results[2]) == "ACNET_RETRY" and "no status" in results[2].message


def test_read_batch_asks_for_one_shots_and_takes_the_first_reading() -> None:
    batch = gv.GRPCReadBatch(["M:OUTTMP", "M:OUTTMP@p,1000"])
    assert list(batch.request().drf) == ["M:OUTTMP@I", "M:OUTTMP@p,1000"]
    first = gv.reading_reply(1, Reading("x", ValueType.SCALAR, value=1.0, timestamp=T0))
    again = gv.reading_reply(1, Reading("x", ValueType.SCALAR, value=2.0, timestamp=T0))
    assert [r.value for _, r in batch.feed(first)] == [1.0]
    assert batch.feed(again) == [] and not batch.done
    with pytest.raises(RemoteProtocolError, match="index 2"):
        batch.feed(DAQ_pb2.ReadingReply(index=2, status={}))


def test_bad_drfs_are_refused_before_any_request() -> None:
    with pytest.raises(DRFError, match="M:OUTTMP@@"):
        gv.GRPCReadBatch(["M:OUTTMP", "M:OUTTMP@@"])
    with pytest.raises(DRFError, match="M:OUTTMP@@"):
        gv.GRPCListPlan(["M:OUTTMP@@"])
    with pytest.raises(ValueError, match="empty"):
        gv.GRPCReadBatch([])


def test_the_mapping_does_no_io() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "import acnet_proto.services.daq\n"
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    assert "google" in loaded  # protobuf: messages, not I/O
    assert not loaded & {"grpc", "socket", "selectors", "asyncio", "trio", "ssl", "jwt"}


# --- reads from the simulated DAQ -----------------------------------------------------------------


def test_reads_of_every_kind_the_model_makes(flavour: str, sim: DAQSimServer) -> None:
    model = DeviceModel.default()  # the sim's model as it started; these tests write nothing
    drfs = [
        "M:OUTTMP",
        "Z:ACLTS1",
        "Z:STRTST",
        "Z:RAWTST",
        "M:OUTTMP.ANALOG",
        "Z:ACLTST.DIGITAL",
        "Z:ACLTST.STATUS",
        "Z:NOTFND",
        "Z:ACLTST.SETTING",
    ]
    before = datetime.now(UTC)
    with client_of(flavour, sim.port) as client:
        readings = client.get_many(drfs, timeout=3)
    assert [r.drf for r in readings] == drfs
    scalar, array, text, raw, analog, digital, status, missing, setting = readings
    outtmp = model.device("M:OUTTMP")
    assert scalar.value_type is ValueType.SCALAR and isinstance(scalar.value, float)
    assert abs(scalar.value - outtmp.setting[0]) <= outtmp.amplitude
    assert scalar.timestamp.tzinfo is UTC and scalar.timestamp >= before.replace(microsecond=0)
    acl = model.device("Z:ACLTS1")
    assert array.value_type is ValueType.SCALAR_ARRAY and array.value.shape == (acl.size,)
    assert np.all(np.abs(array.value - np.array(acl.setting)) <= acl.amplitude)
    assert (text.value_type, text.value) == (ValueType.TEXT, model.device("Z:STRTST").setting)
    assert (raw.value_type, raw.value) == (ValueType.RAW, model.device("Z:RAWTST").setting)
    block = outtmp.analog
    assert analog.value_type is ValueType.ANALOG_ALARM
    assert (analog.value["minimum"], analog.value["maximum"]) == (block.minimum, block.maximum)
    assert analog.value["alarm_enable"] is block.enable
    assert digital.value_type is ValueType.DIGITAL_ALARM
    assert digital.value["mask"] == model.device("Z:ACLTST").digital.mask
    assert status.value == model.device("Z:ACLTST").status.states
    # the lab's answer to a device it does not have: a warning with no data, not ok
    assert status_name(missing) == "DPM_PEND" and missing.is_warning and not missing.ok
    assert setting.value == model.device("Z:ACLTST").setting[0]


def test_read_raises_the_device_error_and_read_many_every_reading(
    flavour: str, sim: DAQSimServer
) -> None:
    with client_of(flavour, sim.port) as client:
        with pytest.raises(DeviceError) as raised:
            client.read("Z:NOTFND", timeout=3)
        assert (raised.value.drf, raised.value.facility_code, raised.value.error_code) == (
            "Z:NOTFND",
            17,
            1,
        )
        assert "check the device name" in str(raised.value)
        with pytest.raises(ReadError, match="Z:NOTFND") as failed:
            client.read_many(["M:OUTTMP", "Z:NOTFND"], timeout=3)
        assert [r.ok for r in failed.value.readings] == [True, False]
        assert client.read_many(["Z:STRTST"], timeout=3) == ["the quick brown fox"]


def test_get_many_keeps_input_order_across_events(flavour: str, sim: DAQSimServer) -> None:
    # periodic entries answer a period later than the one-shots around them
    drfs = [f"Z:SIM{i:04d}@p,{100 + 50 * (i % 3)}" if i % 2 else f"Z:SIM{i:04d}" for i in range(40)]
    with client_of(flavour, sim.port) as client:
        readings = client.get_many(drfs, timeout=3)
    assert [r.drf for r in readings] == drfs
    assert all(r.ok for r in readings)
    # each simulated device's reading is its setting 0.001*i plus a wave within +-1
    assert all(abs(r.value - 0.001 * i) <= 1.0 for i, r in enumerate(readings))


def test_replies_out_of_order_land_in_input_order(flavour: str) -> None:
    def backwards(drfs: list[str]) -> list[DAQ_pb2.ReadingReply]:
        return [
            gv.reading_reply(i, Reading(d, ValueType.SCALAR, value=float(i), timestamp=T0))
            for i, d in reversed(list(enumerate(drfs)))
        ]

    drfs = [f"Z:SIM{i:04d}" for i in range(10)]
    with canned(backwards) as server, client_of(flavour, server.port) as client:
        readings = client.get_many(drfs, timeout=3)
    assert server.requests == [[f"{d}@I" for d in drfs]]
    assert [(r.drf, r.value) for r in readings] == [(d, float(i)) for i, d in enumerate(drfs)]


def test_text_arrays_and_timed_arrays_from_a_server(flavour: str) -> None:
    timed = {"data": np.array([1.0, 2.0]), "micros": np.array([1_000_000, 1_500_000])}
    sent = [
        Reading("Z:TXTARR", ValueType.TEXT_ARRAY, value=("a", "b"), timestamp=T0),
        Reading("Z:TIMED", ValueType.TIMED_SCALAR_ARRAY, value=timed, timestamp=T0),
    ]

    def answer(drfs: list[str]) -> list[DAQ_pb2.ReadingReply]:
        return [gv.reading_reply(i, reading) for i, reading in enumerate(sent)]

    with canned(answer) as server, client_of(flavour, server.port) as client:
        text, series = client.get_many(["Z:TXTARR", "Z:TIMED"], timeout=3)
    assert (text.value_type, text.value) == (ValueType.TEXT_ARRAY, ("a", "b"))
    assert series.value_type is ValueType.TIMED_SCALAR_ARRAY
    np.testing.assert_array_equal(series.value["data"], timed["data"])
    np.testing.assert_array_equal(series.value["micros"], timed["micros"])
    assert series.timestamp == datetime.fromtimestamp(1, UTC)


def test_a_reply_for_an_index_not_asked_for_fails_the_read(flavour: str) -> None:
    def stray(drfs: list[str]) -> list[DAQ_pb2.ReadingReply]:
        return [DAQ_pb2.ReadingReply(index=len(drfs), status={})]

    with (
        canned(stray) as server,
        client_of(flavour, server.port) as client,
        pytest.raises(ReadError, match="index 1") as raised,
    ):
        client.get_many(["M:OUTTMP"], timeout=3)
    assert status_name(raised.value.readings[0]) == "ACNET_DISCONNECTED"


def test_a_mute_server_times_out(flavour: str) -> None:
    mute = Mute()
    try:
        with client_of(flavour, mute.port) as client:
            started = time.monotonic()
            with pytest.raises(ReadError) as raised:
                client.get_many(["M:OUTTMP", "Z:ACLTST"], timeout=0.3)
            took = time.monotonic() - started
    finally:
        mute.close()
    assert [status_name(r) for r in raised.value.readings] == ["ACNET_REQTMO"] * 2
    assert [r.drf for r in raised.value.readings] == ["M:OUTTMP", "Z:ACLTST"]
    assert took < 2.0
    assert raised.value.__cause__ is not None


def test_no_server_gives_disconnected_readings(flavour: str) -> None:
    with client_of(flavour, free_port()) as client, pytest.raises(ReadError) as raised:
        client.get_many(["M:OUTTMP"], timeout=3)
    assert status_name(raised.value.readings[0]) == "ACNET_DISCONNECTED"
    assert "UNAVAILABLE" in str(raised.value)


# --- streams --------------------------------------------------------------------------------------


def test_periodic_stream(flavour: str, sim: DAQSimServer) -> None:
    with client_of(flavour, sim.port) as client:
        readings = client.stream(["M:OUTTMP@p,100"], count=5, timeout=2)
    assert len(readings) == 5
    assert all(r.ok and r.drf == "M:OUTTMP@p,100" for r in readings)
    stamps = [r.timestamp for r in readings]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    assert all(g > 0.05 for g in gaps)  # one per period, not a burst


def test_two_rates_in_one_stream(sim: DAQSimServer) -> None:
    drfs = ["Z:SIM0001@p,100", "Z:SIM0002@p,400", "Z:NOTFND@p,100"]
    got: list[Reading] = []
    with GRPCBackend(sim.host, sim.port) as backend, backend.subscribe(drfs) as sub:
        deadline = time.monotonic() + 1.0
        for reading, _ in sub.readings(timeout=0.5):
            got.append(reading)
            if time.monotonic() > deadline:
                break
    counts = {d: sum(r.drf == d for r in got) for d in drfs}
    assert counts["Z:NOTFND@p,100"] == 1  # a refused entry is reported once
    assert counts["Z:SIM0001@p,100"] >= 2 * counts["Z:SIM0002@p,400"] >= 2


def test_a_stream_of_one_shots_ends_by_itself(flavour: str, sim: DAQSimServer) -> None:
    with client_of(flavour, sim.port) as client:
        readings = client.stream(["M:OUTTMP@I", "Z:NOTFND@I"], count=5, timeout=None)
    assert [r.drf for r in readings] == ["M:OUTTMP@I", "Z:NOTFND@I"]


def test_a_stream_ends_with_connection_lost_when_the_server_stops(flavour: str) -> None:
    server = DAQSimServer()
    server.start()
    stopper = threading.Timer(0.35, server.stop)
    try:
        with client_of(flavour, server.port) as client:
            stopper.start()
            with pytest.raises(ConnectionLost, match="M:OUTTMP"):
                client.stream(["M:OUTTMP@p,100"], count=100, timeout=3, reconnect=False)
    finally:
        stopper.join()
        server.stop()


def test_callbacks_get_readings_and_the_end() -> None:
    server = DAQSimServer()
    server.start()
    got: list[Reading] = []
    errors: list[Exception] = []
    try:
        with GRPCBackend(server.host, server.port) as backend:
            sub = backend.subscribe(
                ["M:OUTTMP@p,50"],
                callback=lambda r, h: got.append(r),
                on_error=lambda e, h: errors.append(e),
                reconnect=False,
            )
            with pytest.raises(RuntimeError, match="callback"):
                next(iter(sub.readings()))
            deadline = time.monotonic() + 2
            while len(got) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            server.stop()
            while not sub.stopped and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sub.stopped and isinstance(sub.exc, ConnectionLost)
    finally:
        server.stop()
    assert len(got) >= 3 and all(r.ok for r in got)
    assert errors == [sub.exc]


def test_a_callback_may_stop_its_own_stream(sim: DAQSimServer) -> None:
    got: list[Reading] = []

    def once(reading: Reading, handle: Any) -> None:
        got.append(reading)
        handle.stop()

    with GRPCBackend(sim.host, sim.port) as backend:
        sub = backend.subscribe(["M:OUTTMP@p,50"], callback=once)
        deadline = time.monotonic() + 2
        while not sub.stopped and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # room for more readings, had it not stopped
    assert len(got) == 1 and sub.exc is None


def test_callbacks_are_checked_when_subscribing(sim: DAQSimServer) -> None:
    with GRPCBackend(sim.host, sim.port) as backend, pytest.raises(TypeError, match="callback"):
        backend.subscribe(["M:OUTTMP@p,100"], callback=lambda r: None)


def test_a_zero_timeout_drains_what_arrived(flavour: str, sim: DAQSimServer) -> None:
    async def drained(backend: Any, sleep: Callable[[float], Any]) -> list[Reading]:
        async with await backend.subscribe(["M:OUTTMP@p,100"]) as sub:
            await sleep(0.45)
            return [r async for r, _ in sub.readings(timeout=0)]

    if flavour == "grpc":
        with (
            GRPCBackend(sim.host, sim.port) as backend,
            backend.subscribe(["M:OUTTMP@p,100"]) as sub,
        ):
            time.sleep(0.45)
            got = [r for r, _ in sub.readings(timeout=0)]
    elif flavour == "grpc-asyncio":
        import asyncio

        async def main() -> list[Reading]:
            async with AsyncioGRPCBackend(sim.host, sim.port) as backend:
                return await drained(backend, asyncio.sleep)

        got = asyncio.run(main())
    else:
        trio = pytest.importorskip("trio")
        from acnet_proto.adapters.grpc.trio import TrioGRPCBackend

        async def main() -> list[Reading]:
            async with TrioGRPCBackend(sim.host, sim.port) as backend:
                return await drained(backend, trio.sleep)

        got = trio.run(main)
    assert len(got) >= 2 and all(r.ok for r in got)


def test_asyncio_readings_timeout_keeps_the_stream(sim: DAQSimServer) -> None:
    import asyncio

    async def main() -> list[Reading]:
        async with (
            AsyncioGRPCBackend(sim.host, sim.port) as backend,
            await backend.subscribe(["M:OUTTMP@p,200"]) as sub,
        ):
            early = [r async for r, _ in sub.readings(timeout=0.01)]
            assert early == [] and not sub.stopped
            got = []
            async for reading, _ in sub.readings(timeout=2):
                got.append(reading)
                if len(got) == 2:
                    break
            return got

    readings = asyncio.run(main())
    assert len(readings) == 2 and readings[0].timestamp < readings[1].timestamp


def test_trio_cancellation_ends_the_call_at_once(sim: DAQSimServer) -> None:
    trio = pytest.importorskip("trio")
    from acnet_proto.adapters.grpc.trio import TrioGRPCBackend

    async def main() -> float:
        async with TrioGRPCBackend(sim.host, sim.port) as backend:
            started = trio.current_time()
            with trio.move_on_after(0.2):
                await backend.get_many(["M:OUTTMP@p,5000"], timeout=10)
            took = trio.current_time() - started
            assert await backend.read("Z:STRTST") == "the quick brown fox"  # still usable
            return took

    assert trio.run(main) < 1.0


# --- settings -------------------------------------------------------------------------------------


def test_writes_with_a_good_token(flavour: str, fresh_sim: DAQSimServer) -> None:
    with client_of(flavour, fresh_sim.port, token()) as client:
        results = client.write_many(
            [
                ("Z:ACLTST", 12.5),
                ("Z:ACLTS1[0:1]", [7.0, 8.0]),
                ("Z:STRTST", "hello"),
                ("Z:RAWTST[0:1]", b"\xab\xcd"),
                ("Z|ACLTST", 2),
            ],  # CONTROL 2: OFF
            timeout=3,
        )
        assert [r.ok for r in results] == [True] * 5, results
        assert client.read("Z:ACLTST.SETTING", timeout=3) == 12.5
        assert client.read("Z:ACLTS1.SETTING[0:1]", timeout=3).tolist() == [7.0, 8.0]
        assert client.read("Z:STRTST", timeout=3) == "hello"
        assert client.read("Z:RAWTST[0:3]", timeout=3) == b"\xab\xcd\x22\x33"
        assert client.read("Z:ACLTST.STATUS", timeout=3)["on"] is False


def test_an_alarm_dict_is_written_field_by_field(flavour: str, fresh_sim: DAQSimServer) -> None:
    with client_of(flavour, fresh_sim.port, token()) as client:
        result = client.write("Z@ACLTST", {"minimum": 10.0, "maximum": 20.0}, timeout=3)
        assert result.ok, result
        alarm = client.read("Z:ACLTST.ANALOG", timeout=3)
    assert (alarm["minimum"], alarm["maximum"]) == (10.0, 20.0)


BAD_TOKENS = {
    "expired": (lambda: token(lifetime=-30), "expired"),
    "forged": (lambda: token(key="not the server's key, but long enough for HS256"), "Signature"),
    "no-subject": (lambda: token(sub=None), "sub"),
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_bad_tokens_are_refused(
    flavour: str, fresh_sim: DAQSimServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    make, refusal = BAD_TOKENS[kind]
    auth = make()
    caplog.set_level(logging.DEBUG)
    before = fresh_sim.model.device("Z:ACLTST").setting[0]
    with client_of(flavour, fresh_sim.port, auth) as client:
        with pytest.raises(AuthenticationError, match=refusal):
            client.write_many([("Z:ACLTST", before + 1)], timeout=3)
        assert client.read("Z:ACLTST.SETTING", timeout=3) == before  # unchanged
    assert auth.token not in caplog.text


def test_writes_without_a_token_fail_before_any_io(flavour: str) -> None:
    mute = Mute()
    try:
        with client_of(flavour, mute.port) as client:
            with pytest.raises(AuthenticationError, match="JWT"):
                client.write_many([("Z:ACLTST", 1.0)], timeout=0.5)
            with pytest.raises(TypeError, match="Z:ACLTST"):  # bad values first
                client.write_many([("Z:ACLTST", object())], timeout=0.5)
    finally:
        mute.close()


@pytest.mark.parametrize(
    ("metadata", "refusal"),
    [((), "no token"), ((("authorization", "Basic dXNlcjpwYXNz"),), "not 'Bearer")],
)
def test_the_service_wants_a_bearer_token(
    fresh_sim: DAQSimServer, metadata: tuple, refusal: str
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{fresh_sim.port}") as channel:
        stub = DAQ_pb2_grpc.DAQStub(channel)
        request = gv.SettingBatch([("Z:ACLTST", 1.0)]).request()
        with pytest.raises(grpc.RpcError) as raised:
            stub.Set(request, metadata=metadata, timeout=3)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refusal in raised.value.details()


def test_a_server_without_a_key_refuses_every_setting() -> None:
    with (
        DAQSimServer() as server,
        GRPCBackend(server.host, server.port, auth=token()) as backend,
        pytest.raises(AuthenticationError, match="no key"),
    ):
        backend.write("Z:ACLTST", 1.0)


def test_policy_denial_unknown_device_and_wrong_types(
    flavour: str, fresh_sim: DAQSimServer
) -> None:
    fresh_sim.policy = SettingsPolicy.from_toml(
        'default_roles = ["testing"]\n[roles.testing]\nallow = ["Z:SIM*"]\n'
    )
    before = fresh_sim.model.device("Z:ACLTST").setting[0]
    with client_of(flavour, fresh_sim.port, token()) as client:
        results = client.write_many(
            [("Z:SIM0001", 1.0), ("Z:ACLTST", 1.0), ("Z:NOTFND", 1.0), ("M:OUTTMP", 1.0)],
            timeout=3,
        )
        assert [status_name(r) for r in results] == [
            None,
            "DPM_PRIV",
            "DPM_PEND",
            "DBM_NOPROP",
        ]
        assert results[0].ok and results[1].facility_code == 17
        fresh_sim.policy = SettingsPolicy.default()
        results = client.write_many(
            [("Z:ACLTST", "text"), ("Z:ACLTST", [1.0, 2.0]), ("Z:STRTST", 3.0)], timeout=3
        )
        names = [status_name(r) for r in results]
        assert names == ["DIO_INVDATA", "DPM_BAD_LENGTH", "DIO_INVDATA"]
        assert client.read("Z:ACLTST.SETTING", timeout=3) == before


def test_token_roles_map_through_the_policy(fresh_sim: DAQSimServer) -> None:
    fresh_sim.policy = SettingsPolicy.from_toml(
        '[roles.testing]\nallow = ["Z:SIM*"]\n[roles.operators]\nallow = ["Z:*"]\n'
        '[principals."tester@FNAL.GOV"]\nroles = ["testing"]\n'
    )
    with GRPCBackend(fresh_sim.host, fresh_sim.port, auth=token()) as plain:
        assert plain.write("Z:SIM0001", 1.0).ok
        assert status_name(plain.write("Z:ACLTST", 1.0)) == "DPM_PRIV"
    operator = token(roles=["operators", "not-a-policy-role"])
    with GRPCBackend(fresh_sim.host, fresh_sim.port, auth=operator) as backend:
        assert backend.write("Z:ACLTST", 1.0).ok
    stranger = token(sub="stranger@FNAL.GOV", roles=["testing"])
    with GRPCBackend(fresh_sim.host, fresh_sim.port, auth=stranger) as backend:
        assert backend.write("Z:SIM0002", 1.0).ok
        assert status_name(backend.write("Z:ACLTST", 1.0)) == "DPM_PRIV"


def test_a_set_that_never_answers_has_an_unknown_outcome(flavour: str) -> None:
    mute = Mute()
    try:
        with (
            client_of(flavour, mute.port, token()) as client,
            pytest.raises(SettingOutcomeUnknown, match="Z:ACLTST"),
        ):
            client.write_many([("Z:ACLTST", 1.0)], timeout=0.3)
    finally:
        mute.close()


# --- the backend object ---------------------------------------------------------------------------


def test_the_token_never_shows() -> None:
    auth = token()
    backend = GRPCBackend("localhost", auth=auth)
    try:
        assert auth.token not in repr(backend) and PRINCIPAL in repr(backend)
        assert auth.token not in repr(backend.write_metadata())
        assert backend.principal == PRINCIPAL and backend.authenticated
        assert (backend.host, backend.port, backend.timeout) == ("localhost", 50051, 5.0)
    finally:
        backend.close()


def test_constructor_checks() -> None:
    with pytest.raises(TypeError, match="JWTAuth"):
        GRPCBackend("localhost", auth="eyJ...")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port"):
        GRPCBackend("localhost", port=0)
    with pytest.raises(ValueError, match="timeout"):
        GRPCBackend("localhost", timeout=-1)


def test_a_closed_backend_refuses_calls(sim: DAQSimServer) -> None:
    backend = GRPCBackend(sim.host, sim.port)
    sub = backend.subscribe(["M:OUTTMP@p,100"])
    backend.close()
    assert sub.stopped
    with pytest.raises(RuntimeError, match="closed"):
        backend.read("M:OUTTMP")
    with pytest.raises(RuntimeError, match="closed"):
        backend.subscribe(["M:OUTTMP@p,100"])
    backend.close()  # idempotent
