"""How many refused calls an audit log writes: per-peer and total token buckets.

Refused calls come from anyone who can reach the proxy's port, so an audit log
writes only some of them: :class:`RefusalBudget` decides which (so many an
interval per peer address, and in all) and counts the rest as
:class:`Unwritten`, which :func:`acnet_proto.proxy.audit.summary_entry` turns
into one record.
Pure: no clock (callers pass ``now``), no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from acnet_proto.errors import ConfigurationError
from acnet_proto.limits import DEFAULT_LIMITS, peer_address

__all__ = ["RefusalBudget", "Unwritten"]


@dataclass
class _Bucket:
    tokens: float
    at: float

    def refill(self, now: float, capacity: int, per_second: float) -> None:
        self.tokens = min(capacity, self.tokens + max(now - self.at, 0.0) * per_second)
        self.at = max(now, self.at)


@dataclass
class Unwritten:
    """Refused calls counted but not written: per peer address, and from peers beyond
    the ones tracked (``others``); ``first``/``last``: when (``now``) the first and last
    of them came."""

    peers: dict[str, int] = field(default_factory=dict)
    others: int = 0
    first: float = 0.0
    last: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.peers.values()) + self.others


class RefusalBudget:
    """Which refused calls an audit log writes: at most ``per_peer`` a minute from one peer
    address (its port ignored) and ``total`` a minute in all, as token buckets (a burst of
    that many, then one every ``60 / per_peer`` s); the rest are counted.

    :meth:`unwritten` hands over the count for a summary record once the burst has been
    quiet for ``quiet_period`` s, or once ``interval`` s after its first unwritten call
    (so a flood that never stops still gets one summary a minute). At most ``max_peers``
    peers are tracked: beyond them a peer has only the ``total`` budget, and its
    unwritten calls are counted as ``others``.
    """

    def __init__(
        self,
        per_peer: int = 60,
        total: int = 600,
        *,
        interval: float = 60.0,
        quiet_period: float = DEFAULT_LIMITS.quiet_period,
        max_peers: int = 1024,
    ) -> None:
        for name, count in (("per_peer", per_peer), ("total", total), ("max_peers", max_peers)):
            if type(count) is not int or count < 1:
                raise ConfigurationError(f"{name} must be a positive integer, got {count!r}")
        for name, seconds in (("interval", interval), ("quiet_period", quiet_period)):
            ok = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
            if not (ok and math.isfinite(seconds) and seconds > 0):
                raise ConfigurationError(f"{name} must be a positive number, got {seconds!r}")
        self.per_peer, self.total, self.max_peers = per_peer, total, max_peers
        self.interval, self.quiet_period = float(interval), float(quiet_period)
        self._buckets: dict[str, _Bucket] = {}
        self._all: _Bucket | None = None
        self._unwritten = Unwritten()

    def __repr__(self) -> str:
        return f"RefusalBudget({self.per_peer}, {self.total}, interval={self.interval})"

    @property
    def rule(self) -> str:
        """The budget in words, for the summary record."""
        return (
            f"refused calls beyond {self.per_peer} per {self.interval:g}s from one peer address "
            f"({self.total} in all) are counted, not written"
        )

    @property
    def pending(self) -> bool:
        """True if refused calls were counted that no summary has reported yet."""
        return self._unwritten.total > 0

    def admit(self, peer: str, now: float) -> bool:
        """True if the refused call of ``peer`` at ``now`` is written; else it is counted."""
        address = peer_address(peer)
        every = self._all = self._all or _Bucket(self.total, now)
        every.refill(now, self.total, self.total / self.interval)
        own = self._bucket(address, now)
        if own is not None:
            own.refill(now, self.per_peer, self.per_peer / self.interval)
        if every.tokens >= 1 and (own is None or own.tokens >= 1):
            every.tokens -= 1
            if own is not None:
                own.tokens -= 1
            return True
        self._count(address, now)
        return False

    def _bucket(self, address: str, now: float) -> _Bucket | None:
        if address not in self._buckets and len(self._buckets) >= self.max_peers:
            for key in [k for k, b in self._buckets.items() if b.at + self.interval <= now]:
                del self._buckets[key]  # idle a whole interval: full again
            if len(self._buckets) >= self.max_peers:
                return None
        return self._buckets.setdefault(address, _Bucket(self.per_peer, now))

    def _count(self, address: str, now: float) -> None:
        unwritten = self._unwritten
        if not self.pending:
            unwritten.first = now
        unwritten.last = now
        if address in unwritten.peers or len(unwritten.peers) < self.max_peers:
            unwritten.peers[address] = unwritten.peers.get(address, 0) + 1
        else:
            unwritten.others += 1

    def unwritten(self, now: float, *, final: bool = False) -> Unwritten | None:
        """The calls counted since the last summary, if one is due at ``now`` (always with
        ``final``: the log is closing); then they are forgotten. None if none is due."""
        counted = self._unwritten
        if not self.pending:
            return None
        quiet = now - counted.last >= self.quiet_period
        if not (final or quiet or now - counted.first >= self.interval):
            return None
        self._unwritten = Unwritten()
        return counted
