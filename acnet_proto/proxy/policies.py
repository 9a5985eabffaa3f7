"""The policies a supervised proxy applies: read-only, device access, rate, value range, slew.

Each is a :class:`~acnet_proto.proxy.decision.Policy`; how their verdicts
combine is :func:`~acnet_proto.proxy.decision.decide`'s.

Every decision is made on the context's canonical targets
(:mod:`acnet_proto.proxy.targets`), never on the DRF as written: patterns
match the device's name (an index name ``0:<di>`` resolved by the server's
``name_of``, else refused: :func:`~acnet_proto.proxy.decision.cannot_judge`),
and range and slew limits apply to each element of the target's data, so
``Z:ACLTST``, ``z_acltst``, ``Z:ACLTST[0]``, ``Z:ACLTST.SETTING.SCALED`` and
``Z:ACLTST.SETTING[:]`` are one setting of element 0 to all of them.

The policies (the seeds' names and semantics):

- :class:`ReadOnlyPolicy`: denies every ``Set``.
- :class:`DeviceAccessPolicy`: device name patterns (glob, or full-match
  regex; any case) that approve writes (``mode="allow"``) or deny
  (``mode="deny"``), for ``action`` ``"read"``, ``"set"`` or ``"all"``.
- :class:`RateLimitPolicy`: at most ``max_requests`` calls per peer address
  (its port ignored, so reconnecting does not reset it) in any
  ``window_seconds``.
- :class:`ValueRangePolicy`: each element a setting of a matching device
  sets must be a number in ``[min, max]`` (every matching range applies).
- :class:`SlewRatePolicy`: each element of a matching device may change by
  at most ``max_step`` per write and ``max_rate`` per second since the last
  setting of that element the proxy let through (the first is always
  allowed).

Range and slew limits are in engineering units, so a setting they limit
must be numbers, one per element it addresses: text, and raw bytes, byte
ranges (``{offset:length}``) or device-unit fields (RAW, PRIMARY, RAW_MIN,
...), are denied unless the device is in ``allow_raw``; CONTROL commands
are not values and pass (limit them with :class:`DeviceAccessPolicy`).
Every other write of a limited device is held to its limits, alarm blocks
included: a new analog alarm ``MAX`` must itself be within the range, a
whole alarm block (not numbers) is denied, and an alarm field's history is
its own (``ALARM_ENABLE`` counts as 0 or 1): stricter than limiting
setpoints alone, never looser.

Pure: time is the context's ``now`` (the server's monotonic clock), so
policies never read a clock. Stateful policies (rate, slew) are not
thread-safe: the server evaluates one request at a time.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import numpy as np

from acnet_proto import drf as _drf
from acnet_proto._text import SHOWN_CHARS, shown
from acnet_proto.limits import peer_address
from acnet_proto.proxy.decision import (
    ALLOW,
    Policy,
    PolicyDecision,
    RequestContext,
    cannot_judge,
    deny,
)
from acnet_proto.proxy.targets import UNSCALED_FIELDS, Target

__all__ = [
    "DeviceAccessPolicy",
    "RateLimitPolicy",
    "ReadOnlyPolicy",
    "SlewLimit",
    "SlewRatePolicy",
    "ValueRangePolicy",
]

_P = _drf.Property
_IDLE_PEERS = 100  # prune a rate limiter's idle peers beyond this many
_L = TypeVar("_L")


def _targets(ctx: RequestContext) -> tuple[list[Target], PolicyDecision | None]:
    """The context's targets; or a denial if one cannot be judged (decide() refuses such a
    call before any policy runs: this keeps a policy safe when called on its own)."""
    why = cannot_judge(ctx)
    if why is not None:
        return [], deny(why)
    return [t for t in ctx.targets if t is not None], None


# --- the policies ----------------------------------------------------------------------------


class ReadOnlyPolicy(Policy):
    """Denies every ``Set``."""

    def check(self, ctx: RequestContext) -> PolicyDecision:
        if ctx.rpc_method == "Set":
            return deny("Write operations disabled")
        return ALLOW


def _patterns(patterns: object, what: str) -> tuple[str, ...]:
    if isinstance(patterns, str) or not isinstance(patterns, (list, tuple)):
        raise TypeError(f"{what} must be a list of device name patterns, not {patterns!r}")
    if not patterns:
        raise ValueError(f"{what} must not be empty")
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValueError(f"{what} must be non-empty strings, got {pattern!r}")
    return tuple(patterns)


def _glob(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name.upper(), pattern.upper())


def _choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return str(value)


class DeviceAccessPolicy(Policy):
    """Approve writes to, or deny, the devices whose names match ``patterns``.

    ``mode="allow"`` approves matching slots (others are left for other
    policies to approve, else denied); reads need no approval, so
    ``mode="allow"`` with ``action="read"`` would do nothing and is a
    ValueError. ``mode="deny"`` denies a call naming any matching device.
    ``action``: ``"all"``, ``"read"`` or ``"set"``; ``syntax``: ``"glob"``
    (fnmatch) or ``"regex"`` (full match); names match in any case.
    """

    def __init__(
        self,
        patterns: list[str],
        mode: str = "allow",
        action: str = "all",
        syntax: str = "glob",
    ) -> None:
        self.patterns = _patterns(patterns, "patterns")
        self.mode = _choice(mode, "mode", ("allow", "deny"))
        self.action = _choice(action, "action", ("all", "read", "set"))
        self.syntax = _choice(syntax, "syntax", ("glob", "regex"))
        if mode == "allow" and action == "read":
            raise ValueError(
                "mode='allow' with action='read' has no effect: reads are allowed unless "
                "denied; use mode='deny' (a regex such as r'(?!M:).*' denies all but M:)"
            )
        self._regexes: list[re.Pattern[str]] = []
        if syntax == "regex":
            for pattern in self.patterns:
                try:
                    self._regexes.append(re.compile(pattern, re.IGNORECASE))
                except re.error as e:
                    raise ValueError(
                        f"pattern {pattern!r} is not a regular expression: {e}"
                    ) from None

    def __repr__(self) -> str:
        return (
            f"DeviceAccessPolicy({list(self.patterns)!r}, mode={self.mode!r}, "
            f"action={self.action!r}, syntax={self.syntax!r})"
        )

    @property
    def allows_writes(self) -> bool:
        return self.mode == "allow"

    def matches(self, name: str) -> bool:
        """True if device ``name`` matches one of the patterns."""
        if self._regexes:
            return any(r.fullmatch(name) for r in self._regexes)
        return any(_glob(name, p) for p in self.patterns)

    def check(self, ctx: RequestContext) -> PolicyDecision:
        if self.action not in ("all", ctx.rpc_method.lower()):
            return ALLOW
        targets, denial = _targets(ctx)
        if denial is not None:
            return denial
        names = [t.device for t in targets]
        if self.mode == "deny":
            denied = next((n for n in names if self.matches(n)), None)
            return ALLOW if denied is None else deny(f"Device {denied} is denied")
        approved = ctx.allowed | {i for i, n in enumerate(names) if self.matches(n)}
        if approved == ctx.allowed:
            return ALLOW
        return PolicyDecision(True, ctx=replace(ctx, allowed=frozenset(approved)))


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return float(value)


class RateLimitPolicy(Policy):
    """At most ``max_requests`` calls per peer address in any ``window_seconds`` (sliding)."""

    def __init__(self, max_requests: int, window_seconds: float = 60.0) -> None:
        if type(max_requests) is not int or max_requests < 1:
            raise ValueError(f"max_requests must be a positive integer, got {max_requests!r}")
        self.max_requests = max_requests
        self.window_seconds = _positive(window_seconds, "window_seconds")
        self._calls: dict[str, deque[float]] = {}

    def __repr__(self) -> str:
        return f"RateLimitPolicy({self.max_requests}, window_seconds={self.window_seconds})"

    def check(self, ctx: RequestContext) -> PolicyDecision:
        cutoff = ctx.now - self.window_seconds
        if len(self._calls) > _IDLE_PEERS:
            for peer in [p for p, times in self._calls.items() if not times or times[-1] <= cutoff]:
                del self._calls[peer]
        times = self._calls.setdefault(peer_address(ctx.peer), deque())
        while times and times[0] <= cutoff:
            times.popleft()
        if len(times) >= self.max_requests:
            return deny(f"Rate limit exceeded ({self.max_requests} per {self.window_seconds}s)")
        times.append(ctx.now)
        return ALLOW


def _numbers(value: object) -> list[float] | None:
    """Every number in ``value`` (a number, or a list/array of them); None if any is not one.

    Enums are commands, not setpoints: None.
    """
    if isinstance(value, enum.Enum):
        return None
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return [float(value)]
    if isinstance(value, np.ndarray):
        if value.dtype == bool or np.issubdtype(value.dtype, np.number):
            return [float(x) for x in value.ravel()]
        return None
    if isinstance(value, (list, tuple)):
        out: list[float] = []
        for item in value:
            inner = _numbers(item)
            if inner is None:
                return None
            out += inner
        return out
    return None


@dataclass(frozen=True)
class _Limited(Generic[_L]):
    """A setting a limit applies to: the DRF as sent, its target, the limit, and the
    ``(element, number)`` pairs it sets."""

    drf: str
    target: Target
    limit: _L
    numbers: list[tuple[int, float]]

    def where(self, element: int) -> str:
        """Which element a denial is about, when the setting addresses more than one."""
        many = self.target.range is not None or len(self.numbers) > 1
        return f" (element {element})" if many else ""


def _shown_value(value: object) -> str:
    if isinstance(value, (str, bytes, bytearray)):
        return shown(value)
    text = ascii(value)  # a peer's value: escaped, and bounded below
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


def _raw_write(target: Target) -> str:
    if target.field in UNSCALED_FIELDS:
        return f"{target.field.name} field"
    return "Byte range" if isinstance(target.range, _drf.ByteRange) else "Raw byte"


class _LimitedWrites(Policy):
    """What range and slew limits share: which settings they limit, and which they cannot."""

    def __init__(self, allow_raw: list[str] | None) -> None:
        self.allow_raw = () if allow_raw is None else _patterns(allow_raw, "allow_raw")

    def limited(
        self, ctx: RequestContext, limit_of: Callable[[str], _L | None]
    ) -> tuple[list[_Limited[_L]], PolicyDecision | None]:
        """The settings ``limit_of(device)`` limits; or a denial for one that cannot be
        compared with a limit."""
        targets, denial = _targets(ctx)
        if denial is not None:
            return [], denial
        out: list[_Limited[_L]] = []
        for (drf, value), target in zip(ctx.values, targets):
            limit = limit_of(target.device)
            if limit is None or target.property is _P.CONTROL:
                continue  # CONTROL carries commands, not values
            name = target.device
            if isinstance(value, (bytes, bytearray)) or target.raw:
                if any(_glob(name, p) for p in self.allow_raw):
                    continue  # an exempt structured write: nothing to compare
                return [], deny(
                    f"{_raw_write(target)} write to limited device {name} is not comparable "
                    "to its engineering-unit limit (allow_raw exempts a device)"
                )
            numbers = _numbers(value)
            if numbers is None:
                return [], deny(
                    f"Non-numeric value {_shown_value(value)} for limited device {name}"
                )
            elements = target.elements(len(numbers))
            if elements is None:
                return [], deny(
                    f"{len(numbers)} values for {target.label}{target.range}: a limited "
                    "setting gives one value for each element of its range"
                )
            out.append(_Limited(drf, target, limit, list(zip(elements, numbers))))
        return out, None


class ValueRangePolicy(_LimitedWrites):
    """Settings of devices matching a pattern must be within its ``(min, max)``.

    ``limits``: glob pattern -> ``(min, max)``; every matching range applies.
    NaN and infinities are outside every range. ``allow_raw``: patterns of
    devices whose raw writes pass unchecked (see the module docstring).
    """

    def __init__(
        self, limits: dict[str, tuple[float, float]], *, allow_raw: list[str] | None = None
    ) -> None:
        super().__init__(allow_raw)
        if not isinstance(limits, Mapping) or not limits:
            raise ValueError("limits must be a non-empty dict of pattern -> (min, max)")
        self.limits: dict[str, tuple[float, float]] = {}
        for pattern, bounds in limits.items():
            _patterns([pattern], "limits' patterns")
            numeric = isinstance(bounds, (tuple, list)) and all(
                isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds
            )
            if not numeric or len(bounds) != 2:
                raise ValueError(f"limits[{pattern!r}] must be (min, max), got {bounds!r}")
            low, high = bounds  # kept as given: denials quote them
            if not low <= high:
                raise ValueError(f"limits[{pattern!r}] has min > max (or NaN): {bounds!r}")
            self.limits[pattern] = (low, high)

    def _bounds(self, name: str) -> tuple[float, float] | None:
        matching = [b for p, b in self.limits.items() if _glob(name, p)]
        if not matching:
            return None
        return max(b[0] for b in matching), min(b[1] for b in matching)

    def check(self, ctx: RequestContext) -> PolicyDecision:
        if ctx.rpc_method != "Set":
            return ALLOW
        settings, denial = self.limited(ctx, self._bounds)
        if denial is not None:
            return denial
        for setting in settings:
            name, (low, high) = setting.target.label, setting.limit
            if low > high:
                return deny(f"Contradictory value ranges for {name}: [{low}, {high}] is empty")
            for element, number in setting.numbers:
                if not low <= number <= high:  # NaN fails too
                    where = setting.where(element)
                    return deny(f"Value {number} for {name} outside range [{low}, {high}]{where}")
        return ALLOW


@dataclass(frozen=True)
class SlewLimit:
    """How fast a device matching a :class:`SlewRatePolicy` pattern may be changed.

    ``max_step``: the most one setting may change it (units); ``max_rate``:
    the most per second since the last allowed setting (units/s). At least
    one must be given; both must be positive and finite.
    """

    max_step: float | None = None
    max_rate: float | None = None

    def __post_init__(self) -> None:
        if self.max_step is None and self.max_rate is None:
            raise ValueError("SlewLimit needs max_step, max_rate or both")
        for name in ("max_step", "max_rate"):
            if getattr(self, name) is not None:
                _positive(getattr(self, name), name)


class SlewRatePolicy(_LimitedWrites):
    """Deny settings that change a device too much at once, or too fast.

    ``limits``: glob pattern -> :class:`SlewLimit` (the first matching
    pattern applies). History is kept per element of the canonical target
    (device, property, field, element index), so every spelling of a setting
    shares it, and an array write ``[2:4]`` compares elements 2, 3 and 4 each
    with its own. The first setting of an element is always allowed. A
    setting becomes the element's history once the whole call is allowed
    (:meth:`commit`: every policy and rule let it through, even if the
    backend then fails it); a call denied by any policy or rule leaves the
    history as it was, so denied calls cannot walk it away from the device's
    value. A call that sets one limited element twice, in any spellings, is
    denied: both would be compared with the same history. ``allow_raw`` as
    for :class:`ValueRangePolicy`.
    """

    def __init__(self, limits: dict[str, SlewLimit], *, allow_raw: list[str] | None = None) -> None:
        super().__init__(allow_raw)
        if not isinstance(limits, Mapping) or not limits:
            raise ValueError("limits must be a non-empty dict of pattern -> SlewLimit")
        for pattern, limit in limits.items():
            _patterns([pattern], "limits' patterns")
            if not isinstance(limit, SlewLimit):
                raise TypeError(f"limits[{pattern!r}] must be a SlewLimit, got {limit!r}")
        self.limits = dict(limits)
        self._history: dict[_Element, tuple[float, float]] = {}  # -> (number, when)

    def _limit(self, name: str) -> SlewLimit | None:
        return next((lim for p, lim in self.limits.items() if _glob(name, p)), None)

    def check(self, ctx: RequestContext) -> PolicyDecision:
        if ctx.rpc_method != "Set":
            return ALLOW
        settings, denial = self.limited(ctx, self._limit)
        if denial is not None:
            return denial
        twice = _set_twice(settings)
        if twice is not None:
            return deny(twice)
        for setting in settings:
            for element, number in setting.numbers:
                last = self._history.get(_element_of(setting.target, element))
                why = None if last is None else _too_fast(setting, element, number, last, ctx.now)
                if why is not None:
                    return deny(why)
        return ALLOW

    def commit(self, ctx: RequestContext) -> None:
        """Make each limited element the call sets its history."""
        if ctx.rpc_method != "Set":
            return
        settings, denial = self.limited(ctx, self._limit)
        if denial is not None:  # check() allowed this very context: nothing to record
            return
        for setting in settings:
            for element, number in setting.numbers:
                self._history[_element_of(setting.target, element)] = (number, ctx.now)


# one element of a canonical target: (device, property, field, element index)
_Element = tuple[str, _drf.Property, "_drf.Field | None", int]


def _element_of(target: Target, element: int) -> _Element:
    return (target.device, target.property, target.field, element)


def _set_twice(settings: list[_Limited[SlewLimit]]) -> str | None:
    """Why the call sets one element twice (None if it does not), in any spellings."""
    first: dict[_Element, str] = {}
    for setting in settings:
        for element, _ in setting.numbers:
            key = _element_of(setting.target, element)
            if key in first:
                return (
                    f"{_drf.to_write_drf(setting.drf)} is set twice in one call (element "
                    f"{element} of {setting.target.label}, also set by "
                    f"{_drf.to_write_drf(first[key])}); slew limits allow one setting of each "
                    "element per call"
                )
            first[key] = setting.drf
    return None


def _too_fast(
    setting: _Limited[SlewLimit], element: int, number: float, last: tuple[float, float], now: float
) -> str | None:
    """Why changing ``element`` from its ``last`` (number, when) to ``number`` at ``now`` breaks
    the setting's limit; None if it does not."""
    limit, name, where = setting.limit, setting.target.label, setting.where(element)
    before, at = last
    step = abs(number - before)
    if not step <= (math.inf if limit.max_step is None else limit.max_step):  # NaN fails too
        return f"Step {step} for {name} exceeds max_step {limit.max_step}{where}"
    if limit.max_rate is not None and step > 0:
        elapsed = now - at
        rate = step / elapsed if elapsed > 0 else math.inf
        if not rate <= limit.max_rate:
            return f"Rate {rate:.6g}/s for {name} exceeds max_rate {limit.max_rate}/s{where}"
    return None
