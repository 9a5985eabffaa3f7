"""The decisions of a reconnecting subscription, as actions for an adapter to carry out.

Every streaming backend (DPM over TCP in each I/O style, DMQ, DPM over gRPC)
keeps a subscription alive the same way, so the decisions live here once,
with no clock and no I/O: the adapter says what happened, and the driver
answers with what to do next.

- :class:`Wait` ``(until, then_connect, gap)``: deliver ``gap`` now if there
  is one (the open :class:`~acnet_proto.streams.reconnect.Gap` that tells the
  user of an outage as it begins), then pause until ``until`` (monotonic
  seconds, the adapter's clock), cut short by ``stop()``; then, if
  ``then_connect``, make the next attempt (else the caller's own wait ended
  first, and the attempt stays due);
- :data:`CONNECT`: make the next attempt now;
- :class:`GiveUp` ``(error)``: the stream is over; raise ``error``, a
  :class:`~acnet_proto.errors.ConnectionLost` (whose ``__cause__`` is the
  failure given to :meth:`StreamDriver.broke`, if any), or the
  :class:`~acnet_proto.errors.AuthenticationError` a reconnection met.

A blocking adapter, after its connection died of ``exc``::

    step = driver.broke(str(exc), datetime.now(UTC), time.monotonic(), error=exc)
    while True:
        if isinstance(step, GiveUp):
            raise step.error
        if step.gap is not None:
            deliver(step.gap)               # the outage, told at once
        if stopped_during(step.until - time.monotonic()):
            return
        try:
            at = datetime.now(UTC)
            connect()                       # a new connection, the list sent again
        except OSError as exc:
            step = driver.broke(str(exc), datetime.now(UTC), time.monotonic(), error=exc)
            continue
        driver.sent(at, time.monotonic())
        break

and for every batch of readings that arrives (or the server's word that the
list runs, ``started``), ``deliver(driver.received(readings, at, started=...))``:
the closed gap comes first, when the list runs again.

Where a connection shows that its list runs: a DPM list when the server
answers ``StartList`` (or sends a reading), a DMQ job at the server's first
message, a gRPC call only with its first reading. An adapter whose
connections send a list calls :meth:`StreamDriver.sent` for each; with
``start_within``, a list that does not run that many seconds after being
sent makes its connection count as dead (:meth:`StreamDriver.wait` says when),
so a server that keeps the connection alive without ever starting the list
is an outage like any other, not an endless wait.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from acnet_proto import drf as _drf
from acnet_proto.api.config import host_port
from acnet_proto.engine.connection import MISSED_HEARTBEATS
from acnet_proto.errors import AuthenticationError, ConnectionLost
from acnet_proto.plans.lists import ListPlan
from acnet_proto.streams.reconnect import (
    SILENT,
    Gap,
    Reconnect,
    Recovery,
    reconnect_policy,
    summary,
)

__all__ = [
    "CONNECT",
    "Connect",
    "Ending",
    "GiveUp",
    "Step",
    "StreamDriver",
    "Wait",
    "heartbeat_driver",
]

T = TypeVar("T")

#: What ends a stream for good: its connection, or credentials a reconnection met refused.
Ending = ConnectionLost | AuthenticationError


@dataclass(frozen=True, slots=True)
class Wait:
    """Deliver ``gap`` (if any), pause until ``until`` (monotonic seconds), then connect if
    ``then_connect``.

    ``gap`` is the open :class:`Gap` of an outage, given by the :meth:`StreamDriver.broke`
    that began it (None for the waits after later failures, and from
    :meth:`StreamDriver.next_step`).
    """

    until: float
    then_connect: bool = True
    gap: Gap | None = None


@dataclass(frozen=True, slots=True)
class Connect:
    """Make the next connection attempt now."""


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The stream is over: end it with :attr:`error`."""

    error: Ending


#: The one :class:`Connect` action.
CONNECT = Connect()
#: What :meth:`StreamDriver.next_step` and :meth:`StreamDriver.broke` answer.
Step = Wait | Connect | GiveUp


class StreamDriver:
    """One subscription's reconnection decisions.

    ``drfs`` name the stream (in messages and gaps); ``policy`` is its
    :class:`Reconnect` policy, None to never reconnect; ``start_within``
    bounds the seconds from :meth:`sent` until the list runs (None: no
    bound); ``server`` names the server in the gaps.
    """

    def __init__(
        self,
        drfs: Sequence[str],
        policy: Reconnect | None,
        *,
        start_within: float | None = None,
        server: str | None = None,
    ) -> None:
        self.recovery = Recovery(drfs, policy, server)
        self.drfs = self.recovery.drfs
        self.start_within = start_within
        self._sent_at: datetime | None = None  # when the list went out on this connection
        self._start_due: float | None = None  # when it must run by, on the adapter's clock
        # the cause of a connection whose list did not start in time (made once, not per wait)
        self._unstarted = (
            None
            if start_within is None
            else f"the server did not start the list within {start_within:g} s "
            "of its request (it kept the connection open without answering it)"
        )

    @property
    def down(self) -> bool:
        """True from a :meth:`broke` until the list runs again (its closed gap is delivered)."""
        return self.recovery.down

    @property
    def starting(self) -> bool:
        """True from :meth:`sent` until the list is seen to run."""
        return self._sent_at is not None

    def broke(
        self,
        cause: str,
        at: datetime,
        now: float,
        *,
        retry: bool = True,
        error: BaseException | None = None,
    ) -> Wait | GiveUp:
        """The connection (or an attempt to make one) died at ``at`` (UTC), ``now`` on the
        adapter's clock, because of ``cause`` (the failure ``error``, if there is one).

        An ``error`` that is an :class:`AuthenticationError` ends the stream
        with itself: a new connection would offer the same credentials.
        ``retry=False`` says the failure is not one a new connection could
        mend (a refusal, a reply that breaks the protocol): give up at once.
        Otherwise wait as the policy says, or give up when it allows no more
        attempts. The first failure of an outage gives, in its :class:`Wait`,
        the open :class:`Gap` to deliver at once. A :class:`ConnectionLost`
        given up with has ``error`` as its ``__cause__``: raise it as it is.
        """
        self._sent_at = self._start_due = None
        if isinstance(error, AuthenticationError):
            return GiveUp(error)
        recovery = self.recovery
        if not retry:
            lost = ConnectionLost(f"the stream of {summary(self.drfs)} broke: {cause}")
        else:
            opening = not recovery.down
            if recovery.broke(cause, at, now) is not None:
                return Wait(recovery.retry_at, gap=recovery.opened() if opening else None)
            lost = recovery.lost()
        if error is not None:
            lost.__cause__ = error
        return GiveUp(lost)

    def next_step(self, now: float, deadline: float | None = None) -> Wait | Connect:
        """While :attr:`down`, for a caller whose own wait ends at ``deadline`` (None: no
        limit): wait (for the attempt, or for the deadline if it comes first), or connect now.
        """
        until, attempt = self.recovery.retry_wait(deadline)
        if attempt and until <= now:
            return CONNECT
        return Wait(until, then_connect=attempt)

    def sent(self, at: datetime, now: float) -> None:
        """A new connection sent the list at ``at`` (UTC; the ``until`` of the outage's
        closed gap), ``now`` on the adapter's clock: it must run by ``now + start_within``."""
        self._sent_at = at
        self._start_due = None if self.start_within is None else now + self.start_within

    def wait(
        self, silent_at: float | None, deadline: float | None = None
    ) -> tuple[float, str | None]:
        """How long a running connection may wait for bytes, and what running out means.

        ``silent_at`` is when the server's silence makes the connection dead
        (DPM: the engine's ``overdue_at``; None: no such rule), ``deadline``
        when the caller's own wait ends (None: never), both on the adapter's
        clock. Returns ``(until, cause)``: wait until ``until`` (``math.inf``:
        no limit); if nothing came by then, the connection is dead of
        ``cause``, or, with ``cause`` None, the caller's wait is simply over.
        """
        until, cause = math.inf, None
        if silent_at is not None:
            until, cause = silent_at, SILENT
        if self._start_due is not None and self._start_due < until:
            until, cause = self._start_due, self._unstarted
        if deadline is not None and deadline < until:
            return deadline, None
        return until, cause

    def received(
        self, readings: Sequence[T], at: datetime, *, started: bool = False
    ) -> Sequence[T | Gap]:
        """Readings arrived at ``at`` (and, if ``started``, the server said the list runs):
        what to deliver, in order (the closed gap of an outage first; else ``readings``
        themselves).

        Either shows the list runs; the gap's ``until`` is when the list was
        :meth:`sent`, or ``at`` for an adapter that does not say. A reading
        shows the connection works: the next outage counts its attempts from
        0 again.
        """
        recovery = self.recovery
        items: Sequence[T | Gap] = readings
        # running as usual (the common case) there is nothing to end or add
        if (self._sent_at is not None or recovery.down) and (readings or started):
            since, self._sent_at, self._start_due = self._sent_at, None, None
            if recovery.down:
                items = [recovery.resumed(at if since is None else since), *readings]
        if readings:
            recovery.heard()
        return items


def heartbeat_driver(
    drfs: Sequence[str | _drf.DataRequest],
    reconnect: bool | Reconnect,
    heartbeat_period: float,
    host: str,
    port: int,
) -> StreamDriver:
    """The driver of a DPM/TCP subscription to ``drfs`` on ``host:port``, whose server
    heartbeats every ``heartbeat_period`` seconds.

    ``reconnect`` is a ``subscribe(..., reconnect=)`` argument (see
    :func:`~acnet_proto.streams.reconnect.reconnect_policy`); ``drfs`` are
    checked as a DPM list sends them (a :class:`~acnet_proto.plans.lists.ListPlan`),
    so bad ones raise before any I/O. The list must start as soon as silence
    would make the connection dead, within
    :data:`~acnet_proto.engine.MISSED_HEARTBEATS` periods, so that a dead server
    and one that never starts the list are told in the same time.
    """
    policy = reconnect_policy(reconnect)
    names = ListPlan(drfs, default_event=None).drfs
    start_within = MISSED_HEARTBEATS * heartbeat_period
    return StreamDriver(names, policy, start_within=start_within, server=host_port(host, port))
