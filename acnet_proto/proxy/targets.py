"""The canonical target of a DRF: what a policy decides on, however the DRF is spelled.

A policy that matched the DRF as written could be passed by another spelling
of the same data: ``Z:ACLTST``, ``z_acltst``, ``Z:ACLTST.SETTING.SCALED`` and
``Z:ACLTST.SETTING[:]`` all set the same scaled setting, and ``0:<di>`` names
a device without its name. :func:`target_of` reduces a DRF to a
:class:`Target` on which all of them are equal:

- the **device** by its canonical name: the DRF parser already folds case and
  the property qualifiers (``_ : @ | & $ ~``); an index name ``0:<di>`` is
  resolved by ``name_of`` (the server's resolver), and stays ``0:<di>``
  (:attr:`Target.resolved` False) when there is none or it does not know the
  index;
- the **property**: for a write, the property the setting is sent to
  (:func:`acnet_proto.drf.to_write_drf`: READING becomes SETTING, STATUS CONTROL);
- the **field**, with the property's default filled in (no field is SCALED for
  READING, SETTING and CONTROL, ALL for STATUS and the alarms), so that
  ``.SETTING`` and ``.SETTING.SCALED`` are equal while RAW and PRIMARY, other
  units, are not;
- the **range**: None for the whole data (``[:]`` is written the same way),
  an :class:`~acnet_proto.drf.ArrayRange` for elements, a
  :class:`~acnet_proto.drf.ByteRange` for raw bytes.

Pure: no I/O; resolving an index is the caller's ``name_of``.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from acnet_proto import drf as _drf

__all__ = ["UNSCALED_FIELDS", "NameOf", "Target", "device_name", "target_of", "targets_of"]

#: A server's index resolver: given ``"0:1234"``, the device's name (``"G:AMANDA"``), or
#: None if it does not know the index. It must not raise for an unknown index.
NameOf = Callable[[str], str | None]

_P, _F = _drf.Property, _drf.Field
_DEFAULT_FIELD = {
    _P.READING: _F.SCALED,
    _P.SETTING: _F.SCALED,
    _P.CONTROL: _F.SCALED,
    _P.STATUS: _F.ALL,
    _P.ANALOG: _F.ALL,
    _P.DIGITAL: _F.ALL,
}
#: Fields whose numbers are in device units, not the engineering units limits are in.
UNSCALED_FIELDS = frozenset({_F.RAW, _F.PRIMARY, _F.RAW_MIN, _F.RAW_MAX, _F.RAW_NOM, _F.RAW_TOL})
_WHOLE = _drf.ArrayRange(0, None)


def _is_index(device: str) -> bool:
    return device.startswith("0:")


def device_name(text: str) -> str | None:
    """The canonical name of the device DRF or device name ``text`` names (``"g_amanda.max"``
    -> ``"G:AMANDA"``); None if ``text`` is not a DRF or names its device by index."""
    try:
        device = _drf.parse(text).device
    except (_drf.DRFError, TypeError):
        return None
    return None if _is_index(device) else device


@dataclass(frozen=True, slots=True)
class Target:
    """What a DRF reads or sets, in the one form every spelling of it shares.

    ``device``: the canonical name, or the ``0:<di>`` index name when it could
    not be resolved; ``property``: for a write, the property written;
    ``field``: never None for a property that has fields (its default filled
    in); ``range``: None for the whole data. Two spellings of the same data
    have equal targets, an index name resolved to the device included.
    """

    device: str
    property: _drf.Property
    field: _drf.Field | None
    range: _drf.Range | None = None

    @builtins.property  # a field is called property (as in DataRequest)
    def resolved(self) -> bool:
        """False if the device is known only by an index (a policy cannot judge it)."""
        return not _is_index(self.device)

    @builtins.property
    def raw(self) -> bool:
        """True if the target is device-unit or byte data (RAW, PRIMARY, RAW_*, ``{o:l}``)."""
        return isinstance(self.range, _drf.ByteRange) or self.field in UNSCALED_FIELDS

    @builtins.property
    def label(self) -> str:
        """How denials name it: the device for a scaled setting, else device.PROPERTY.FIELD."""
        if self.property is _P.SETTING and self.field is _F.SCALED:
            return self.device
        field = "" if self.field is None else f".{self.field.name}"
        return f"{self.device}.{self.property.name}{field}"

    def elements(self, count: int) -> builtins.range | None:
        """The element indices ``count`` values set, in order; None if ``count`` does not
        fill an explicit ``[n:m]`` range (the policy cannot tell which value is whose)."""
        rng = self.range
        if rng is None:
            return range(count)
        assert isinstance(rng, _drf.ArrayRange)  # a byte range is raw: never counted
        if rng.end is not None and rng.end - rng.start + 1 != count:
            return None
        return range(rng.start, rng.start + count)


def _resolved(device: str, name_of: NameOf | None) -> str:
    """The device's name; its index name if it is one ``name_of`` cannot resolve."""
    if not _is_index(device):
        return device
    answer = name_of(device) if name_of is not None else None
    # the resolver's answer is a spelling too: canonical, and never another index
    name = device_name(answer) if isinstance(answer, str) else None
    return device if name is None else name


def target_of(drf: str, *, write: bool = False, name_of: NameOf | None = None) -> Target:
    """The canonical target of ``drf``: of a setting of it if ``write``.

    ``name_of`` resolves an index name (``0:<di>``); without it, or if it
    returns None, the target keeps the index (:attr:`Target.resolved` is
    False). Raises :class:`~acnet_proto.drf.DRFError` if ``drf`` is not valid
    or (``write``) cannot be written.
    """
    request = _drf.parse(_drf.to_write_drf(drf) if write else drf)
    device = _resolved(request.device, name_of)
    field = request.field or _DEFAULT_FIELD.get(request.property)
    rng = None if request.range == _WHOLE else request.range
    return Target(device, request.property, field, rng)


def targets_of(
    drfs: Sequence[str], *, write: bool = False, name_of: NameOf | None = None
) -> tuple[Target | None, ...]:
    """:func:`target_of` each DRF; None for one that is not valid (or cannot be written)."""
    out: list[Target | None] = []
    for drf in drfs:
        try:
            out.append(target_of(drf, write=write, name_of=name_of))
        except (_drf.DRFError, TypeError):
            out.append(None)
    return tuple(out)
