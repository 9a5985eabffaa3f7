"""Alarm blocks as objects, and read-modify-write of them.

::

    with AnalogAlarm.modify("Z:ACLTST", backend=backend) as alarm:
        alarm.maximum = 50.0
        alarm.minimum = 40.0
        alarm.bypass = False          # the alarm is active (alarm_enable = True)

On entry :meth:`AnalogAlarm.modify` reads the device's ANALOG block; on a
clean exit it writes the fields that changed, and only those, one after
another (the dict write of :meth:`~acnet_proto.api.backend.Backend.write`). If
the body raises, nothing is written. A refused field raises
:class:`~acnet_proto.errors.DeviceError` at the exit; the fields before it
stay set. :class:`DigitalAlarm` is the same for the DIGITAL block (``nominal``
and ``mask`` instead of ``minimum`` and ``maximum``).

Fields are the keys of the alarm dicts a read returns. ``alarm_status``,
``abort`` and ``tries_now`` are the front end's to keep: reading them works,
setting them is an AttributeError, as is setting a name that is not a field.
``bypass`` is pacsys's name for a disabled alarm: ``not alarm_enable``
(``abort_inhibit`` is separate: the alarm still reports, but does not
abort the beam).
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator
from typing import Any, ClassVar, Self

from acnet_proto import drf as _drf
from acnet_proto.api.backend import Backend
from acnet_proto.api.device import Device, DeviceSpec, drf_of
from acnet_proto.errors import DeviceError
from acnet_proto.plans.lists import value_of

__all__ = ["AnalogAlarm", "DigitalAlarm"]


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r}")
    return float(value)


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, not {value!r}")
    return int(value)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return value


class _Field:
    """One field of the block; ``check`` is None for the fields only the front end sets."""

    def __init__(self, check: Any = None) -> None:
        self.check = check
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, alarm: _Alarm | None, owner: type) -> Any:
        if alarm is None:
            return self
        return alarm._values[self.name]

    def __set__(self, alarm: _Alarm, value: Any) -> None:
        if self.check is None:
            raise AttributeError(f"{self.name} is read-only: the front end keeps it")
        alarm._values[self.name] = self.check(self.name, value)


class _Alarm:
    """An alarm block read from a device: its fields, and what was changed since."""

    __slots__ = ("_initial", "_values", "device")
    _PROPERTY: ClassVar[_drf.Property]
    _SETTER: ClassVar[str]  # the Device method that writes this block

    tries_needed = _Field(_integer)
    abort_inhibit = _Field(_flag)
    alarm_enable = _Field(_flag)
    alarm_status = _Field()
    abort = _Field()
    tries_now = _Field()

    def __init__(self, device: str, values: dict[str, Any]) -> None:
        fields = self.fields()
        missing = sorted(set(fields) - set(values))
        if missing:
            kind = self._PROPERTY.name
            raise TypeError(f"the {kind} alarm of {device} read without {missing}: {values!r}")
        self.device = device
        self._initial = {name: values[name] for name in fields}
        self._values = dict(self._initial)

    @classmethod
    def fields(cls) -> list[str]:
        """Every field name, settable or not: the block's own (limits, pattern) first."""
        return [n for k in cls.__mro__ for n, v in vars(k).items() if type(v) is _Field]

    @classmethod
    def settable(cls) -> list[str]:
        """The fields a write may set."""
        return [n for n in cls.fields() if getattr(cls, n).check is not None]

    @property
    def bypass(self) -> bool:
        """True when the alarm is disabled (``not alarm_enable``)."""
        return not self.alarm_enable

    @bypass.setter
    def bypass(self, value: bool) -> None:
        self.alarm_enable = not _flag("bypass", value)

    def changes(self) -> dict[str, Any]:
        """The settable fields whose values differ from what was read, in the order to write them.

        Limits (or pattern) first, ``alarm_enable`` last; but a disable goes
        first: an alarm is never armed with the old limits, nor trips on
        limits half changed.
        """
        changed = {
            name: now
            for name in self.settable()
            if (now := self._values[name]) is not (was := self._initial[name]) and now != was
        }
        if changed.get("alarm_enable") is False:
            changed = {"alarm_enable": False, **changed}
        return changed

    def as_dict(self) -> dict[str, Any]:
        """Every field, as a read of the block returns them (with any changes made)."""
        return dict(self._values)

    @classmethod
    def read(
        cls, device: DeviceSpec, backend: Backend | None = None, *, timeout: float | None = None
    ) -> Self:
        """The alarm block of ``device`` (a name, DRF or Device; its property does not matter).

        ``backend`` None is the Device's own, else the global one.
        :class:`DeviceError` if the device answers an error.
        """
        dev = cls._device(device, backend)
        block = value_of(dev.get(prop=cls._PROPERTY.name, timeout=timeout))
        if not isinstance(block, dict):
            kind = cls._PROPERTY.name
            raise TypeError(f"the {kind} alarm of {dev.name} read as {block!r}, not a block")
        return cls(dev.name, block)

    @classmethod
    @contextlib.contextmanager
    def modify(
        cls, device: DeviceSpec, backend: Backend | None = None, *, timeout: float | None = None
    ) -> Iterator[Self]:
        """Read the block, hand it to the ``with`` body, then write the fields it changed.

        Nothing is written if nothing changed or the body raised. A refused
        field raises :class:`DeviceError` (the fields before it stay set).
        """
        dev = cls._device(device, backend)
        alarm = cls.read(dev, timeout=timeout)
        yield alarm
        changes = alarm.changes()
        if not changes:
            return
        result = getattr(dev, cls._SETTER)(changes, timeout=timeout)
        if not result.ok:
            raise DeviceError(result.drf, result.facility_code, result.error_code, result.message)

    @staticmethod
    def _device(device: DeviceSpec, backend: Backend | None) -> Device:
        """The device by name alone: the block is read whole, whatever field ``device`` names."""
        if isinstance(device, Device):
            return Device(device.name, backend or device.backend)
        return Device(_drf.parse(drf_of(device)).device, backend)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"{type(self).__name__}({self.device!r}, {shown})"


class AnalogAlarm(_Alarm):
    """A device's ANALOG alarm block: the reading should stay in ``[minimum, maximum]``."""

    __slots__ = ()
    _PROPERTY = _drf.Property.ANALOG
    _SETTER = "set_analog_alarm"

    minimum = _Field(_real)
    maximum = _Field(_real)


class DigitalAlarm(_Alarm):
    """A device's DIGITAL alarm block: ``status & mask`` should equal ``nominal & mask``."""

    __slots__ = ()
    _PROPERTY = _drf.Property.DIGITAL
    _SETTER = "set_digital_alarm"

    nominal = _Field(_integer)
    mask = _Field(_integer)
