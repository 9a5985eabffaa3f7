"""Bringing a stream back after its connection died: the backoff schedule, the gap, the count.

A subscription whose connection breaks (the server closed it, bytes that
break the protocol, or silence past the heartbeat rule) connects again after
a pause, adds its entries again and carries on. Its user is told, in the
stream itself, by a :class:`Gap` where readings are missing: an open one as
soon as the connection is found dead, a closed one when the list runs
again; never a silent hole. :class:`Reconnect` says how hard to try; when
reconnection is off or the tries run out, the stream ends with
:class:`~acnet_proto.errors.ConnectionLost` as before.

Nothing here reads a clock or sleeps. :func:`backoff` is a pure function of
the attempt number and the policy (its jitter from the policy's ``random``,
which tests replace), and :class:`Recovery` only counts: the attempts of an
outage, since when, and why. Adapters do not use it directly: the
:class:`~acnet_proto.streams.driver.StreamDriver` built on it turns each
event of a stream into the next step to take.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeGuard

from acnet_proto._text import summary  # re-exported: streams and adapters name DRFs with it
from acnet_proto.errors import ConnectionLost

__all__ = ["SILENT", "Gap", "Reconnect", "Recovery", "backoff", "reconnect_policy", "summary"]

#: The cause a stream gives when the server fell silent past the heartbeat rule.
SILENT = "the server sent nothing for several heartbeats"


@dataclass(frozen=True, slots=True)
class Reconnect:
    """How a subscription reconnects after its connection died.

    Before attempt ``n`` (0 the first) it waits ``backoff(n, policy)``:
    ``initial_backoff * factor**n`` seconds, at most ``max_backoff``, less a
    random fraction of up to ``jitter`` of it (so that many clients cut off
    together do not come back in step). ``max_retries`` bounds the attempts
    of one outage (None: no bound); the count starts again once a reading
    arrives on a new connection. ``random`` gives numbers in ``[0, 1)``:
    pass a seeded ``random.Random().random`` (or a constant) for a
    repeatable schedule.
    """

    max_retries: int | None = 10
    initial_backoff: float = 0.1
    max_backoff: float = 10.0
    factor: float = 2.0
    jitter: float = 0.5
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        retries = self.max_retries
        if retries is not None and (type(retries) is not int or retries < 0):
            raise ValueError(
                f"max_retries must be a whole number of attempts (or None), got {retries!r}"
            )
        _check_seconds("initial_backoff", self.initial_backoff)
        _check_seconds("max_backoff", self.max_backoff)
        if self.max_backoff < self.initial_backoff:
            raise ValueError(
                f"max_backoff ({self.max_backoff!r}) is less than "
                f"initial_backoff ({self.initial_backoff!r})"
            )
        if not _is_number(self.factor) or not 1 <= self.factor < math.inf:
            raise ValueError(f"factor must be a finite number of at least 1, got {self.factor!r}")
        if not _is_number(self.jitter) or not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be a fraction from 0 to 1, got {self.jitter!r}")
        if not callable(self.random):
            raise TypeError(f"random must be callable, got {type(self.random).__name__}")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_seconds(name: str, value: object) -> None:
    if not _is_number(value) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")


def reconnect_policy(reconnect: bool | Reconnect) -> Reconnect | None:
    """What a ``subscribe(..., reconnect=)`` argument means: a policy, or None (don't)."""
    if isinstance(reconnect, Reconnect):
        return reconnect
    if reconnect is True:
        return Reconnect()
    if reconnect is False:
        return None
    raise TypeError(f"reconnect must be True, False or a Reconnect, not {reconnect!r}")


def backoff(attempt: int, policy: Reconnect) -> float:
    """The seconds to wait before reconnection attempt ``attempt`` (0 the first).

    ``min(max_backoff, initial_backoff * factor**attempt)``, less
    ``jitter * policy.random()`` of it. Pure: the same attempt, policy and
    random numbers give the same delay.
    """
    if type(attempt) is not int or attempt < 0:
        raise ValueError(f"attempt must be a whole number from 0, got {attempt!r}")
    try:
        base = min(policy.max_backoff, policy.initial_backoff * policy.factor**attempt)
    except OverflowError:  # far past the cap
        base = policy.max_backoff
    draw = policy.random()
    if not _is_number(draw) or not 0 <= draw <= 1:
        raise ValueError(f"the policy's random() must give a number in [0, 1], gave {draw!r}")
    return base * (1 - policy.jitter * draw)


@dataclass(frozen=True, slots=True)
class Gap:
    """Where a stream has no readings: its connection died, and what the server sent meanwhile
    is lost.

    :meth:`~acnet_proto.api.backend.Subscription.readings` yields it (and a
    callback receives it) in place of a reading, in order. An outage gives
    two: an *open* gap (:attr:`open`, ``until`` None) the moment the
    connection is found dead, while reconnection is still under way, and a
    *closed* one when the list runs again on a new connection. Readings
    before the open gap came on the old connection, readings after the
    closed one on the new; none come between them. If reconnection gives
    up, the stream ends with :class:`~acnet_proto.errors.ConnectionLost`
    after the open gap instead.

    ``drfs`` are the subscription's requests (every one of them missed
    data); ``since`` is when the old connection was found dead, ``until``
    when the list was started again on the new one (both UTC; ``until`` is
    None while the gap is open); ``cause`` says why it died (for a closed
    gap, why the last attempt failed, if one did); ``attempts`` how many
    reconnections were tried since a reading last arrived; ``server`` the
    server's address as the backend names it (None if it does not).

    A stream that fell more than its ``max_age`` behind (its consumer or
    its decoding too slow; see :mod:`~acnet_proto.streams.staleness`) also
    gives a closed gap, where it skipped readings to catch up: ``skipped``
    is how many (0 for an outage, where what was lost is unknown),
    ``since`` and ``until`` the timestamps of the oldest and newest of them
    (the server's clock), ``cause`` is
    :data:`~acnet_proto.streams.staleness.STALE` and ``attempts`` 0.

    Like an error reading, a gap is not :attr:`ok` and has no :attr:`value`,
    so a loop that skips readings that are not ok skips it too; test
    ``isinstance(item, Gap)`` to act on it, :attr:`open` to tell the
    notice of an outage from its end, and ``skipped`` to tell readings
    skipped from readings lost.
    """

    drfs: tuple[str, ...]
    since: datetime
    until: datetime | None
    cause: str
    attempts: int
    server: str | None = None
    skipped: int = 0

    @property
    def ok(self) -> bool:
        """Always False: a gap carries no value."""
        return False

    @property
    def value(self) -> None:
        """Always None."""
        return None

    @property
    def open(self) -> bool:
        """True for the notice of an outage still under way (no ``until`` yet)."""
        return self.until is None

    @property
    def duration(self) -> timedelta | None:
        """How long the stream was without a connection; None while the gap is open."""
        return None if self.until is None else self.until - self.since

    def __str__(self) -> str:
        if self.until is None:
            where = "" if self.server is None else f" to {self.server}"
            return (
                f"the stream of {summary(self.drfs)} lost its connection{where} at "
                f"{self.since.isoformat(timespec='milliseconds')} ({self.cause}); "
                "reconnecting, readings from then on are missing"
            )
        seconds = (self.until - self.since).total_seconds()
        if self.skipped:
            return (
                f"skipped {self.skipped} reading(s) of {summary(self.drfs)} stamped over "
                f"{seconds:.3f} s from {self.since.isoformat(timespec='milliseconds')} "
                f"({self.cause})"
            )
        return (
            f"gap of {seconds:.3f} s in the stream of {summary(self.drfs)} "
            f"({self.cause}; back after {self.attempts} attempt(s))"
        )


class Recovery:
    """One subscription's reconnection bookkeeping: how many tries, since when, and why.

    ``policy`` None means "never reconnect": the first :meth:`broke` gives
    None, and :meth:`lost` the error to end the stream with. ``server``
    names the server in the gaps (None: they do not).
    """

    def __init__(
        self, drfs: Sequence[str], policy: Reconnect | None, server: str | None = None
    ) -> None:
        self.drfs = tuple(drfs)
        self.policy = policy
        self.server = server
        #: reconnection attempts since a reading last arrived
        self.attempts = 0
        self.cause: str | None = None
        #: when the next attempt is due, on the clock of the ``now`` given to :meth:`broke`
        self.retry_at = 0.0
        self._since: datetime | None = None
        self._attempts_before = 0  # attempts when the outage under way began

    @property
    def down(self) -> bool:
        """True between a :meth:`broke` and the :meth:`resumed` that ends the outage."""
        return self._since is not None

    def broke(self, cause: str, at: datetime, now: float = 0.0) -> float | None:
        """The connection died (or a reconnection failed) at ``at``, because of ``cause``.

        Returns the seconds to wait before the next attempt (due at
        :attr:`retry_at`, ``now`` plus those, for :meth:`retry_wait`), or None
        when there is none to make: raise :meth:`lost` then.
        """
        if self._since is None:
            self._since = at
            self._attempts_before = self.attempts
        self.cause = cause
        policy = self.policy
        if policy is None or (
            policy.max_retries is not None and self.attempts >= policy.max_retries
        ):
            return None
        delay = backoff(self.attempts, policy)
        self.attempts += 1
        self.retry_at = now + delay
        return delay

    def retry_wait(self, deadline: float | None) -> tuple[float, bool]:
        """For a caller who waits until ``deadline`` (None: no limit): ``(until, attempt)``.

        Sleep until ``until``; then make the next attempt if ``attempt``, else
        the caller's wait is over first (the attempt stays due).
        """
        if deadline is not None and deadline < self.retry_at:
            return deadline, False
        return self.retry_at, True

    def lost(self) -> ConnectionLost:
        """The error that ends the stream, once :meth:`broke` gave None."""
        what = f"the stream of {summary(self.drfs)} is lost: {self.cause}"
        if self.policy is None:
            return ConnectionLost(what)
        return ConnectionLost(f"{what}; gave up after {self.attempts} reconnection attempt(s)")

    def opened(self) -> Gap:
        """The open :class:`Gap` of the outage under way: the notice to deliver as it begins."""
        if self._since is None or self.cause is None:
            raise RuntimeError("opened() without broke(): there is no outage")
        return Gap(self.drfs, self._since, None, self.cause, self._attempts_before, self.server)

    def resumed(self, at: datetime) -> Gap:
        """The list runs again on a new connection (started at ``at``): the closed
        :class:`Gap` to deliver."""
        if self._since is None or self.cause is None:
            raise RuntimeError("resumed() without broke(): there was no outage")
        gap = Gap(self.drfs, self._since, at, self.cause, self.attempts, self.server)
        self._since = None
        return gap

    def heard(self) -> None:
        """A reading arrived: the connection works, and the next outage counts from 0."""
        self.attempts = 0
