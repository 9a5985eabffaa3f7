"""DPM over gRPC against pacsys (PyPI, unchanged), both ways.

pacsys's gRPC backend reads, streams and writes (with pacsys's JWTAuth)
through our simulated DAQ service; our :class:`GRPCBackend` reads and
writes through pacsys's own DAQ server (``SupervisedServer`` on its
``FakeBackend``). pacsys always runs in a child process: both libraries
register the spec's protos in protobuf's process-wide descriptor pool under
the same file names (``proto/controls/...``), with different options, so
they cannot be loaded in one process.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import jwt
import numpy as np
import pytest

from acnet_proto.adapters.grpc.threaded import GRPCBackend
from acnet_proto.adapters.sim.daq import DAQSimServer
from acnet_proto.api.auth import JWTAuth
from acnet_proto.errors import AuthenticationError
from acnet_proto.sim import DeviceModel
from acnet_proto.status import Status
from acnet_proto.types import ValueType

pytestmark = pytest.mark.integration
pytest.importorskip("pacsys")

KEY = "acnet-proto interop: the HS256 key of the simulated DAQ"
CHILD_DEADLINE = 60.0


def token(key: str = KEY, sub: str = "interop@FNAL.GOV") -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time() + 300)}, key, algorithm="HS256")


# --- pacsys's client, our server -----------------------------------------------------------------

PACSYS_CLIENT = r"""
import json, sys
import numpy as np
import pacsys
from pacsys.auth import JWTAuth

host, port, good, forged = sys.argv[1:5]


def plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def reading(r):
    kind = r.value_type.value if r.value_type is not None else None
    return {"drf": r.drf, "ok": r.ok, "type": kind, "value": plain(r.value),
            "facility": r.facility_code, "error": r.error_code,
            "timestamp": r.timestamp.isoformat() if r.timestamp else None}


out = {}
with pacsys.grpc(host=host, port=int(port), auth=JWTAuth(token=good), timeout=5) as backend:
    out["principal"] = backend.principal
    out["read"] = backend.read("M:OUTTMP")
    drfs = ["Z:ACLTS1[0:3]", "Z:NOTFND", "Z:STRTST", "Z:RAWTST", "Z:ACLTST.STATUS",
            "M:OUTTMP.ANALOG", "Z:ACLTST.DIGITAL"]
    out["get_many"] = [reading(r) for r in backend.get_many(drfs)]
    got = []
    with backend.subscribe(["M:OUTTMP@p,100"]) as stream:
        for r, _ in stream.readings(timeout=3):
            got.append(reading(r))
            if len(got) == 3:
                break
    out["stream"] = got
    result = backend.write("Z:ACLTST", 12.5)
    out["write"] = {"ok": result.ok, "facility": result.facility_code, "error": result.error_code}
    out["after"] = backend.read("Z:ACLTST.SETTING")
    result = backend.write("Z:NOTFND", 1.0)
    out["write_missing"] = {"facility": result.facility_code, "error": result.error_code}
with pacsys.grpc(host=host, port=int(port), auth=JWTAuth(token=forged), timeout=5) as backend:
    result = backend.write("Z:ACLTST", 99.0)
    out["forged"] = {"ok": result.ok, "message": result.message}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def pacsys_run() -> dict[str, Any]:
    """What pacsys's gRPC client saw, and the model it changed."""
    with DAQSimServer(jwt_key=KEY) as sim:
        forged = token(key="a key the simulated DAQ does not hold, long enough")
        args = [sim.host, str(sim.port), token(), forged]
        done = subprocess.run(
            [sys.executable, "-c", PACSYS_CLIENT, *args],
            capture_output=True,
            text=True,
            timeout=CHILD_DEADLINE,
        )
        assert done.returncode == 0, done.stderr
        return {"out": json.loads(done.stdout), "model": sim.model}


def test_pacsys_reads_through_our_server(pacsys_run: dict[str, Any]) -> None:
    out, model = pacsys_run["out"], DeviceModel.default()
    outtmp = model.device("M:OUTTMP")
    assert abs(out["read"] - outtmp.setting[0]) <= outtmp.amplitude
    array, missing, text, raw, status, analog, digital = out["get_many"]
    assert array["ok"] and array["type"] == "scalarArr" and len(array["value"]) == 4
    assert np.all(np.abs(np.array(array["value"]) - model.device("Z:ACLTS1").setting[:4]) <= 0.5)
    # DPM_PEND, a warning with no data: not ok, as pacsys reports it from the lab
    assert not missing["ok"] and Status(missing["facility"], missing["error"]).name == "DPM_PEND"
    assert (text["type"], text["value"]) == ("text", model.device("Z:STRTST").setting)
    assert (raw["type"], raw["value"]) == ("raw", model.device("Z:RAWTST").setting.hex())
    assert status["type"] == "basicStatus"
    # Z:ACLTST has no remote bit, so its status has no "remote", as at the lab
    assert status["value"] == {"on": True, "ready": True, "positive": True, "ramp": False}
    assert analog["type"] == "anaAlarm"
    assert (analog["value"]["minimum"], analog["value"]["maximum"]) == (
        outtmp.analog.minimum,
        outtmp.analog.maximum,
    )
    assert digital["type"] == "digAlarm"
    assert digital["value"]["mask"] == model.device("Z:ACLTST").digital.mask
    assert all(
        r["timestamp"] and r["timestamp"].endswith("+00:00") for r in out["get_many"] if r["ok"]
    )


def test_pacsys_streams_from_our_server(pacsys_run: dict[str, Any]) -> None:
    stream = pacsys_run["out"]["stream"]
    assert len(stream) == 3
    assert all(r["ok"] and r["drf"] == "M:OUTTMP@p,100" and r["type"] == "scalar" for r in stream)
    stamps = [r["timestamp"] for r in stream]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3


def test_pacsys_writes_with_its_jwt_auth(pacsys_run: dict[str, Any]) -> None:
    out, model = pacsys_run["out"], pacsys_run["model"]
    assert out["principal"] == "interop@FNAL.GOV"
    assert out["write"] == {"ok": True, "facility": 0, "error": 0}
    assert out["after"] == 12.5 == model.device("Z:ACLTST").setting[0]
    missing = out["write_missing"]
    assert Status(missing["facility"], missing["error"]).name == "DPM_PEND"
    # pacsys reports a refused token as a failed result carrying the gRPC status
    assert not out["forged"]["ok"] and "UNAUTHENTICATED" in out["forged"]["message"]


# --- our client, pacsys's server -----------------------------------------------------------------

PACSYS_SERVER = r"""
import sys
import numpy as np
from pacsys.supervised import DeviceAccessPolicy, SupervisedServer
from pacsys.testing import FakeBackend
from pacsys.types import ValueType

fake = FakeBackend()
fake.set_reading("M:OUTTMP", 72.5, units="DegF")
fake.set_reading("Z:ACLTS1", np.array([1.0, 2.5, 4.0]), ValueType.SCALAR_ARRAY)
fake.set_reading("Z:TXTARR", ["on", "off"], ValueType.TEXT_ARRAY)
fake.set_reading("Z:STRTST", "hello", ValueType.TEXT)
fake.set_reading("Z:ACLTST.STATUS", {"on": True, "ready": False}, ValueType.BASIC_STATUS)
fake.set_error("Z:NOTFND", -26, "DPM_NO_SUCH_DEVICE")
writes = [DeviceAccessPolicy(["Z:*"], mode="allow", action="set")]
server = SupervisedServer(fake, port=0, host="127.0.0.1", token=sys.argv[1], policies=writes)
server.start()
print(server.port, flush=True)
sys.stdin.read()  # until the test closes our stdin
server.stop()
print(repr(fake.writes), flush=True)
"""


@contextlib.contextmanager
def pacsys_server(secret: str) -> Iterator[tuple[int, list[str]]]:
    """pacsys's DAQ server in a child process; yields its port and, after, its output."""
    child = subprocess.Popen(
        [sys.executable, "-c", PACSYS_SERVER, secret],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    after: list[str] = []
    try:
        line = child.stdout.readline()
        if not line.strip().isdigit():
            child.kill()
            pytest.fail(f"pacsys's server did not start: {child.stderr.read()}")
        yield int(line), after
        out, _ = child.communicate(timeout=CHILD_DEADLINE)
        after.append(out)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_our_client_through_pacsys_server() -> None:
    secret = token()
    with pacsys_server(secret) as (port, after):
        with GRPCBackend("127.0.0.1", port, auth=JWTAuth(secret), timeout=10) as backend:
            drfs = ["M:OUTTMP", "Z:ACLTS1", "Z:TXTARR", "Z:STRTST", "Z:ACLTST.STATUS", "Z:NOTFND"]
            scalar, array, texts, text, status, missing = backend.get_many(drfs)
            result = backend.write("Z:ACLTST", 12.5)
            with pytest.raises(AuthenticationError, match="refused the settings"):
                backend.write("M:OUTTMP", 1.0)  # the policy allows Z:* only
        with (
            GRPCBackend("127.0.0.1", port, auth=JWTAuth(token(sub="other")), timeout=10) as other,
            pytest.raises(AuthenticationError, match="Invalid or missing bearer token"),
        ):
            other.write("Z:ACLTST", 99.0)
    assert (scalar.value_type, scalar.value) == (ValueType.SCALAR, 72.5)
    assert array.value_type is ValueType.SCALAR_ARRAY
    assert array.value.tolist() == [1.0, 2.5, 4.0]
    assert (texts.value_type, texts.value) == (ValueType.TEXT_ARRAY, ("on", "off"))
    assert (text.value_type, text.value) == (ValueType.TEXT, "hello")
    assert (status.value_type, status.value) == (
        ValueType.BASIC_STATUS,
        {"on": True, "ready": False},
    )
    assert missing.is_error and missing.error_code == -26 and missing.value is None
    assert result.ok, result
    assert "Z:ACLTST.SETTING@N" in after[0] and "12.5" in after[0]
