"""DevDB, the client's pure half: device metadata records, reading replies, and a TTL cache.

DevDB (``protos/controls/service/DevDB/v1/DevDB.proto``, spec §4) is the
device database's gRPC service: per device its index, description,
scaling of the READING and SETTING properties, CONTROL commands, STATUS
bit definitions and alarm blocks, plus alarm texts by id. This module
holds what the client (:mod:`acnet_proto.adapters.devdb`) needs beside the
I/O:

- the records a client returns (the seeds' ``DeviceInfoResult``,
  ``PropertyInfo``, ``StatusBitDef``, ...), made from replies by
  :func:`device_infos`, :func:`alarm_infos` and :func:`alarm_texts`;
- :class:`TTLCache`, told the time by its caller;
- :func:`resolve_devdb`: where a client connects.

The simulated service's side is :mod:`acnet_proto.sim.devdb`. Imports the
generated protobuf modules, never grpc.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from acnet_proto._text import shown
from acnet_proto.api.config import check_timeout, resolve_endpoint
from acnet_proto.errors import DeviceError
from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
from acnet_proto.status import Status

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    # for annotations only: protobuf is the [grpc] extra, whose absence the import of
    # DevDB_pb2 above reports with what to install
    from google.protobuf.message import Message

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "ENVIRONMENT",
    "AlarmBlockInfo",
    "AlarmInfo",
    "AlarmText",
    "ControlCommandDef",
    "DevDBSettings",
    "DeviceInfoResult",
    "ExtStatusBitDef",
    "PropertyInfo",
    "StatusBitDef",
    "TTLCache",
    "alarm_infos",
    "alarm_texts",
    "check_names",
    "device_infos",
    "resolve_devdb",
]

#: The DevDB service's port (the seeds' default).
DEFAULT_PORT = 6802
#: How long a client keeps device metadata, in seconds.
DEFAULT_CACHE_TTL = 3600.0
DEFAULT_TIMEOUT = 5.0

#: Per setting, the environment variables consulted, in order of precedence.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "host": ("ACNET_DEVDB_HOST", "PACSYS_DEVDB_HOST"),
    "port": ("ACNET_DEVDB_PORT", "PACSYS_DEVDB_PORT"),
}

_NO_HOST = (
    "no DevDB host is configured: set ACNET_DEVDB_HOST (e.g. ACNET_DEVDB_HOST="
    "localhost after `acnet-proto sim --devdb-port 6802`), or pass host= to "
    "acnet_proto.devdb()"
)
_NOT_FOUND = Status.from_name("DPM_NO_SUCH_DEVICE")
_LOOKUP_FAILED = Status.from_name("DPM_LOOKUP_FAILED")


# --- where to connect ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevDBSettings:
    """A DevDB client's resolved settings."""

    host: str
    port: int = DEFAULT_PORT
    timeout: float = DEFAULT_TIMEOUT


def resolve_devdb(
    host: str | None = None,
    port: int | None = None,
    timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> DevDBSettings:
    """Each argument that is not None, else ``ACNET_DEVDB_*``, else ``PACSYS_DEVDB_*``, else
    the default (port 6802, 5 s).

    There is no default host (as for DPM: the lab's service is not reachable
    from everywhere): without one,
    :class:`~acnet_proto.api.config.ConfigurationError` says what to set.
    Invalid values raise it too, naming the argument or variable.
    """
    host, port = resolve_endpoint(
        "DEVDB",
        host,
        port,
        DEFAULT_PORT,
        "--devdb-port 6802",
        environ,
        no_host=_NO_HOST,
        port_noun="a port number",
    )
    return DevDBSettings(host, port, DEFAULT_TIMEOUT if timeout is None else check_timeout(timeout))


def check_names(names: object, what: str = "names") -> list[str]:
    """``names`` as a list of str; TypeError naming ``what`` for a lone string or a non-str."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(
            f"{what} must be a list of device names (e.g. ['M:OUTTMP']), not {type(names).__name__}"
        )
    out = list(names)
    for index, name in enumerate(out):
        if not isinstance(name, str):
            raise TypeError(f"{what}[{index}] must be a device name (str), got {name!r}")
    return out


# --- the records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PropertyInfo:
    """Scaling and metadata of a READING or SETTING property."""

    primary_units: str | None
    common_units: str | None
    min_val: float
    max_val: float
    p_index: int
    c_index: int
    coeff: tuple[float, ...]
    is_step_motor: bool
    is_destructive_read: bool
    is_fe_scaling: bool
    is_contr_setting: bool
    is_knobbable: bool


@dataclass(frozen=True, slots=True)
class StatusBitDef:
    """One basic status attribute's definition (not a runtime value).

    It is active when ``((~raw if invert else raw) & mask) == match``.
    """

    mask: int
    match: int
    invert: bool
    short_name: str
    long_name: str
    true_str: str
    false_str: str
    true_color: int
    true_char: str
    false_color: int
    false_char: str

    def is_active(self, raw: int) -> bool:
        """Whether this attribute is in its true state in status word ``raw``."""
        word = ~raw if self.invert else raw
        return (word & self.mask) == self.match


@dataclass(frozen=True, slots=True)
class ExtStatusBitDef:
    """An extended status bit's definition: its text when clear (0) and set (1)."""

    bit_no: int
    description: str
    name0: str
    name1: str
    color0: int
    color1: int


@dataclass(frozen=True, slots=True)
class ControlCommandDef:
    """A CONTROL command: the value to set, and its names."""

    value: int
    short_name: str
    long_name: str


@dataclass(frozen=True, slots=True)
class DeviceInfoResult:
    """A device's metadata (a None part: the device has no such property)."""

    device_index: int
    description: str
    reading: PropertyInfo | None
    setting: PropertyInfo | None
    control: tuple[ControlCommandDef, ...] | None
    status_bits: tuple[StatusBitDef, ...] | None
    ext_status_bits: tuple[ExtStatusBitDef, ...] | None

    @property
    def empty(self) -> bool:
        """True for the all-zero entry DevDB sends for a device it does not know."""
        return not self.description and all(
            part is None for part in (self.reading, self.setting, self.control, self.status_bits)
        )


@dataclass(frozen=True, slots=True)
class AlarmBlockInfo:
    """An alarm block as stored: limits in raw units, flags as ACNET packs them."""

    di: int
    pi: int
    status: int
    min_or_nom: int
    max_or_tol: int
    tries_needed: int
    tries_now: int
    clock_event_no: int
    subfunction_code: int
    specific_data: str
    segment: int


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    """One alarm block of a device, with its alarm text id(s)."""

    device_name: str
    alarm_block: AlarmBlockInfo
    analog_alarm_text_id: int | None
    digital_alarm_condition: int | None
    digital_alarm_mask: int | None
    digital_alarm_text_id: int | None


@dataclass(frozen=True, slots=True)
class AlarmText:
    """An alarm text entry."""

    alarm_text_id: int
    length: int
    priority: int
    hand_code: int
    sound_id: int
    speech_id: int
    spare: int
    text: str
    url: str


# --- replies -> records (the client) ---------------------------------------------------------


def _property(message: DevDB_pb2.Property) -> PropertyInfo:
    return PropertyInfo(
        primary_units=message.primary_units if message.HasField("primary_units") else None,
        common_units=message.common_units if message.HasField("common_units") else None,
        min_val=message.min_val,
        max_val=message.max_val,
        p_index=message.p_index,
        c_index=message.c_index,
        coeff=tuple(message.coeff),
        is_step_motor=message.is_step_motor,
        is_destructive_read=message.is_destructive_read,
        is_fe_scaling=message.is_fe_scaling,
        is_contr_setting=message.is_contr_setting,
        is_knobbable=message.is_knobbable,
    )


def _status_bit(item: DevDB_pb2.DigitalStatusItem) -> StatusBitDef:
    return StatusBitDef(
        mask=item.mask_val,
        match=item.match_val,
        invert=item.invert,
        short_name=item.short_name,
        long_name=item.long_name,
        true_str=item.true_str,
        false_str=item.false_str,
        true_color=item.true_color,
        true_char=item.true_char,
        false_color=item.false_color,
        false_char=item.false_char,
    )


_R = TypeVar("_R", bound="DataclassInstance")


def _copy(record: type[_R], message: Message) -> _R:
    """A record whose fields have the message's field names (most DevDB records do)."""
    return record(**{name: getattr(message, name) for name in record.__dataclass_fields__})


def _device_info(info: DevDB_pb2.DeviceInfo) -> DeviceInfoResult:
    control = status = ext = None
    if info.HasField("control"):
        control = tuple(_copy(ControlCommandDef, c) for c in info.control.cmds)
    if info.HasField("status"):
        status = tuple(_status_bit(b) for b in info.status.bits)
        ext = tuple(_copy(ExtStatusBitDef, b) for b in info.status.ext_bits)
    return DeviceInfoResult(
        device_index=info.device_index,
        description=info.description,
        reading=_property(info.reading) if info.HasField("reading") else None,
        setting=_property(info.setting) if info.HasField("setting") else None,
        control=control,
        status_bits=status,
        ext_status_bits=ext,
    )


def device_infos(
    reply: DevDB_pb2.DeviceInfoReply,
) -> tuple[dict[str, DeviceInfoResult], DeviceError | None]:
    """The records of a ``getDeviceInfo`` reply, by name, and the first failure in it.

    An entry with ``errMsg`` fails with ``DPM_LOOKUP_FAILED`` and that
    message; an all-zero entry (a device DevDB does not know) with
    ``DPM_NO_SUCH_DEVICE``. The devices that were found are returned either
    way, so a caller can keep them before raising the failure.
    """
    found: dict[str, DeviceInfoResult] = {}
    failure: DeviceError | None = None
    for entry in reply.set:
        which = entry.WhichOneof("result")
        if which == "device":
            info = _device_info(entry.device)
            if not info.empty:
                found[entry.name] = info
                continue
            status, message = _NOT_FOUND, "not found in DevDB"
        else:
            status = _LOOKUP_FAILED
            reason = shown(entry.errMsg) if entry.errMsg else "no reason given"
            message = f"DevDB could not look it up: {reason}"
        if failure is None:
            failure = DeviceError(entry.name, status.facility, status.error, message)
    return found, failure


def alarm_infos(reply: DevDB_pb2.AlarmInfoReply) -> list[AlarmInfo]:
    """The records of a ``getAllAlarmInfo`` reply, in its order."""
    out = []
    for info in reply.alarm_info:
        block = _copy(AlarmBlockInfo, info.alarm_block)
        analog = info.device_analog_alarm if info.HasField("device_analog_alarm") else None
        digital = info.device_digital_alarm if info.HasField("device_digital_alarm") else None
        out.append(
            AlarmInfo(
                device_name=info.device_name,
                alarm_block=block,
                analog_alarm_text_id=analog.alarm_text_id if analog is not None else None,
                digital_alarm_condition=digital.condition if digital is not None else None,
                digital_alarm_mask=digital.mask if digital is not None else None,
                digital_alarm_text_id=digital.alarm_text_id if digital is not None else None,
            )
        )
    return out


def alarm_texts(reply: DevDB_pb2.DeviceAlarmTextList) -> list[AlarmText]:
    """The records of a ``getAlarmText`` reply, in its order."""
    return [_copy(AlarmText, t) for t in reply.device_alarm_text]


# --- the cache ---------------------------------------------------------------------------------

_V = TypeVar("_V")


class TTLCache(Generic[_V]):
    """Values that expire ``ttl`` seconds after they were put; at most ``max_size`` of them.

    Every call takes ``now``, in seconds on any monotonic clock (the caller's;
    this class reads none). When full, expired entries go first, then the
    least recently used. Not thread-safe: callers hold their own lock.
    A ``ttl`` of 0 keeps nothing.
    """

    def __init__(self, ttl: float, max_size: int = 10_000) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl >= 0:
            raise ValueError(f"cache_ttl must be a number of seconds >= 0, got {ttl!r}")
        if type(max_size) is not int or max_size < 1:
            raise ValueError(f"max_size must be a positive integer, got {max_size!r}")
        self.ttl = float(ttl)
        self.max_size = max_size
        self._data: OrderedDict[str, tuple[float, _V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, now: float) -> _V | None:
        """The value under ``key`` if it was put less than ``ttl`` seconds before ``now``."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if now - entry[0] >= self.ttl:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry[1]

    def put(self, key: str, value: _V, now: float) -> None:
        if self.ttl == 0:
            return
        self._data[key] = (now, value)
        self._data.move_to_end(key)
        if len(self._data) > self.max_size:
            for stale in [k for k, (at, _) in self._data.items() if now - at >= self.ttl]:
                del self._data[stale]
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)

    def clear(self, key: str | None = None) -> None:
        """Forget ``key``, or everything."""
        if key is None:
            self._data.clear()
        else:
            self._data.pop(key, None)
