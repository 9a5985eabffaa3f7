"""Hostile input to every public entry point: a clear, typed error that names the input.

One table: the call, the bad input, the error type, and words the message
must contain (so the user learns *which* input was wrong). Calls that need a
server get the simulator; they must fail before sending anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import acnet_proto
from acnet_proto import drf
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.api.auth import JWTAuth
from acnet_proto.api.device import Device
from acnet_proto.engine._state import Role
from acnet_proto.engine.connection import DPMConnection
from acnet_proto.engine.framing import FrameSplitter
from acnet_proto.errors import DecodeError, LocalProtocolError, ProtocolError
from acnet_proto.pc import daqdata, dpm
from acnet_proto.plans.lists import ReadBatch
from acnet_proto.plans.settings import WriteBatch, setting_for
from acnet_proto.sim import SettingsPolicy
from acnet_proto.status import Status, pack, unpack


@pytest.fixture(scope="module")
def backend() -> Iterator[DPMBackend]:
    with SimServer.in_thread() as sim, DPMBackend(sim.host, sim.port) as b:
        yield b


HUGE_NAME = "M:" + "X" * 10_000
NON_ASCII = "M:ÖUTTMP"

# (id, call taking the backend, error type, words the message must contain)
CASES: list[tuple[str, Callable[[DPMBackend], Any], type[Exception], tuple[str, ...]]] = [
    # --- reads: wrong types, empty and huge lists, invalid DRFs
    ("read int", lambda b: b.read(42), TypeError, ("DRF", "int")),
    ("read None", lambda b: b.read(None), TypeError, ("DRF", "NoneType")),
    ("read bytes", lambda b: b.read(b"M:OUTTMP"), TypeError, ("DRF", "bytes")),
    ("read empty", lambda b: b.read(""), ValueError, ("DRF",)),
    ("read bad DRF", lambda b: b.read("M:OUTTMP[1:"), ValueError, ("M:OUTTMP[1:",)),
    ("read bad event", lambda b: b.read("M:OUTTMP@x"), ValueError, ("M:OUTTMP@x",)),
    ("read @N", lambda b: b.read("M:OUTTMP@N"), ValueError, ("M:OUTTMP@N", "never", "@I")),
    ("get_many @N", lambda b: b.get_many(["M:OUTTMP", "Z@ACLTST@N"]), ValueError, ("Z@ACLTST@N",)),
    ("read huge name", lambda b: b.read(HUGE_NAME), ValueError, ("long",)),
    ("read non-ASCII", lambda b: b.read(NON_ASCII), ValueError, ("Ö",)),
    ("get_many str", lambda b: b.get_many("M:OUTTMP"), TypeError, ("list", "str")),
    ("get_many empty", lambda b: b.get_many([]), ValueError, ("empty",)),
    ("get_many None item", lambda b: b.get_many(["M:OUTTMP", None]), TypeError, ("drfs[1]",)),
    ("get_many bad item", lambda b: b.get_many(["M:OUTTMP", "?"]), ValueError, ("'?'",)),
    ("get_many dict", lambda b: b.get_many({"M:OUTTMP": 1}), TypeError, ("dict",)),
    ("timeout negative", lambda b: b.get("M:OUTTMP", timeout=-1), ValueError, ("timeout",)),
    ("timeout NaN", lambda b: b.get("M:OUTTMP", timeout=float("nan")), ValueError, ("timeout",)),
    ("timeout str", lambda b: b.get("M:OUTTMP", timeout="5"), ValueError, ("timeout", "'5'")),
    ("timeout inf", lambda b: b.get("M:OUTTMP", timeout=float("inf")), ValueError, ("timeout",)),
    # --- streams
    ("subscribe str", lambda b: b.subscribe("M:OUTTMP@p,1000"), TypeError, ("list",)),
    # --- the top-level calls: the backends' TypeError, before any backend or DRF
    ("top get_many str", lambda b: acnet_proto.get_many("M:OUTTMP"), TypeError, ("list", "str")),
    ("top read_many str", lambda b: acnet_proto.read_many("M:OUTTMP"), TypeError, ("list",)),
    ("top subscribe str", lambda b: acnet_proto.subscribe("M:OUTTMP@p,200"), TypeError, ("list",)),
    ("top configure backend", lambda b: acnet_proto.configure(backend="x"), ValueError, ("'x'",)),
    ("top configure auth", lambda b: acnet_proto.configure(auth="kerb"), ValueError, ("'krb'",)),
    ("subscribe empty", lambda b: b.subscribe([]), ValueError, ("empty",)),
    (
        "subscribe callback",
        lambda b: b.subscribe(["M:OUTTMP@p,1000"], callback=3),
        TypeError,
        ("callback",),
    ),
    (
        "subscribe arity",
        lambda b: b.subscribe(["M:OUTTMP@p,1000"], callback=lambda r: r),
        TypeError,
        ("callback", "two arguments"),
    ),
    # --- writes (fail on the input before asking for credentials)
    (
        "write NaN",
        lambda b: WriteBatch([("Z:ACLTST", float("nan"))], None, "u"),
        ValueError,
        ("Z:ACLTST", "finite"),
    ),
    (
        "write inf",
        lambda b: setting_for("Z:ACLTST", 1, float("-inf")),
        ValueError,
        ("Z:ACLTST", "finite"),
    ),
    ("write object", lambda b: setting_for("Z:ACLTST", 1, object()), TypeError, ("Z:ACLTST",)),
    (
        "write 2-D",
        lambda b: setting_for("Z:ACLTS1", 1, np.zeros((3, 3))),
        TypeError,
        ("Z:ACLTS1", "2-D"),
    ),
    (
        "write mixed list",
        lambda b: setting_for("Z:ACLTS1", 1, [1.0, "x"]),
        TypeError,
        ("Z:ACLTS1",),
    ),
    ("write read-only", lambda b: b.write("Z~ACLTST", "x"), ValueError, ("read-only",)),
    ("write bad pair", lambda b: b.write_many([("Z:ACLTST",)]), TypeError, ("pair",)),
    ("write str", lambda b: b.write_many("Z:ACLTST"), TypeError, ("pairs",)),
    ("write dict key", lambda b: b.write("Z@ACLTST", {"bogus": 1}), ValueError, ("bogus",)),
    ("write dict READING", lambda b: b.write("Z:ACLTST", {"minimum": 1}), ValueError, ("READING",)),
    ("write dict STATUS", lambda b: b.write("Z|ACLTST", {"on": 1}), ValueError, ("BasicControl",)),
    # --- devices
    ("Device int", lambda b: Device(7), TypeError, ("DRF",)),
    ("Device bad", lambda b: Device("M:OUTTMP[["), ValueError, ("M:OUTTMP[[",)),
    # --- the engine
    (
        "send non-message",
        lambda b: DPMConnection(Role.CLIENT).send("AddToList"),
        LocalProtocolError,
        ("str", "'AddToList'"),
    ),
    (
        "send before open",
        lambda b: DPMConnection(Role.CLIENT).send(dpm.StartListRequest(list_id=1)),
        LocalProtocolError,
        ("StartList",),
    ),
    ("receive str", lambda b: DPMConnection(Role.CLIENT).receive_data("abc"), TypeError, ("str",)),
    ("frame size", lambda b: FrameSplitter(max_frame_size=0), ValueError, ("max_frame_size",)),
    (
        "lying length",
        lambda b: FrameSplitter(max_frame_size=10).feed(b"\x7f\xff\xff\xff"),
        ProtocolError,
        ("max_frame_size",),
    ),
    ("decode str", lambda b: dpm.decode_reply("53444402"), TypeError, ("str",)),
    ("decode garbage", lambda b: dpm.decode_reply(b"\x00" * 8), DecodeError, ("offset",)),
    ("decode empty", lambda b: daqdata.decode_request(b""), DecodeError, ("offset 0",)),
    (
        "encode overflow",
        lambda b: dpm.encode(dpm.AddToListReply(list_id=1, ref_id=1, status=1 << 20)),
        LocalProtocolError,
        ("status",),
    ),
    (
        "encode missing",
        lambda b: dpm.encode(dpm.AddToListReply(list_id=1)),
        LocalProtocolError,
        ("ref_id",),
    ),
    (
        "encode wrong type",
        lambda b: dpm.encode(dpm.AddToListRequest(list_id=1, ref_id=1, drf_request=5)),
        LocalProtocolError,
        ("drf_request",),
    ),
    ("ReadBatch huge", lambda b: ReadBatch([HUGE_NAME]), ValueError, ("long",)),
    # --- status codes and credentials
    ("pack range", lambda b: pack(300, 0), ValueError, ("facility",)),
    ("pack type", lambda b: pack("17", 0), TypeError, ("facility",)),
    ("unpack range", lambda b: unpack(1 << 20), ValueError, ("status",)),
    ("Status name", lambda b: Status.from_name("NOT_A_STATUS"), KeyError, ("NOT_A_STATUS",)),
    ("JWT garbage", lambda b: JWTAuth("not-a-jwt"), ValueError, ("3",)),
    (
        "policy roles",
        lambda b: SettingsPolicy.from_toml("default_roles = 3"),
        ValueError,
        ("default_roles",),
    ),
    ("DRF parse int", lambda b: drf.parse(3), TypeError, ("DRF",)),
]


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [pytest.param(c, e, w, id=name) for name, c, e, w in CASES],
)
def test_bad_input_gets_a_typed_error_naming_it(
    backend: DPMBackend, call: Callable[[DPMBackend], Any], error: type, words: tuple[str, ...]
) -> None:
    with pytest.raises(error) as info:
        call(backend)
    text = str(info.value)
    missing = [w for w in words if w not in text]
    assert not missing, f"{type(info.value).__name__}: {text!r} does not mention {missing}"
