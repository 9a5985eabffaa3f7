"""What our servers share to refuse a client: a log of refusals once per burst, and stream slots.

The decisions are the core's (:class:`~acnet_proto.limits.Bursts`,
:class:`~acnet_proto.limits.StreamQuota`); this module adds what a server
needs around them: the monotonic clock (also asyncio's default loop clock,
so the asyncio DPM simulator shares it), a lock for servers that answer in
threads, and the log lines.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from acnet_proto._text import shown
from acnet_proto.limits import Bursts, ServerLimits, StreamQuota, peer_address

__all__ = ["FIRST", "TOTAL", "RefusalLog", "StreamSlots"]

#: The line for the first refusal of a burst: ``{what}`` the server, ``{kind}`` the kind of
#: refusal, ``{source}`` `` from PEER`` (or nothing), ``{why}``, ``{quiet}`` the quiet period.
FIRST = (
    "{what}: {kind}{source}: {why} (more like it are counted, not logged, "
    "until {quiet:g} s pass without one)"
)
#: The line for a burst's total once it ended: ``{what}``, ``{kind}``, ``{count}``.
TOTAL = "{what}: {kind}: {count} in the last burst"


class RefusalLog:
    """Refusals logged to ``logger`` once per burst of each kind, then the burst's total once
    it ended (``quiet_period`` s without one of its kind); thread-safe.

    ``what`` names the server in each line; ``first`` and ``total`` are the
    lines' formats (:data:`FIRST`, :data:`TOTAL`). The peer and the reason
    are shown bounded and escaped, whatever they hold.
    """

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        quiet_period: float,
        *,
        first: str = FIRST,
        total: str = TOTAL,
    ) -> None:
        self._what = what
        self._log = logger
        self._quiet_period = quiet_period
        self._first = first
        self._total = total
        self._bursts = Bursts(quiet_period)
        self._lock = threading.Lock()

    def refused(self, kind: str, peer: str | None, why: str) -> None:
        """One refusal of ``kind`` (for ``peer``, if it has one), for the reason ``why``."""
        with self._lock:
            first, total = self._bursts.refused(kind, time.monotonic())
        if total is not None:
            self._report(kind, total)
        if first:
            source = "" if peer is None else f" from {shown(peer, 80)}"
            line = self._first.format(
                what=self._what, kind=kind, source=source, why=shown(why), quiet=self._quiet_period
            )
            self._log.warning("%s", line)

    def sweep(self) -> None:
        """Log the total of every burst that has ended (call it now and then)."""
        self._report_all(time.monotonic())

    def flush(self) -> None:
        """Log the total of every burst not yet reported (when the server stops)."""
        self._report_all(math.inf)

    def _report_all(self, now: float) -> None:
        with self._lock:
            ended = self._bursts.ended_all(now)
        for kind, total in ended:
            self._report(kind, total)

    def _report(self, kind: str, total: int) -> None:
        self._log.warning("%s", self._total.format(what=self._what, kind=kind, count=total))


class StreamSlots:
    """A :class:`~acnet_proto.limits.StreamQuota` of ``per_peer`` streams per client address
    and ``total`` per server, for servers that answer in threads: thread-safe, and keyed by
    peer (a grpc peer string, or a host), counted under its :func:`peer_address`.

    ``what`` names the streams in refusals (``"/pendwait requests"``).
    """

    def __init__(self, per_peer: int, total: int, what: str = "streams") -> None:
        limits = ServerLimits(max_streams_per_peer=per_peer, max_streams=total)
        self._quota = StreamQuota(limits, what)
        self._lock = threading.Lock()

    def take(self, peer: str) -> str | None:
        """Hold a slot for a stream of ``peer`` and return None; or, if a limit is reached,
        hold nothing and return why (naming the limit and its value)."""
        with self._lock:
            return self._quota.take(peer_address(peer))

    def give_back(self, peer: str) -> None:
        """Free the slot :meth:`take` held for a stream of ``peer``."""
        with self._lock:
            self._quota.give_back(peer_address(peer))

    def open(self, peer: str | None = None) -> int:
        """How many streams are open: of ``peer``'s address, or in all (None)."""
        with self._lock:
            return self._quota.open(None if peer is None else peer_address(peer))
