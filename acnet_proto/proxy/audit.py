"""The supervised proxy's audit records: JSON lines of each call and reply, and the capture file.

The bearer token is never in them (:meth:`~acnet_proto.proxy.decision.RequestContext.of_call`
drops the ``authorization`` metadata).
"""

from __future__ import annotations

import base64
import enum
import math
from typing import Any

import numpy as np

from acnet_proto.proxy.decision import PolicyDecision, RequestContext

__all__ = ["audit_entry", "json_value", "proto_record", "reply_entry"]


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: arrays as lists, bytes as hex, non-finite floats as text."""
    if isinstance(value, np.ndarray):
        return [json_value(v) for v in value.tolist()]
    if isinstance(value, (np.generic,)):
        return json_value(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.name
    return value


def _raw(message: object) -> str | None:
    serialize = getattr(message, "SerializeToString", None)
    return None if serialize is None else base64.b64encode(serialize()).decode("ascii")


def audit_entry(
    seq: int, ts: str, ctx: RequestContext, decision: PolicyDecision, *, raw: bool = False
) -> dict[str, Any]:
    """The ``"in"`` record of a call: who, what, the verdict and why; with ``raw``, the
    request's protobuf bytes (base64). Never the call's metadata."""
    entry: dict[str, Any] = {
        "ts": ts,
        "seq": seq,
        "dir": "in",
        "peer": ctx.peer,
        "method": ctx.rpc_method,
        "drfs": list(ctx.drfs),
        "allowed": decision.allowed,
        "reason": decision.reason,
    }
    if ctx.values:
        entry["values"] = [{"drf": d, "value": json_value(v)} for d, v in ctx.values]
    if raw and (data := _raw(ctx.raw_request)) is not None:
        entry["raw"] = data
    return entry


def reply_entry(
    seq: int, ts: str, peer: str, method: str, reply: object, *, raw: bool = False
) -> dict[str, Any]:
    """The ``"out"`` record of one reply to call ``seq``; with ``raw``, its protobuf bytes."""
    entry: dict[str, Any] = {"ts": ts, "seq": seq, "dir": "out", "peer": peer, "method": method}
    if raw and (data := _raw(reply)) is not None:
        entry["raw"] = data
    return entry


# the binary capture file: per message, a tag byte, its length (varint), its bytes
_TAGS = {("Read", "in"): 0x00, ("Read", "out"): 0x01, ("Set", "in"): 0x02, ("Set", "out"): 0x03}


def proto_record(method: str, direction: str, data: bytes) -> bytes:
    """One message of the capture file: tag (Read request 0, reply 1; Set request 2,
    reply 3), the length as a protobuf varint, then the serialized message."""
    tag = _TAGS[(method, direction)]
    length, varint = len(data), bytearray()
    while length > 0x7F:
        varint.append(0x80 | (length & 0x7F))
        length >>= 7
    varint.append(length)
    return bytes((tag,)) + bytes(varint) + data
