"""The decisions of a reconnecting subscription, as actions for an adapter to carry out.

Every streaming backend (DPM over TCP in each I/O style, DMQ, DPM over gRPC)
keeps a subscription alive the same way, so the decisions live here once,
with no clock and no I/O: the adapter says what happened, and the driver
answers with what to do next.

- :class:`Wait` ``(until, then_connect)``: pause until ``until`` (monotonic
  seconds, the adapter's clock), cut short by ``stop()``; then, if
  ``then_connect``, make the next attempt (else the caller's own wait ended
  first, and the attempt stays due);
- :data:`CONNECT`: make the next attempt now;
- :class:`GiveUp` ``(error)``: the stream is over; end it with ``error``, a
  :class:`~acnet_proto.errors.ConnectionLost`.

A blocking adapter, after its connection died of ``exc``::

    step = driver.broke(str(exc), datetime.now(UTC), time.monotonic())
    while True:
        if isinstance(step, GiveUp):
            raise step.error from exc
        if stopped_during(step.until - time.monotonic()):
            return
        try:
            connect()                       # a new connection, the list sent again
        except OSError as exc:
            step = driver.broke(str(exc), datetime.now(UTC), time.monotonic())
            continue
        deliver(driver.connected(datetime.now(UTC)))   # the Gap, before any new reading
        break

and for every batch of readings that arrives, ``deliver(driver.received(readings, at))``.

Where the gap goes: a DPM or DMQ connection that runs its list again has
shown it works, so the :class:`~acnet_proto.streams.reconnect.Gap` is
delivered at once (:meth:`StreamDriver.connected`). A gRPC call only shows
that with its first reading, so there (``gap_on_connect=False``) the gap
comes with it, first in :meth:`StreamDriver.received`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from acnet_proto.errors import ConnectionLost
from acnet_proto.streams.reconnect import Gap, Reconnect, Recovery, summary

__all__ = ["CONNECT", "Connect", "GiveUp", "Step", "StreamDriver", "Wait"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Wait:
    """Pause until ``until`` (monotonic seconds); then connect if ``then_connect``."""

    until: float
    then_connect: bool = True


@dataclass(frozen=True, slots=True)
class Connect:
    """Make the next connection attempt now."""


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The stream is over: end it with :attr:`error`."""

    error: ConnectionLost


#: The one :class:`Connect` action.
CONNECT = Connect()
#: What :meth:`StreamDriver.next_step` and :meth:`StreamDriver.broke` answer.
Step = Wait | Connect | GiveUp


class StreamDriver:
    """One subscription's reconnection decisions.

    ``drfs`` name the stream (in messages and gaps); ``policy`` is its
    :class:`Reconnect` policy, None to never reconnect. See the module
    docstring for ``gap_on_connect``.
    """

    def __init__(
        self, drfs: Sequence[str], policy: Reconnect | None, *, gap_on_connect: bool = True
    ) -> None:
        self.recovery = Recovery(drfs, policy)
        self.drfs = self.recovery.drfs
        self._gap_on_connect = gap_on_connect

    @property
    def down(self) -> bool:
        """True from a :meth:`broke` until the list runs again (its gap is delivered)."""
        return self.recovery.down

    def broke(self, cause: str, at: datetime, now: float, *, retry: bool = True) -> Wait | GiveUp:
        """The connection (or an attempt to make one) died at ``at`` (UTC), ``now`` on the
        adapter's clock, because of ``cause``.

        ``retry=False`` says the failure is not one a new connection could
        mend (a refusal, a reply that breaks the protocol): give up at once.
        Otherwise wait as the policy says, or give up when it allows no more
        attempts.
        """
        if not retry:
            return GiveUp(ConnectionLost(f"the stream of {summary(self.drfs)} broke: {cause}"))
        if self.recovery.broke(cause, at, now) is None:
            return GiveUp(self.recovery.lost())
        return Wait(self.recovery.retry_at)

    def next_step(self, now: float, deadline: float | None = None) -> Wait | Connect:
        """While :attr:`down`, for a caller whose own wait ends at ``deadline`` (None: no
        limit): wait (for the attempt, or for the deadline if it comes first), or connect now.
        """
        until, attempt = self.recovery.retry_wait(deadline)
        if attempt and until <= now:
            return CONNECT
        return Wait(until, then_connect=attempt)

    def connected(self, at: datetime) -> list[Gap]:
        """A new connection runs the list (at ``at``): the gap to deliver now, before any
        reading (none where gaps wait for a reading, or when there was no outage)."""
        if self._gap_on_connect and self.recovery.down:
            return [self.recovery.resumed(at)]
        return []

    def received(self, readings: Sequence[T], at: datetime) -> list[T | Gap]:
        """Readings arrived at ``at``: what to deliver, in order (a pending gap first).

        A reading shows the connection works: the next outage counts its
        attempts from 0 again.
        """
        items: list[T | Gap] = list(readings)
        if items:
            recovery = self.recovery
            if recovery.down:
                items.insert(0, recovery.resumed(at))
            recovery.heard()
        return items
