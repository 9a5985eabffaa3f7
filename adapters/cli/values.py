"""What ``acput`` sends: the DRF to set, the DRF to read back, the value as the device wants it.

A setting is checked in two steps. :func:`plan` runs before any
connection: the DRF must be writable, a ``|``/``&`` (STATUS/CONTROL) DRF
takes a command name (``on``, ``off``, ``reset``, ``positive``...), and a
number must be finite. :func:`typed` runs once the current setting has been
read: a text device gets the text as typed, a raw device hex bytes, any
other device a number or a comma-separated list of numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from acnet_proto import drf as _drf
from acnet_proto.adapters.cli.exits import usage
from acnet_proto.types import BasicControl, Reading

__all__ = ["CONTROL_NAMES", "Setting", "plan", "typed"]

_P = _drf.Property
CONTROL_NAMES = {command.name.lower(): command for command in BasicControl}
_NAMES_TEXT = ", ".join(CONTROL_NAMES)


@dataclass(frozen=True)
class Setting:
    """One DEVICE VALUE pair of ``acput``.

    ``drf`` as typed; ``target`` the request to set; ``readback`` the one to
    read before and after (the SETTING, or for a command the STATUS);
    ``text`` the value as typed; ``command`` the control command, if any;
    ``numbers`` each comma-separated part of ``text`` as a number (None where
    it is not one; empty for a command).
    """

    drf: str
    target: _drf.DataRequest
    readback: str
    text: str
    command: BasicControl | None
    numbers: tuple[float | None, ...]

    @property
    def device(self) -> str:
        return self.target.device


def plan(drf: str, text: str) -> Setting:
    """The setting of ``drf`` to ``text``, checked before any I/O (usage errors otherwise)."""
    target = _drf.parse(_drf.to_write_drf(drf))  # DRFError (a usage error) if not writable
    immediate = _drf.ImmediateEvent()
    if target.property is _P.CONTROL:
        command = CONTROL_NAMES.get(text.strip().lower())
        if command is None:
            usage(f"{text!r} is not a command for {drf}; use one of {_NAMES_TEXT}")
        status = _drf.DataRequest(target.device, _P.STATUS, event=immediate)
        return Setting(drf, target, status.to_drf(), text, command, ())
    numbers = tuple(_number(part) for part in text.split(","))
    if any(n is not None and not math.isfinite(n) for n in numbers):
        usage(f"{text!r} for {drf} is not a finite number; give a finite value")
    readback = replace(target, event=immediate).to_drf()
    return Setting(drf, target, readback, text, None, numbers)


def typed(setting: Setting, current: Reading) -> Any:
    """The value to send, by the kind of value the device's setting holds now.

    Text devices get ``setting.text`` unchanged; raw devices its hex as
    bytes; others a float, or a list of floats for ``a,b,c``. A value the
    device cannot take is a usage error naming both; when the setting could
    not be read, a value that is not a number is sent as text.
    """
    if setting.command is not None:
        return setting.command
    now = current.value if current.ok else None
    if isinstance(now, str) or (isinstance(now, tuple) and now and isinstance(now[0], str)):
        return setting.text
    if isinstance(now, bytes):
        try:
            return bytes.fromhex(setting.text)
        except ValueError:
            usage(f"{setting.drf} takes raw bytes: give hex digits, not {setting.text!r}")
    if any(n is None for n in setting.numbers):
        if not current.ok:  # what the device takes is unknown: the server will say
            return setting.text
        hint = ""
        if setting.text.strip().lower() in CONTROL_NAMES:
            hint = f"; to send the command: acput {setting.device}.CONTROL {setting.text}"
        usage(f"{setting.text!r} is not a number, and {setting.drf} takes numbers{hint}")
    values = [n for n in setting.numbers if n is not None]
    return values[0] if len(values) == 1 else values


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
