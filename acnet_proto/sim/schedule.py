"""When a simulated server sends: the machine's clock events, and the groups that repeat.

Every simulated service schedules its data the same way, so it is decided
here once, with no clock of its own (``now`` is the caller's monotonic time,
``wall`` its Unix time):

- ``@I``: one reply, at once;
- ``@p``/``@q``: every period, first one period after the start (``@q`` only
  when the value changed); entries of the same rate share one :class:`Group`;
- ``@e``: whenever the clock event fires (:class:`ClockEvents`: a fixed,
  machine-wide schedule, so every list sees the same firings);
- ``@N``: never.

A group that falls behind (a client not reading) skips the periods it missed
rather than bursting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from acnet_proto import drf
from acnet_proto.engine.events import DataReply
from acnet_proto.pc import dpm
from acnet_proto.sim.binding import Entry
from acnet_proto.sim.model import DeviceModel

__all__ = ["ClockEvents", "Group", "fire_due", "next_due", "next_on_phase", "schedule"]


class ClockEvents:
    """The simulated clock-event generator, shared by every list of one server.

    Event ``n`` fires at ``origin + delay + k * model.clock_period(n)`` for
    whole ``k``: a fixed, machine-wide schedule, like TCLK.
    """

    def __init__(self, model: DeviceModel, origin: float) -> None:
        self.model = model
        self.origin = origin

    def next_after(self, event: drf.ClockEvent, t: float) -> float:
        """The first firing of ``event`` (with its delay) strictly after ``t``."""
        period = self.model.clock_period(event.event_number)
        start = self.origin + event.delay_us / 1e6
        return start + (math.floor((t - start) / period) + 1) * period


def next_on_phase(due: float, period: float, now: float) -> float:
    """The first time after ``now`` on ``due``'s phase: the periods missed are skipped."""
    return due + period * (math.floor((now - due) / period) + 1)


class Group:
    """Entries that fire together: one periodic rate, or one clock event."""

    __slots__ = ("clock_event", "due", "last", "members", "period")

    def __init__(
        self,
        due: float,
        period: float | None,
        clock_event: drf.ClockEvent | None,
        changes_only: bool,
    ) -> None:
        self.due = due
        self.period = period
        self.clock_event = clock_event
        #: (ref id, entry): the ref id is what each reply carries
        self.members: list[tuple[int, Entry]] = []
        # @q: what was last sent per ref (everything after the ref id, timestamp and cycle)
        self.last: dict[int, tuple[Any, ...]] | None = {} if changes_only else None

    def fire(self, wall: float, out: list[DataReply | dpm.StatusReply]) -> None:
        """Append the replies of every member at ``wall`` to ``out`` (for @q: those that
        changed)."""
        last = self.last
        for ref, entry in self.members:
            reply = entry.reply(ref, wall)
            if last is not None:
                key = tuple(reply[3:])
                if last.get(ref) == key:
                    continue
                last[ref] = key
            out.append(reply)

    def advance(self, now: float, clock: ClockEvents) -> None:
        """Move :attr:`due` past ``now``: the next firing, keeping the phase."""
        if self.clock_event is not None:
            self.due = clock.next_after(self.clock_event, now)
        else:
            assert self.period is not None  # a group is periodic or clock-driven
            self.due = next_on_phase(self.due, self.period, now)


def schedule(
    entries: Iterable[tuple[int, Entry]], now: float, clock: ClockEvents
) -> tuple[list[tuple[int, Entry]], list[Group]]:
    """Split a started list: the entries answered at once (``@I``), and the groups that repeat.

    ``@N`` entries are in neither: they never send.
    """
    immediate: list[tuple[int, Entry]] = []
    groups: dict[tuple[Any, ...], Group] = {}
    for ref, entry in entries:
        event = entry.event
        if isinstance(event, drf.ImmediateEvent):
            immediate.append((ref, entry))
            continue
        if isinstance(event, drf.PeriodicEvent):
            key: tuple[Any, ...] = ("p", event.period_us, event.continuous)
            group = groups.get(key)
            if group is None:
                period = event.period_us / 1e6
                group = groups[key] = Group(now + period, period, None, not event.continuous)
        elif isinstance(event, drf.ClockEvent):
            key = ("e", event)
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group(clock.next_after(event, now), None, event, False)
        else:
            continue  # @N
        group.members.append((ref, entry))
    return immediate, list(groups.values())


def next_due(groups: Iterable[Group]) -> float | None:
    """When the earliest group fires next; None without groups."""
    return min((g.due for g in groups), default=None)


def fire_due(
    groups: Iterable[Group], now: float, wall: float, clock: ClockEvents
) -> list[DataReply | dpm.StatusReply]:
    """The replies of every group due by ``now`` (stamped ``wall``), each group advanced."""
    out: list[DataReply | dpm.StatusReply] = []
    for group in groups:
        if group.due <= now:
            group.fire(wall, out)
            group.advance(now, clock)
    return out
