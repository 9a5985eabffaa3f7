"""The supervised proxy's audit records: JSON lines of each call and reply, and the capture file.

The bearer token is never in them (:meth:`~acnet_proto.proxy.decision.RequestContext.of_call`
drops the ``authorization`` metadata), nor is any other metadata.

Every record is bounded, because refused calls come from anyone who can reach the
port (an unbounded log once grew 528 MB in 4.8 s):

- **text** a peer chose (DRFs, the peer's name, a denial's reason, text values) is cut
  to a number of characters *as written* (JSON escapes counted), then
  ``... (+N more chars)`` says how much was left out; :func:`audit_line` escapes
  everything outside printable ASCII, so no record can hold a newline, a
  terminal escape or a forged record;
- an **allowed** call (:data:`ALLOWED`) is the audit trail: every DRF and every
  setting is listed (each DRF is valid, so at most
  :data:`~acnet_proto.drf.MAX_DRF_LENGTH` characters), a value array beyond
  1,024 elements is summarised by its first 1,024 with the setting marked
  ``"truncated": true`` and its length in ``"items"``, and ``raw`` holds the
  whole request; its record is bounded by the request (the server's
  ``max_request_bytes``);
- a **refused** call (:data:`REFUSED`) lists its first 8 DRFs (then
  ``"drfs_omitted": K``), text cut at 200 characters, values at 4 elements, and
  of its request only the first 256 bytes (``raw_head``, with ``raw_bytes`` the
  whole size); if the line is still over 4,096 characters its values, then its
  raw head, then its DRFs are left out (``"values_omitted"``, ...). A refused
  record is therefore at most 4 KiB, whatever was sent.

A record that lost anything says so: ``"truncated": true``.

Refused calls are also rate-limited before they are written:
:class:`~acnet_proto.proxy.budget.RefusalBudget` decides which, and
:func:`summary_entry` is the record that counts the rest.
Pure: no clock (callers pass ``now``), no I/O.
"""

from __future__ import annotations

import base64
import enum
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from acnet_proto.drf import MAX_DRF_LENGTH
from acnet_proto.errors import ConfigurationError
from acnet_proto.proxy.budget import RefusalBudget, Unwritten
from acnet_proto.proxy.decision import PolicyDecision, RequestContext

__all__ = [
    "ALLOWED",
    "REFUSED",
    "SUMMARY_PEERS",
    "RecordBounds",
    # the rate limit's (acnet_proto.proxy.budget), importable from here as before the split
    "RefusalBudget",
    "Unwritten",
    "audit_entry",
    "audit_line",
    "captured",
    "clipped",
    "json_value",
    "proto_record",
    "reply_entry",
    "summary_entry",
]


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


# -- bounds ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordBounds:
    """How much of a call one record keeps.

    ``drfs``: DRFs (and settings) listed, None for all; ``text_chars``: characters of
    each text, as JSON writes it; ``value_items``: elements of each value array;
    ``raw_bytes``: bytes of the request kept as ``raw_head`` (None: the whole
    request as ``raw``); ``record_chars``: the longest line (None: no limit).
    """

    drfs: int | None
    text_chars: int
    value_items: int
    raw_bytes: int | None
    record_chars: int | None

    def __post_init__(self) -> None:
        for name in ("drfs", "text_chars", "value_items", "raw_bytes", "record_chars"):
            value = getattr(self, name)
            optional = name in ("drfs", "raw_bytes", "record_chars")
            if not ((optional and value is None) or (type(value) is int and value >= 1)):
                raise ConfigurationError(
                    f"RecordBounds.{name} must be a positive integer"
                    f"{' or None' if optional else ''}, got {value!r}"
                )


#: An allowed call's record: the audit trail of what was read or set.
ALLOWED = RecordBounds(
    drfs=None, text_chars=MAX_DRF_LENGTH, value_items=1024, raw_bytes=None, record_chars=None
)
#: A refused call's record: enough to see who tried what, at most 4 KiB.
REFUSED = RecordBounds(drfs=8, text_chars=200, value_items=4, raw_bytes=256, record_chars=4096)


def _cost(char: str) -> int:
    """Characters JSON (ASCII only) writes for ``char``."""
    if " " <= char < "\x7f":
        return 2 if char in '"\\' else 1
    return 12 if ord(char) > 0xFFFF else 6  # \uXXXX (twice for a surrogate pair)


def clipped(text: object, limit: int) -> tuple[str, bool]:
    """``text`` cut so that JSON writes at most about ``limit`` characters of it, then
    ``... (+N more chars)``; and True if it was cut."""
    text = text if isinstance(text, str) else str(text)
    budget, end = limit, 0
    for char in text[:limit]:
        budget -= _cost(char)
        if budget < 0:
            break
        end += 1
    if end == len(text):
        return text, False
    return f"{text[:end]}... (+{len(text) - end} more chars)", True


class _Record:
    """One record being built: its bounds, and whether anything was left out."""

    def __init__(self, bounds: RecordBounds) -> None:
        self.bounds = bounds
        self.truncated = False

    def text(self, value: object) -> str:
        text, cut = clipped(value, self.bounds.text_chars)
        self.truncated |= cut
        return text

    def value(self, value: Any) -> tuple[Any, bool]:
        """``value`` as JSON holds it, within the bounds; True if anything was left out."""
        own = _Record(self.bounds)
        shown = own._value(value)
        self.truncated |= own.truncated
        return shown, own.truncated

    def _value(self, value: Any) -> Any:
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        if isinstance(value, (np.ndarray, list, tuple)):
            head = value[: self.bounds.value_items]
            self.truncated |= len(value) > len(head)
            return [self._value(v) for v in head]
        if isinstance(value, dict):
            items = list(value.items())
            self.truncated |= len(items) > self.bounds.value_items
            return {self.text(k): self._value(v) for k, v in items[: self.bounds.value_items]}
        if isinstance(value, (bytes, bytearray)):
            keep = self.bounds.text_chars // 2  # two hex digits a byte
            if len(value) <= keep:
                return bytes(value).hex()
            self.truncated = True
            return f"{bytes(value[:keep]).hex()}... (+{len(value) - keep} more bytes)"
        if isinstance(value, str):
            return self.text(value)
        return json_value(value)


def _raw(message: object) -> bytes | None:
    serialize = getattr(message, "SerializeToString", None)
    return None if serialize is None else bytes(serialize())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- records -----------------------------------------------------------------------------------


def audit_entry(
    seq: int,
    ts: str,
    ctx: RequestContext,
    decision: PolicyDecision,
    *,
    raw: bool = False,
    bounds: RecordBounds | None = None,
) -> dict[str, Any]:
    """The ``"in"`` record of a call: who, what, the verdict and why (a refusal also
    names its ``policy``: None when the proxy's own checks refused, a malformed call or
    a missing token); with ``raw``, the request's protobuf bytes (base64).

    ``bounds``: :data:`ALLOWED` or :data:`REFUSED` by the verdict, unless given (see the
    module docstring). Never the call's metadata.
    """
    bounds = bounds or (ALLOWED if decision.allowed else REFUSED)
    record = _Record(bounds)
    listed = ctx.drfs if bounds.drfs is None else ctx.drfs[: bounds.drfs]
    entry: dict[str, Any] = {
        "ts": ts,
        "seq": seq,
        "dir": "in",
        "peer": record.text(ctx.peer),
        "method": record.text(ctx.rpc_method),
        "drfs": [record.text(d) for d in listed],
        "allowed": decision.allowed,
        "reason": None if decision.reason is None else record.text(decision.reason),
    }
    if not decision.allowed:
        entry["policy"] = None if decision.policy is None else record.text(decision.policy)
    if len(listed) < len(ctx.drfs):
        entry["drfs_omitted"] = len(ctx.drfs) - len(listed)
        record.truncated = True
    if ctx.values:
        entry["values"] = [_setting(record, d, v) for d, v in ctx.values[: len(listed)]]
    if raw and (data := _raw(ctx.raw_request)) is not None:
        _add_raw(entry, record, data)
    if record.truncated:
        entry["truncated"] = True
    return _within(entry, bounds.record_chars, len(ctx.values))


def _setting(record: _Record, drf: str, value: Any) -> dict[str, Any]:
    shown, cut = record.value(value)
    setting: dict[str, Any] = {"drf": record.text(drf), "value": shown}
    if cut:
        setting["truncated"] = True
        if isinstance(value, (np.ndarray, list, tuple, dict, bytes, bytearray)):
            setting["items"] = len(value)
    return setting


def _add_raw(entry: dict[str, Any], record: _Record, data: bytes) -> None:
    limit = record.bounds.raw_bytes
    if limit is None or len(data) <= limit:
        entry["raw"] = _b64(data)
        return
    entry["raw_head"], entry["raw_bytes"] = _b64(data[:limit]), len(data)
    record.truncated = True


def _within(entry: dict[str, Any], limit: int | None, settings: int) -> dict[str, Any]:
    """``entry``, its values, raw head and DRFs left out in turn until its line fits."""
    if limit is None:
        return entry
    for key, note, count in (
        ("values", "values_omitted", settings),
        ("raw_head", None, 0),
        ("drfs", "drfs_omitted", len(entry["drfs"]) + entry.get("drfs_omitted", 0)),
    ):
        if len(audit_line(entry)) <= limit:
            break
        if entry.pop(key, None) is not None:
            entry["truncated"] = True
            if note is not None:
                entry[note] = count
    return entry


def reply_entry(
    seq: int, ts: str, peer: str, method: str, reply: object, *, raw: bool = False
) -> dict[str, Any]:
    """The ``"out"`` record of one reply to call ``seq``; with ``raw``, its protobuf bytes."""
    peer_text, _ = clipped(peer, ALLOWED.text_chars)
    method_text, _ = clipped(method, ALLOWED.text_chars)
    entry: dict[str, Any] = {"ts": ts, "seq": seq, "dir": "out", "peer": peer_text}
    entry["method"] = method_text
    if raw and (data := _raw(reply)) is not None:
        entry["raw"] = _b64(data)
    return entry


def audit_line(entry: dict[str, Any]) -> str:
    """``entry`` as one line of the audit log: JSON in printable ASCII, then a newline.

    JSON escapes control characters and (ASCII only) everything beyond ASCII; DEL is
    escaped too, so a peer's text cannot break a line or reach a terminal as is.
    """
    return json.dumps(entry, separators=(",", ":")).replace("\x7f", "\\u007f") + "\n"


def captured(message: object, allowed: bool, bounds: RecordBounds = REFUSED) -> bytes | None:
    """The bytes of ``message`` for the capture file: an allowed call's always; a refused
    one's only up to ``bounds.raw_bytes`` (a message cut short could not be read back)."""
    data = _raw(message)
    if data is None or allowed or bounds.raw_bytes is None or len(data) <= bounds.raw_bytes:
        return data
    return None


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


# -- the summary of refused calls not written ---------------------------------------------------


#: Peers one summary record names (those with the most unwritten calls).
SUMMARY_PEERS = 32


def summary_entry(seq: int, ts: str, unwritten: Unwritten, rule: str) -> dict[str, Any]:
    """The ``"summary"`` record of refused calls that were counted, not written.

    ``unwritten``: how many in all; ``peers``: peer address (no port) -> how many, for the
    :data:`SUMMARY_PEERS` peers with the most (``peers_omitted``: how many peers were not
    named); ``untracked``: calls from peers beyond the budget's ``max_peers``;
    ``seconds``: from the first of them to the last; ``rule``: the budget that held them
    back. For example ``{"ts": ..., "seq": 70, "dir": "summary", "unwritten": 4937,
    "peers": {"ipv4:127.0.0.1": 4937}, "seconds": 3.2, "rule": "refused calls beyond 60
    per 60s from one peer address (600 in all) are counted, not written"}``.
    """
    ranked = sorted(unwritten.peers.items(), key=lambda item: -item[1])
    named = ranked[:SUMMARY_PEERS]
    entry: dict[str, Any] = {
        "ts": ts,
        "seq": seq,
        "dir": "summary",
        "unwritten": unwritten.total,
        "peers": {clipped(peer, REFUSED.text_chars)[0]: count for peer, count in named},
        "seconds": round(unwritten.last - unwritten.first, 3),
        "rule": rule,
    }
    if len(ranked) > len(named):
        entry["peers_omitted"] = len(ranked) - len(named)
    if unwritten.others:
        entry["untracked"] = unwritten.others
    return entry
