"""The supervised proxy's audit log: the JSON-lines file of each call and reply.

What a record holds and its bounds are the pure :mod:`acnet_proto.proxy.audit`'s,
the rate of refused records :mod:`acnet_proto.proxy.budget`'s; this module
writes the records to files.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from acnet_proto.errors import ConfigurationError
from acnet_proto.limits import DEFAULT_LIMITS
from acnet_proto.proxy import PolicyDecision, RequestContext
from acnet_proto.proxy.audit import (
    audit_entry,
    audit_line,
    captured,
    proto_record,
    reply_entry,
    summary_entry,
)
from acnet_proto.proxy.budget import RefusalBudget

__all__ = ["AuditLog"]


class AuditLog:
    """Every call through a :class:`SupervisedServer`, one JSON object per line in ``path``.

    A call's record (``"dir": "in"``): ``ts`` (UTC, ISO 8601), ``seq``,
    ``peer``, ``method``, ``drfs``, ``allowed``, ``reason``, for a refusal the
    ``policy`` that refused (null: the proxy's own checks, a malformed call or a
    missing token), and for a ``Set`` its ``values``. With ``log_responses``, each
    reply gets an ``"out"`` record with its call's ``seq``. ``capture_raw`` adds the
    protobuf message (base64) to each record as ``raw``; ``proto_path`` writes the
    messages to a binary file instead (see :func:`acnet_proto.proxy.audit.proto_record`).

    Records are bounded (:mod:`acnet_proto.proxy.audit` says how): an allowed call's
    lists every DRF and setting, value arrays beyond 1,024 elements summarised and
    marked ``"truncated": true``; a refused call's is at most 4 KiB, and a refused
    request over 256 bytes is left out of the capture file.

    An allowed call is always written, before :meth:`log_request` returns (the server
    makes no setting whose record could not be written). Refused calls are written
    at most ``max_refusals_per_minute`` a minute from one peer address (its port
    ignored) and ``max_refusals_per_minute_total`` a minute in all; the rest are
    counted, and a ``"dir": "summary"`` record (see
    :func:`~acnet_proto.proxy.audit.summary_entry`) says how many from which peer:
    once they have been quiet for ``quiet_period`` s, at least once a minute while
    they go on, and on :meth:`close`. ``clock`` is the monotonic clock those limits
    are measured by (a test's fake one, say).

    Files are appended to and flushed every ``flush_interval`` records; :meth:`close`
    closes them (a later record opens them again). Safe to share between threads.
    """

    def __init__(
        self,
        path: str | Path,
        proto_path: str | Path | None = None,
        log_responses: bool = False,
        flush_interval: int = 1,
        *,
        capture_raw: bool = False,
        max_refusals_per_minute: int = 60,
        max_refusals_per_minute_total: int = 600,
        quiet_period: float = DEFAULT_LIMITS.quiet_period,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, count in (
            ("flush_interval", flush_interval),
            ("max_refusals_per_minute", max_refusals_per_minute),
            ("max_refusals_per_minute_total", max_refusals_per_minute_total),
        ):
            if type(count) is not int or count < 1:
                raise ConfigurationError(f"{name} must be a positive integer, got {count!r}")
        self._budget = RefusalBudget(
            max_refusals_per_minute, max_refusals_per_minute_total, quiet_period=quiet_period
        )
        self.path = Path(path)
        self.proto_path = None if proto_path is None else Path(proto_path)
        self.log_responses = log_responses
        self.capture_raw = capture_raw
        self.flush_interval = flush_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._json: IO[str] | None = self.path.open("a", encoding="utf-8")  # fail now, not later
        self._proto: IO[bytes] | None = None
        self._timer: threading.Timer | None = None
        self._unflushed = 0
        self._seq = 0

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def log_request(self, ctx: RequestContext, decision: PolicyDecision) -> int | None:
        """Record a call and its verdict; its ``seq``, for the replies' records, or None if
        it was a refusal beyond the rate limit (counted for a summary, not written).
        Raises if an allowed call's record cannot be written."""
        with self._lock:
            now = self._clock()
            self._summarise(now)
            if not decision.allowed and not self._budget.admit(ctx.peer, now):
                self._remind()
                return None
            self._seq += 1
            self._write(audit_entry(self._seq, _stamp(), ctx, decision, raw=self.capture_raw))
            self._capture(ctx.rpc_method, "in", captured(ctx.raw_request, decision.allowed))
            self._flush()
            return self._seq

    def log_response(self, seq: int, peer: str, method: str, reply: Any) -> None:
        """Record one reply to call ``seq`` (only with ``log_responses``)."""
        if not self.log_responses:
            return
        with self._lock:
            self._write(reply_entry(seq, _stamp(), peer, method, reply, raw=self.capture_raw))
            self._capture(method, "out", captured(reply, True))
            self._flush()

    def _summarise(self, now: float, *, final: bool = False) -> None:
        """Write the summary of unwritten refusals, if one is due."""
        unwritten = self._budget.unwritten(now, final=final)
        if unwritten is not None:
            self._seq += 1
            self._write(summary_entry(self._seq, _stamp(), unwritten, self._budget.rule))
            self._flush()

    def _remind(self) -> None:
        # a burst that simply stops sends no call that would write its summary: a timer does
        if self._timer is None:
            self._timer = threading.Timer(self._budget.quiet_period, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            self._summarise(self._clock())
            if self._budget.pending:
                self._remind()

    def _write(self, entry: dict[str, Any]) -> None:
        if self._json is None:
            self._json = self.path.open("a", encoding="utf-8")
        self._json.write(audit_line(entry))
        self._unflushed += 1

    def _capture(self, method: str, direction: str, data: bytes | None) -> None:
        if self.proto_path is None or data is None:
            return
        if self._proto is None:
            self._proto = self.proto_path.open("ab")
        self._proto.write(proto_record(method, direction, data))

    def _flush(self) -> None:
        if self._unflushed >= self.flush_interval:
            for file in (self._json, self._proto):
                if file is not None:
                    file.flush()
            self._unflushed = 0

    def close(self) -> None:
        """Write the summary of refusals not yet reported, flush and close the files;
        idempotent."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._summarise(self._clock(), final=True)
            for file in (self._json, self._proto):
                if file is not None:
                    file.close()
            self._json = self._proto = None
            self._unflushed = 0


def _stamp() -> str:
    return datetime.now(UTC).isoformat()
