"""A simulated accelerator: devices, their values over time, and the DPM replies about them.

The embedded DPM server (:mod:`acnet_proto.adapters.sim.dpm`) asks this module
everything a real DPM would ask the database and the front ends. It is pure:
no sockets, no clock — every question about a value takes ``now``, the Unix
time in seconds, and the answer is a function of it.

>>> model = DeviceModel.default()
>>> reply, entry = model.add_to_list(list_id=7, ref_id=1, drf="M:OUTTMP@I")
>>> reply.status, entry.device_info(1).description
(0, 'Outdoor temperature')
>>> entry.reply(1, now=1763769600.015).timestamp
1763769600015
>>> model.add_to_list(7, 2, "Z:NOTFND@I")[0].status     # DPM_PEND
273

The parts, a module each: :mod:`~acnet_proto.sim.devices` (a device and its state),
:mod:`~acnet_proto.sim.binding` (a DRF checked against a device, and its replies),
:mod:`~acnet_proto.sim.writes` (settings applied), :mod:`~acnet_proto.sim.loader`
(the model file) and :mod:`~acnet_proto.sim.codes` (the statuses).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from acnet_proto import drf
from acnet_proto._text import decimal
from acnet_proto.pc import dpm
from acnet_proto.sim.binding import Entry, RequestRejected, bind
from acnet_proto.sim.codes import DPM_BAD_EVENT, DPM_BAD_REQUEST, DPM_PEND
from acnet_proto.sim.devices import DeviceFamily, SimDevice
from acnet_proto.sim.loader import parse_model
from acnet_proto.sim.writes import apply_setting

__all__ = ["DeviceModel"]

_BUILTIN = "acnet_proto/sim/devices.toml"


def _builtin_text() -> str:
    return resources.files("acnet_proto.sim").joinpath("devices.toml").read_text(encoding="utf-8")


class DeviceModel:
    """The set of simulated devices, shared by every connection of one server.

    Settings change devices in place, so give each server its own model
    (:meth:`default` builds a fresh one on every call).
    """

    def __init__(
        self,
        devices: Sequence[SimDevice],
        families: Sequence[DeviceFamily] = (),
        clock_periods: dict[int, float] | None = None,
        default_clock_period: float = 1.0,
    ) -> None:
        self._devices: dict[str, SimDevice] = {}
        self._by_di: dict[int, SimDevice] = {}
        for d in devices:
            self._remember(d)
        self._families = tuple(families)
        self.clock_periods = dict(clock_periods or {})
        self.default_clock_period = default_clock_period

    def _remember(self, device: SimDevice) -> None:
        self._devices[device.name] = device
        self._by_di[device.di] = device

    # -- loading ------------------------------------------------------------

    @classmethod
    def from_toml(
        cls, text: str, source: str = "<devices>", *, builtin: bool = False
    ) -> DeviceModel:
        """Build a model from TOML ``text`` (the keys: :mod:`acnet_proto.sim.loader`).

        The text stands alone unless it says ``builtin = true`` at the top, or
        ``builtin`` is true and it does not say ``builtin = false``: then it
        extends the packaged model, its devices replacing those of the same name.
        Raises :class:`~acnet_proto.sim.loader.DeviceModelError` naming
        ``source``, the entry and the key for anything missing, misspelt, of
        the wrong type or duplicated.
        """
        return parse_model(cls, text, source, builtin=builtin, builtin_text=_builtin_text)

    @classmethod
    def load(cls, path: str | Path) -> DeviceModel:
        """Read a model file (TOML), which EXTENDS the packaged model (what ``acnet-proto sim
        --devices FILE`` serves): a device of the file replaces the built-in one of the same
        name; ``builtin = false`` at the top of the file makes it stand alone."""
        path = Path(path)
        return cls.from_toml(path.read_text(encoding="utf-8"), str(path), builtin=True)

    @classmethod
    def default(cls) -> DeviceModel:
        """A fresh copy of the packaged model (``acnet_proto/sim/devices.toml``)."""
        return cls.from_toml(_builtin_text(), _BUILTIN)

    # -- devices ------------------------------------------------------------

    def device(self, name: str) -> SimDevice | None:
        """The device called ``name`` (canonical ``X:NAME``, or ``0:<di>``), or None."""
        found = self._devices.get(name)
        if found is not None:
            return found
        index = decimal(name[2:]) if name.startswith("0:") else None
        if index is not None:
            return self._device_by_di(index)
        for family in self._families:
            index = family.index_of_name(name)
            if index is not None:
                return self._made(family, index)
        return None

    def _device_by_di(self, di: int) -> SimDevice | None:
        found = self._by_di.get(di)
        if found is not None:
            return found
        for family in self._families:
            index = family.index_of_di(di)
            if index is not None:
                return self._made(family, index)
        return None

    def _made(self, family: DeviceFamily, index: int) -> SimDevice:
        name = f"{family.prefix}{index:0{family.digits}d}"
        device = self._devices.get(name)
        if device is None:
            device = family.make(index)
            self._remember(device)
        return device

    def clock_period(self, event_number: int) -> float:
        """Seconds between firings of clock event ``event_number``."""
        return self.clock_periods.get(event_number, self.default_clock_period)

    # -- requests -----------------------------------------------------------

    def resolve(self, drf_text: str, *, live_only: bool = False) -> Entry:
        """Check ``drf_text`` against the model; raise :class:`RequestRejected` if it fails.

        ``live_only``, for the services that serve live values only (ACL,
        DMQ): a DRF with a ``<-LOGGER`` or ``<-FTP`` source is refused
        ``DPM_BAD_REQUEST`` rather than answered with the live value.
        """
        try:
            request = drf.parse(drf_text)
        except drf.DRFError as e:
            at = drf_text.find("@", 2)
            status = DPM_BAD_EVENT if 0 <= at < e.position else DPM_BAD_REQUEST
            raise RequestRejected(drf_text, status, e.problem) from None
        except TypeError as e:
            raise RequestRejected(str(drf_text), DPM_BAD_REQUEST, str(e)) from None
        if live_only and request.source is not None:
            why = f"<-{request.source} is recorded data; this service reads live values only"
            raise RequestRejected(drf_text, DPM_BAD_REQUEST, why + ": read it through DPM")
        device = self.device(request.device)
        if device is None:
            raise RequestRejected(drf_text, DPM_PEND, f"no device {request.device}")
        return bind(drf_text, request, device)

    def add_to_list(
        self, list_id: int, ref_id: int, drf: str
    ) -> tuple[dpm.AddToListReply, Entry | None]:
        """The ``AddToList_reply`` for one entry, and the entry if it was accepted."""
        try:
            entry = self.resolve(drf)
        except RequestRejected as e:
            return dpm.AddToListReply(list_id=list_id, ref_id=ref_id, status=e.status), None
        return dpm.AddToListReply(list_id=list_id, ref_id=ref_id, status=0), entry

    # -- settings -----------------------------------------------------------

    def apply_setting(self, entry: Entry, value: object) -> int:
        """Set what ``entry`` addresses to ``value``; return the ACNET status (0: done).

        What each property takes: :func:`acnet_proto.sim.writes.apply_setting`.
        Authorization is not checked here: the caller compares
        ``entry.device.protection`` with the user's privileges first.
        """
        return apply_setting(entry, value)
