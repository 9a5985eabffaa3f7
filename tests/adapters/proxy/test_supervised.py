"""The supervised DAQ server over real grpcio on loopback: policies, the token, the audit log,
streams through any backend, and pacsys on either side of it.

The policies' pure logic is tested in ``tests/proxy``; here every policy goes through a real
server (``SupervisedServer`` on port 0) with the gRPC status and details a
client sees. Policies that count time get the server's clock, a
:class:`Clock` the test moves: nothing here sleeps to let time pass.
pacsys runs in a child process (its generated protos and ours cannot share
a process; see ``tests/interop/test_grpc.py``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import numpy as np
import pytest

from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.adapters.grpc.threaded import GRPCBackend
from acnet_proto.adapters.proxy.supervised import AuditLog, SupervisedServer
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.api.auth import JWTAuth
from acnet_proto.errors import ConnectionLost
from acnet_proto.protos.controls.common.v1 import device_pb2
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.proxy import (
    DeviceAccessPolicy,
    PolicyDecision,
    RateLimitPolicy,
    ReadOnlyPolicy,
    RequestContext,
    SlewLimit,
    SlewRatePolicy,
    ValueRangePolicy,
)
from acnet_proto.services.daq import SettingBatch, readings_of_reply
from acnet_proto.status import Status
from acnet_proto.testing import FakeBackend
from acnet_proto.types import ValueType

pytestmark = pytest.mark.integration

TOKEN = jwt.encode({"sub": "operator@FNAL.GOV", "exp": 4102444800}, "k" * 32, algorithm="HS256")
WAIT = 5.0
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED


class Clock:
    """The monotonic clock a server gives its policies; the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_backend() -> FakeBackend:
    fake = FakeBackend()
    fake.set_reading("M:OUTTMP", 72.5, units="DegF")
    fake.set_reading("Z:ACLTST", 45.0)
    fake.set_reading("Z:ACLTS1", np.array([1.0, 2.5, 4.0]))
    fake.set_reading("Z:STRTST", "hello")
    fake.set_reading("G:AMANDA", 1.0)
    return fake


@contextlib.contextmanager
def serving(backend: Any, **options: Any) -> Iterator[SupervisedServer]:
    with SupervisedServer(backend, port=0, host="127.0.0.1", **options) as server:
        yield server


@contextlib.contextmanager
def stub_of(server: SupervisedServer) -> Iterator[DAQStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield DAQStub(channel)


def read(stub: DAQStub, drfs: list[str]) -> list[Any]:
    """The readings of one ``@I`` Read, in reply order."""
    replies = list(stub.Read(DAQ_pb2.ReadingList(drf=drfs), timeout=WAIT))
    return [r for reply in replies for r in readings_of_reply(reply, drfs[reply.index])]


def put(stub: DAQStub, settings: list[tuple[str, Any]], token: str | None = TOKEN) -> list[int]:
    """One Set; the status_code of each setting."""
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    reply = stub.Set(SettingBatch(settings).request(), timeout=WAIT, metadata=metadata)
    return [s.status_code for s in reply.status]


def refusal(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and details ``call`` fails with."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


WRITE_Z = DeviceAccessPolicy(["Z:*"], mode="allow", action="set")
AGAIN = "the proxy will refuse it again: ask its operator, or change the request"


# --- through a real server: reads and streams ------------------------------------------------


def test_reads_go_to_the_backend() -> None:
    fake = fake_backend()
    with serving(fake) as server, GRPCBackend("127.0.0.1", server.port) as client:
        drfs = ["M:OUTTMP", "Z:ACLTS1", "Z:STRTST", "Z:NOTFND"]
        scalar, array, text, missing = client.get_many(drfs)
    assert (scalar.value_type, scalar.value) == (ValueType.SCALAR, 72.5)
    assert array.value.tolist() == [1.0, 2.5, 4.0]
    assert (text.value_type, text.value) == (ValueType.TEXT, "hello")
    assert missing.value is None
    assert Status(missing.facility_code, missing.error_code).name == "DPM_NO_SUCH_DEVICE"
    assert fake.reads == [f"{d}@I" for d in drfs]


def test_a_stream_subscribes_each_request_once_and_answers_every_position() -> None:
    fake = fake_backend()
    drfs = ["M:OUTTMP@p,1000", "m:outtmp@P,1000", "Z:ACLTST@p,500"]
    with (
        serving(fake) as server,
        GRPCBackend("127.0.0.1", server.port) as client,
        client.subscribe(drfs) as stream,
    ):
        deadline = time.monotonic() + WAIT
        while fake.emit_reading("M:OUTTMP@p,1000", 73.0) != 1:  # until the proxy subscribed
            assert time.monotonic() < deadline, "the proxy never subscribed"
            time.sleep(0.01)
        fake.emit_reading("Z:ACLTST@p,500", 44.0)
        got: dict[str, float] = {}
        for reading, _ in stream.readings(timeout=WAIT):
            got.setdefault(reading.drf, reading.value)
            if len(got) == 3:
                break
    assert got == {"M:OUTTMP@p,1000": 73.0, "m:outtmp@P,1000": 73.0, "Z:ACLTST@p,500": 44.0}


def test_a_backend_stream_that_dies_ends_the_call_unavailable() -> None:
    fake = fake_backend()
    with serving(fake) as server, GRPCBackend("127.0.0.1", server.port) as client:
        stream = client.subscribe(["M:OUTTMP@p,1000"], reconnect=False)
        deadline = time.monotonic() + WAIT
        while fake.emit_reading("M:OUTTMP@p,1000", 73.0) != 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        fake.emit_error(ConnectionLost("the fake link was cut"))
        with pytest.raises(ConnectionLost, match=r"UNAVAILABLE.*the fake link was cut"):
            list(stream.readings(timeout=WAIT))
        stream.stop()


def test_a_client_that_leaves_stops_the_backend_stream() -> None:
    fake = fake_backend()
    with serving(fake) as server, GRPCBackend("127.0.0.1", server.port) as client:
        stream = client.subscribe(["M:OUTTMP@p,1000"])
        deadline = time.monotonic() + WAIT
        while fake.emit_reading("M:OUTTMP@p,1000", 73.0) != 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stream.stop()
        while fake.emit_reading("M:OUTTMP@p,1000", 74.0) != 0:  # the proxy stopped its own
            assert time.monotonic() < deadline, "the backend's subscription was never stopped"
            time.sleep(0.01)


def test_the_threaded_backend_streams_the_simulator_through_the_proxy(sim: SimServer) -> None:
    outtmp = sim.model.device("M:OUTTMP")
    with (
        DPMBackend(sim.host, sim.port) as dpm,
        serving(dpm) as server,
        GRPCBackend("127.0.0.1", server.port) as client,
    ):
        assert abs(client.read("M:OUTTMP") - outtmp.setting[0]) <= outtmp.amplitude
        readings = []
        with client.subscribe(["M:OUTTMP@p,100", "Z:ACLTS1[0:1]@p,100"]) as stream:
            for reading, _ in stream.readings(timeout=WAIT):
                readings.append(reading)
                if len(readings) == 6:
                    break
    assert {r.drf for r in readings} == {"M:OUTTMP@p,100", "Z:ACLTS1[0:1]@p,100"}
    scalars = [r for r in readings if r.drf == "M:OUTTMP@p,100"]
    assert all(abs(r.value - outtmp.setting[0]) <= outtmp.amplitude for r in scalars)


def test_a_backend_without_credentials_cannot_write_through_the_proxy(sim: SimServer) -> None:
    with (
        DPMBackend(sim.host, sim.port) as dpm,
        serving(dpm, policies=[WRITE_Z]) as server,
        stub_of(server) as stub,
    ):
        code, details = refusal(lambda: put(stub, [("Z:ACLTST", 1.0)]))
    assert code == PERMISSION_DENIED and details.startswith("the proxy's backend refused:")


def test_a_backend_that_fails_ends_the_call_internal() -> None:
    class Broken(FakeBackend):
        def get_many(self, drfs: Any, timeout: float | None = None) -> Any:
            raise RuntimeError("the disk is on fire")

    with serving(Broken()) as server, stub_of(server) as stub:
        code, details = refusal(lambda: read(stub, ["M:OUTTMP@I"]))
    assert (code, details) == (grpc.StatusCode.INTERNAL, "backend error: the disk is on fire")


@pytest.mark.parametrize(
    ("drfs", "details"),
    [
        ([], "the ReadingList names no DRFs"),
        (["M:OUTTMP@Q,1000", "M:OUTTMP@X"], "DRF 1 ('M:OUTTMP@X') is not valid"),
        (["M:OUTTMP "], "DRF 0 ('M:OUTTMP ') is empty, padded or not printable ASCII"),
    ],
)
def test_requests_that_cannot_be_checked_are_invalid(drfs: list[str], details: str) -> None:
    with serving(fake_backend()) as server, stub_of(server) as stub:
        code, got = refusal(lambda: read(stub, drfs))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and got.startswith(details)


def test_settings_that_cannot_be_made_are_invalid() -> None:
    with serving(fake_backend(), policies=[WRITE_Z]) as server, stub_of(server) as stub:
        no_value = DAQ_pb2.SettingList(setting=[DAQ_pb2.Setting(device="Z:ACLTST")])
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        empty = refusal(lambda: stub.Set(DAQ_pb2.SettingList(), timeout=WAIT))
        missing = refusal(lambda: stub.Set(no_value, timeout=WAIT, metadata=metadata))
        described = DAQ_pb2.Setting(device="Z:ACLTST.DESCRIPTION", value={"text": "x"})
        request = DAQ_pb2.SettingList(setting=[described])
        read_only = refusal(lambda: stub.Set(request, timeout=WAIT, metadata=metadata))
    assert empty == (grpc.StatusCode.INVALID_ARGUMENT, "the SettingList has no settings")
    assert missing == (grpc.StatusCode.INVALID_ARGUMENT, "setting 0 ('Z:ACLTST') carries no value")
    assert read_only == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "DRF 0 ('Z:ACLTST.DESCRIPTION') is not valid: the DESCRIPTION property is read-only",
    )


# --- through a real server: each policy -----------------------------------------------------


def test_read_only_denies_settings_and_allows_reads() -> None:
    fake = fake_backend()
    with serving(fake, policies=[ReadOnlyPolicy(), WRITE_Z]) as server, stub_of(server) as stub:
        assert read(stub, ["M:OUTTMP@I"])[0].value == 72.5
        assert refusal(lambda: put(stub, [("Z:ACLTST", 1.0)])) == (
            PERMISSION_DENIED,
            "Write operations disabled",
        )
    assert fake.writes == []


@pytest.mark.parametrize(
    ("policy", "reads", "writes"),
    [
        # glob deny, for reads only: settings still need an approval (WRITE_Z)
        (DeviceAccessPolicy(["G:*"], mode="deny", action="read"), {"G:AMANDA": "denied"}, {}),
        # glob deny for settings: reads pass
        (
            DeviceAccessPolicy(["z:acl*"], mode="deny", action="set"),
            {},
            {"Z:ACLTST": "Device Z:ACLTST is denied", "Z:STRTST": None},
        ),
        # deny for both
        (
            DeviceAccessPolicy(["M:OUTTMP", "Z:ACLTST"], mode="deny"),
            {"M:OUTTMP": "denied"},
            {"Z:ACLTST": "Device Z:ACLTST is denied"},
        ),
        # regex allow for settings (full match, any case): G:AMANDA approved too
        (
            DeviceAccessPolicy([r"g:am.*"], mode="allow", action="set", syntax="regex"),
            {},
            {"G:AMANDA": None, "M:OUTTMP": "No write policy approves: M:OUTTMP"},
        ),
        # a regex read allowlist: everything but M: is denied
        (
            DeviceAccessPolicy([r"(?!M:).*"], mode="deny", syntax="regex"),
            {"G:AMANDA": "denied", "Z:ACLTS1": "denied"},
            {},
        ),
    ],
)
def test_device_access(
    policy: DeviceAccessPolicy, reads: dict[str, str], writes: dict[str, str | None]
) -> None:
    fake = fake_backend()
    with serving(fake, policies=[policy, WRITE_Z]) as server, stub_of(server) as stub:
        for device in ["M:OUTTMP", "G:AMANDA", "Z:ACLTS1"]:
            if device in reads:
                assert refusal(lambda d=device: read(stub, [f"{d}@I"])) == (
                    PERMISSION_DENIED,
                    f"Device {device} is denied",
                )
            else:
                assert read(stub, [f"{device}@I"])[0].ok
        for device, reason in writes.items():
            if reason is None:
                assert put(stub, [(device, 2.0)]) == [0]
            else:
                code, details = refusal(lambda d=device: put(stub, [(d, 2.0)]))
                assert (code, details) == (PERMISSION_DENIED, reason)
    allowed = [f"{d}.SETTING@N" for d, reason in writes.items() if reason is None]
    assert [d for d, _ in fake.writes] == allowed


def test_rate_limit_counts_every_call_in_the_window() -> None:
    clock = Clock()
    limit = RateLimitPolicy(2, window_seconds=60.0)
    with (
        serving(fake_backend(), policies=[limit, WRITE_Z], clock=clock) as server,
        stub_of(server) as stub,
    ):
        read(stub, ["M:OUTTMP@I"])
        clock.now += 30.0
        assert put(stub, [("Z:ACLTST", 1.0)]) == [0]
        clock.now += 29.0
        exceeded = (PERMISSION_DENIED, "Rate limit exceeded (2 per 60.0s)")
        assert refusal(lambda: read(stub, ["M:OUTTMP@I"])) == exceeded
        assert refusal(lambda: put(stub, [("Z:ACLTST", 1.0)])) == exceeded
        clock.now += 1.0  # the first call leaves the window
        assert read(stub, ["M:OUTTMP@I"])[0].value == 72.5
        assert refusal(lambda: read(stub, ["M:OUTTMP@I"])) == exceeded


def test_slew_rate_limits_each_step_and_the_speed_of_change() -> None:
    clock = Clock()
    slew = SlewRatePolicy({"Z:ACL*": SlewLimit(max_step=1.0, max_rate=0.5)})
    fake = fake_backend()
    with serving(fake, policies=[WRITE_Z, slew], clock=clock) as server, stub_of(server) as stub:
        assert put(stub, [("Z:ACLTST", 10.0)]) == [0]  # the first setting: no history
        clock.now += 10.0
        assert put(stub, [("Z:ACLTST", 11.0)]) == [0]  # 1.0 in 10 s
        clock.now += 1.0
        code, details = refusal(lambda: put(stub, [("Z:ACLTST", 11.8)]))
        assert (code, details) == (
            PERMISSION_DENIED,
            "Rate 0.8/s for Z:ACLTST exceeds max_rate 0.5/s",
        )
        code, details = refusal(lambda: put(stub, [("Z:ACLTST", 12.5)]))
        assert details == "Step 1.5 for Z:ACLTST exceeds max_step 1.0"
        clock.now += 1.0
        assert put(stub, [("Z:ACLTST", 11.8)]) == [0]  # 0.8 in 2 s: denials left no history
        assert put(stub, [("Z:STRTST", "any text")]) == [0]  # not limited
        code, details = refusal(lambda: put(stub, [("Z:ACLTS1", 1.0), ("Z:ACLTS1", 1.1)]))
        assert details.startswith("Z:ACLTS1.SETTING@N is set twice in one call")
        code, details = refusal(lambda: put(stub, [("Z:ACLTST", "12")]))
        assert details == "Non-numeric value '12' for limited device Z:ACLTST"
        assert put(stub, [("Z:ACLTST.CONTROL", 1)]) == [0]  # a command, not a value
    assert [v for d, v in fake.writes if d == "Z:ACLTST.SETTING@N"] == [10.0, 11.0, 11.8]


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        (("Z:ACLTST", 50.0), None),
        (("Z:ACLTST", 100), None),
        (("Z:ACLTST", 150.0), "Value 150.0 for Z:ACLTST outside range [0, 100]"),
        (("Z:ACLTST", -0.5), "Value -0.5 for Z:ACLTST outside range [0, 100]"),
        (("Z:ACLTS1", [1.0, 2.0, 3.5]), "Value 3.5 for Z:ACLTS1 outside range [0, 3]"),
        (("Z:ACLTS1", [1.0, 2.0]), None),
        (("Z:ACLTST", "50"), "Non-numeric value '50' for limited device Z:ACLTST"),
        (("Z:ACLTST", b"\x00\x00\x48\x42"), "Raw byte write to limited device Z:ACLTST"),
        (("Z:ACLTST.SETTING.RAW", b"\x00\x00\x48\x42"), "RAW field write to limited device"),
        (("Z:RAWTST", b"\x01\x02"), None),  # allow_raw exempts it
        (("Z:ACLTST.CONTROL", 2), None),  # a command, not a value
        (("G:AMANDA", 1e6), None),  # not limited
    ],
)
def test_value_range(setting: tuple[str, Any], reason: str | None) -> None:
    limits = ValueRangePolicy(
        {"Z:ACLTST": (0, 100), "Z:ACLTS1": (0, 3), "Z:RAWTST": (0, 1)}, allow_raw=["Z:RAW*"]
    )
    allow = DeviceAccessPolicy(["Z:*", "G:AMANDA"], mode="allow", action="set")
    fake = fake_backend()
    with serving(fake, policies=[allow, limits]) as server, stub_of(server) as stub:
        if reason is None:
            assert put(stub, [setting]) == [0]
        else:
            code, details = refusal(lambda: put(stub, [setting]))
            assert code == PERMISSION_DENIED and details.startswith(reason)
    assert len(fake.writes) == (reason is None)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_value_range_denies_what_is_not_a_finite_number(number: float) -> None:
    # our client refuses these before sending: this is what another client might send
    value = device_pb2.Value(scalar=number)
    request = DAQ_pb2.SettingList(setting=[DAQ_pb2.Setting(device="Z:ACLTST", value=value)])
    policies = [WRITE_Z, ValueRangePolicy({"Z:*": (-1e300, 1e300)})]
    with serving(fake_backend(), policies=policies) as server, stub_of(server) as stub:
        code, details = refusal(lambda: stub.Set(request, timeout=WAIT))
    assert (code, details) == (
        PERMISSION_DENIED,
        f"Value {number} for Z:ACLTST outside range [-1e+300, 1e+300]",
    )


def test_settings_need_the_token_and_reads_do_not() -> None:
    fake = fake_backend()
    unauthenticated = (grpc.StatusCode.UNAUTHENTICATED, "Invalid or missing bearer token")
    with serving(fake, policies=[WRITE_Z], token=TOKEN) as server, stub_of(server) as stub:
        assert read(stub, ["M:OUTTMP@I"])[0].value == 72.5
        assert refusal(lambda: put(stub, [("Z:ACLTST", 1.0)], token=None)) == unauthenticated
        assert refusal(lambda: put(stub, [("Z:ACLTST", 1.0)], token=TOKEN + "x")) == unauthenticated
        basic = (("authorization", f"Basic {TOKEN}"),)
        request = SettingBatch([("Z:ACLTST", 1.0)]).request()
        assert refusal(lambda: stub.Set(request, timeout=WAIT, metadata=basic)) == unauthenticated
        assert put(stub, [("Z:ACLTST", 1.0)]) == [0]
    with (
        serving(fake, policies=[WRITE_Z], token=TOKEN) as server,
        GRPCBackend("127.0.0.1", server.port, auth=JWTAuth(TOKEN)) as client,
    ):
        assert client.write("Z:ACLTST", 2.0).ok
    assert [v for _, v in fake.writes] == [1.0, 2.0]


# --- the audit log ---------------------------------------------------------------------------


def test_the_audit_log_records_every_call_and_never_the_token(tmp_path: Path) -> None:
    lines, captured = tmp_path / "audit.jsonl", tmp_path / "audit.pb"
    audit = AuditLog(lines, proto_path=captured, log_responses=True, capture_raw=True)
    policies = [DeviceAccessPolicy(["G:*"], mode="deny"), WRITE_Z]
    with (
        serving(fake_backend(), policies=policies, token=TOKEN, audit_log=audit) as server,
        stub_of(server) as stub,
    ):
        read(stub, ["M:OUTTMP@I", "Z:ACLTST@I"])
        refusal(lambda: read(stub, ["G:AMANDA@I"]))
        put(stub, [("Z:ACLTST", 12.5), ("Z:ACLTS1[0:1]", [1.0, 2.0])])
        refusal(lambda: put(stub, [("M:OUTTMP", 1.0)]))
        refusal(lambda: put(stub, [("Z:ACLTST", 1.0)], token="not-the-token"))
        refusal(lambda: read(stub, ["M:OUTTMP@X"]))
    text = lines.read_text()
    assert TOKEN not in text and TOKEN.encode() not in captured.read_bytes()
    entries = [json.loads(line) for line in text.splitlines()]
    calls = [e for e in entries if e["dir"] == "in"]
    assert [(e["seq"], e["method"], e["allowed"], e["reason"]) for e in calls] == [
        (1, "Read", True, None),
        (2, "Read", False, "Device G:AMANDA is denied"),
        (3, "Set", True, None),
        (4, "Set", False, "No write policy approves: M:OUTTMP"),
        (5, "Set", False, "Invalid or missing bearer token"),
        (6, "Read", False, "DRF 0 ('M:OUTTMP@X') is not valid: unknown event type 'X'"),
    ]
    assert calls[0]["drfs"] == ["M:OUTTMP@I", "Z:ACLTST@I"]
    assert calls[2]["values"] == [
        {"drf": "Z:ACLTST.SETTING@N", "value": 12.5},
        {"drf": "Z:ACLTS1.SETTING[0:1]@N", "value": [1.0, 2.0]},
    ]
    assert all(e["peer"].startswith("ipv4:127.0.0.1:") for e in calls)
    assert all(e["ts"].endswith("+00:00") for e in entries)
    # replies: one per reading of the allowed read, one for the allowed setting
    assert [(e["seq"], e["method"]) for e in entries if e["dir"] == "out"] == [
        (1, "Read"), (1, "Read"), (3, "Set"),
    ]  # fmt: skip
    request = DAQ_pb2.ReadingList.FromString(base64.b64decode(calls[0]["raw"]))
    assert list(request.drf) == ["M:OUTTMP@I", "Z:ACLTST@I"]
    # the binary capture holds the same messages, in the same order
    kinds = {0: DAQ_pb2.ReadingList, 1: DAQ_pb2.ReadingReply, 2: DAQ_pb2.SettingList,
             3: DAQ_pb2.SettingReply}  # fmt: skip
    data, messages = captured.read_bytes(), []
    while data:
        tag, length, shift, at = data[0], 0, 0, 1
        while True:
            length |= (data[at] & 0x7F) << shift
            shift, at = shift + 7, at + 1
            if not data[at - 1] & 0x80:
                break
        messages.append(kinds[tag].FromString(data[at : at + length]))
        data = data[at + length :]
    raws = [base64.b64decode(e["raw"]) for e in entries]
    assert [m.SerializeToString() for m in messages] == raws


def test_a_setting_the_audit_log_cannot_record_is_not_made(tmp_path: Path) -> None:
    class Full(AuditLog):
        def log_request(self, ctx: RequestContext, decision: PolicyDecision) -> int:
            raise OSError(28, "No space left on device")

    fake = fake_backend()
    audit = Full(tmp_path / "audit.jsonl")
    with serving(fake, policies=[WRITE_Z], audit_log=audit) as server, stub_of(server) as stub:
        assert read(stub, ["M:OUTTMP@I"])[0].value == 72.5  # reads go on
        code, details = refusal(lambda: put(stub, [("Z:ACLTST", 1.0)]))
    assert code == grpc.StatusCode.INTERNAL and details.startswith("audit log failed; not set")
    assert fake.writes == []


def test_the_server_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="backend must be a Backend"):
        SupervisedServer(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="policies must be Policy instances"):
        SupervisedServer(FakeBackend(), policies=["read-only"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="port must be an integer"):
        SupervisedServer(FakeBackend(), port=70000)
    with pytest.raises(ValueError, match="flush_interval"):
        AuditLog("/dev/null", flush_interval=0)


# --- pacsys on either side ------------------------------------------------------------------

CHILD_DEADLINE = 60.0

PACSYS_CLIENT = r"""
import json, sys
import pacsys
from pacsys.auth import JWTAuth

fake_port, sim_port, token = sys.argv[1:4]
out = {}
with pacsys.grpc(host="127.0.0.1", port=int(fake_port), auth=JWTAuth(token=token), timeout=5) as b:
    out["read"] = b.read("M:OUTTMP")
    out["get_many"] = [
        {"ok": r.ok, "value": r.value if r.ok else None, "error": r.error_code}
        for r in b.get_many(["Z:STRTST", "Z:NOTFND", "G:AMANDA"])
    ]
    result = b.write("Z:ACLTST", 12.5)
    out["write"] = [result.ok, result.error_code]
    result = b.write("Z:ACLTST", 1000.0)
    out["denied"] = [result.ok, result.message]
with pacsys.grpc(host="127.0.0.1", port=int(sim_port), timeout=5) as b:
    out["sim_read"] = b.read("M:OUTTMP")
    got = []
    with b.subscribe(["M:OUTTMP@p,100"]) as stream:
        for r, _ in stream.readings(timeout=5):
            got.append([r.drf, r.value])
            if len(got) == 3:
                break
    out["stream"] = got
print(json.dumps(out))
"""


def test_pacsys_reads_and_writes_through_our_server(sim: SimServer) -> None:
    fake = fake_backend()
    policies = [WRITE_Z, ValueRangePolicy({"Z:ACLTST": (0, 100)})]
    with (
        serving(fake, policies=policies, token=TOKEN) as to_fake,
        DPMBackend(sim.host, sim.port) as dpm,
        serving(dpm) as to_sim,
    ):
        done = subprocess.run(
            [sys.executable, "-c", PACSYS_CLIENT, str(to_fake.port), str(to_sim.port), TOKEN],
            capture_output=True,
            text=True,
            timeout=CHILD_DEADLINE,
        )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["read"] == 72.5
    text, missing, amanda = out["get_many"]
    assert text == {"ok": True, "value": "hello", "error": 0}
    assert not missing["ok"] and missing["error"] == Status.from_name("DPM_NO_SUCH_DEVICE").error
    assert amanda["value"] == 1.0
    assert out["write"] == [True, 0] and fake.writes == [("Z:ACLTST.SETTING@N", 12.5)]
    assert out["denied"][0] is False
    assert "Value 1000.0 for Z:ACLTST outside range [0, 100]" in out["denied"][1]
    outtmp = sim.model.device("M:OUTTMP")
    assert abs(out["sim_read"] - outtmp.setting[0]) <= outtmp.amplitude
    assert [drf for drf, _ in out["stream"]] == ["M:OUTTMP@p,100"] * 3


PACSYS_SERVER = r"""
import sys
import numpy as np
from pacsys.supervised import DeviceAccessPolicy, SupervisedServer, ValueRangePolicy
from pacsys.testing import FakeBackend

fake = FakeBackend()
fake.set_reading("M:OUTTMP", 72.5)
fake.set_reading("Z:ACLTST", 45.0)
fake.set_reading("G:AMANDA", 1.0)
policies = [
    DeviceAccessPolicy(["G:*"], mode="deny", action="read"),
    DeviceAccessPolicy(["Z:*"], mode="allow", action="set"),
    ValueRangePolicy({"Z:ACLTST": (0, 100)}),
]
server = SupervisedServer(fake, port=0, host="127.0.0.1", token=sys.argv[1], policies=policies)
server.start()
print(server.port, flush=True)
sys.stdin.read()  # until the test closes our stdin
server.stop()
"""


def outcomes(port: int) -> list[Any]:
    """What our client sees from a server with the policies of ``PACSYS_SERVER``."""
    seen: list[Any] = []
    other = jwt.encode({"sub": "intruder", "exp": 4102444800}, "x" * 32, algorithm="HS256")
    with (
        GRPCBackend("127.0.0.1", port, auth=JWTAuth(TOKEN), timeout=10) as client,
        GRPCBackend("127.0.0.1", port, auth=JWTAuth(other), timeout=10) as intruder,
    ):
        for call in [
            lambda: client.read("M:OUTTMP"),
            lambda: client.read("G:AMANDA"),
            lambda: client.write("Z:ACLTST", 50.0).ok,
            lambda: client.write("Z:ACLTST", 150.0),
            lambda: client.write("M:OUTTMP", 1.0),
            lambda: intruder.write("Z:ACLTST", 1.0),
        ]:
            try:
                seen.append(call())
            except Exception as e:
                seen.append(f"{type(e).__name__}: {e}")
    return seen


def test_our_server_answers_as_pacsys_does() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", PACSYS_SERVER, TOKEN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line.strip().isdigit(), child.stderr.read()
        theirs = outcomes(int(line))
        child.communicate("", timeout=CHILD_DEADLINE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    policies = [
        DeviceAccessPolicy(["G:*"], mode="deny", action="read"),
        DeviceAccessPolicy(["Z:*"], mode="allow", action="set"),
        ValueRangePolicy({"Z:ACLTST": (0, 100)}),
    ]
    with serving(fake_backend(), policies=policies, token=TOKEN) as server:
        ours = outcomes(server.port)
    # the same answers and reasons; only ours name the policy, so only ours are PolicyDenied
    assert ours[0] == theirs[0] == 72.5 and ours[2] is theirs[2] is True
    assert "PERMISSION_DENIED: Device G:AMANDA is denied" in theirs[1]
    assert theirs[3:5] == [
        "AuthenticationError: the DAQ service refused the settings: "
        "Value 150.0 for Z:ACLTST outside range [0, 100]",
        "AuthenticationError: the DAQ service refused the settings: "
        "No write policy approves: M:OUTTMP",
    ]
    assert [ours[1], *ours[3:5]] == [
        "PolicyDenied: the supervised proxy's DeviceAccessPolicy refused to read G:AMANDA: "
        f"Device G:AMANDA is denied; {AGAIN}",
        "PolicyDenied: the supervised proxy's ValueRangePolicy refused to set Z:ACLTST: "
        f"Value 150.0 for Z:ACLTST outside range [0, 100]; {AGAIN}",
        "PolicyDenied: the supervised proxy's DeviceAccessPolicy refused to set M:OUTTMP: "
        f"No write policy approves: M:OUTTMP; {AGAIN}",
    ]
    refused = "the DAQ service refused the token: Invalid or missing bearer token"
    assert ours[5] == theirs[5] == f"AuthenticationError: {refused}"  # a bad token is no policy's


def test_values_survive_the_proxy_unchanged() -> None:
    fake = fake_backend()
    fake.set_reading("Z:ACLTST.STATUS", {"on": True, "ready": False}, ValueType.BASIC_STATUS)
    fake.set_reading("Z:RAWTST", b"\x00\x01\xfe\xff")
    fake.set_reading("Z:TXTARR", ["a", "b"], ValueType.TEXT_ARRAY)
    drfs = ["Z:ACLTST.STATUS@I", "Z:RAWTST@I", "Z:TXTARR@I"]
    with serving(fake) as server, stub_of(server) as stub:
        status, raw, texts = read(stub, drfs)
        value = device_pb2.Value(scalarArr={"value": [1.0, 2.0]})
        request = DAQ_pb2.SettingList(setting=[DAQ_pb2.Setting(device="Z:ACLTS1", value=value)])
        denied = refusal(lambda: stub.Set(request, timeout=WAIT))
    assert status.value == {"on": True, "ready": False}
    assert (raw.value, texts.value) == (b"\x00\x01\xfe\xff", ("a", "b"))
    assert denied == (PERMISSION_DENIED, "No policy explicitly allows write operations")
