"""The supervised proxy's audit log: the JSON-lines file of each call and reply.

What a record holds is the pure :mod:`acnet_proto.proxy.audit`'s; this module
writes the records to files.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from acnet_proto.proxy import (
    PolicyDecision,
    RequestContext,
    audit_entry,
    proto_record,
    reply_entry,
)

__all__ = ["AuditLog"]


class AuditLog:
    """Every call through a :class:`SupervisedServer`, one JSON object per line in ``path``.

    A call's record (``"dir": "in"``): ``ts`` (UTC, ISO 8601), ``seq``,
    ``peer``, ``method``, ``drfs``, ``allowed``, ``reason``, and for a
    ``Set`` its ``values``. With ``log_responses``, each reply gets an
    ``"out"`` record with its call's ``seq``. ``capture_raw`` adds the
    protobuf message (base64) to each record as ``raw``; ``proto_path``
    writes the messages to a binary file instead (see
    :func:`acnet_proto.proxy.policies.proto_record`). Files are appended to and
    flushed every ``flush_interval`` records; :meth:`close` closes them (a
    later record opens them again). Safe to share between threads.
    """

    def __init__(
        self,
        path: str | Path,
        proto_path: str | Path | None = None,
        log_responses: bool = False,
        flush_interval: int = 1,
        *,
        capture_raw: bool = False,
    ) -> None:
        if type(flush_interval) is not int or flush_interval < 1:
            raise ValueError(f"flush_interval must be a positive integer, got {flush_interval!r}")
        self.path = Path(path)
        self.proto_path = None if proto_path is None else Path(proto_path)
        self.log_responses = log_responses
        self.capture_raw = capture_raw
        self.flush_interval = flush_interval
        self._lock = threading.Lock()
        self._json: IO[str] | None = self.path.open("a", encoding="utf-8")  # fail now, not later
        self._proto: IO[bytes] | None = None
        self._unflushed = 0
        self._seq = 0

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def log_request(self, ctx: RequestContext, decision: PolicyDecision) -> int:
        """Record a call and its verdict; its ``seq``, for the replies' records."""
        with self._lock:
            self._seq += 1
            stamp = datetime.now(UTC).isoformat()
            self._write(audit_entry(self._seq, stamp, ctx, decision, raw=self.capture_raw))
            self._capture(ctx.rpc_method, "in", ctx.raw_request)
            self._flush()
            return self._seq

    def log_response(self, seq: int, peer: str, method: str, reply: Any) -> None:
        """Record one reply to call ``seq`` (only with ``log_responses``)."""
        if not self.log_responses:
            return
        with self._lock:
            stamp = datetime.now(UTC).isoformat()
            self._write(reply_entry(seq, stamp, peer, method, reply, raw=self.capture_raw))
            self._capture(method, "out", reply)
            self._flush()

    def _write(self, entry: dict[str, Any]) -> None:
        if self._json is None:
            self._json = self.path.open("a", encoding="utf-8")
        self._json.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._unflushed += 1

    def _capture(self, method: str, direction: str, message: Any) -> None:
        if self.proto_path is None or message is None:
            return
        if self._proto is None:
            self._proto = self.proto_path.open("ab")
        self._proto.write(proto_record(method, direction, message.SerializeToString()))

    def _flush(self) -> None:
        if self._unflushed >= self.flush_interval:
            for file in (self._json, self._proto):
                if file is not None:
                    file.flush()
            self._unflushed = 0

    def close(self) -> None:
        """Flush and close the files; idempotent."""
        with self._lock:
            for file in (self._json, self._proto):
                if file is not None:
                    file.close()
            self._json = self._proto = None
            self._unflushed = 0
