"""DMQ, ACNET over AMQP (spec §3), kept pure: keys, the signed layout, samples, and client jobs.

A DMQ *job* is one conversation with the DMQ server. The client declares a
topic exchange of its own (a random name: the job's return address), binds
a queue to it for ``R.#`` and ``Q``, and publishes an INIT to ``amq.topic``
with routing key ``I``. Replies come back on its exchange as DAQData
samples, routed ``R.<drf>`` by the DRF exactly as sent. The client keeps the
job alive with an empty ``H`` every 5 s and ends it with ``D``.

Everything here is the logic of that conversation with no I/O: an adapter
(``acnet_proto.adapters.dmq``) moves the :class:`Publish` records this
module builds and hands every delivery to a job::

    job = ReadJob(["M:OUTTMP", "Z:ACLTS1[0:4]"])      # DRFError here for bad text
    init = job.init_message(exchange=exchange, message_id=mid, app_id="me",
                            host_address=b"\\x7f\\0\\0\\1", token=token, signer=ctx)
    # publish init; then, for every message on the job's queue:
    job.receive(method.routing_key, body, properties.correlation_id, now)
    if job.done:
        readings = job.readings()

Kerberos is behind :class:`Signer` (anything with ``get_mic``), so this
module imports no gssapi. Every signature covers :func:`mic_body`, the
layout of Java's ``GSSUtil.createBody``.
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypedDict, TypeGuard

import numpy as np

from acnet_proto import drf as _drf
from acnet_proto.api.device import BasicControl
from acnet_proto.errors import DecodeError, ReadError, RemoteProtocolError
from acnet_proto.pc import daqdata
from acnet_proto.pc._message import Message
from acnet_proto.plans.lists import (
    UNREADABLE,
    FirstReadings,
    ListPlan,
    error_reading,
    timestamp,
)
from acnet_proto.plans.settings import list_value
from acnet_proto.status import Status
from acnet_proto.types import Reading, ValueType, WriteResult

__all__ = [
    "CLIENT_HEARTBEAT_KEY",
    "DMQ_INVALID_DATA_TYPE",
    "DMQ_INVALID_REQUEST",
    "DMQ_LOGIN_REQUIRED",
    "DMQ_OK",
    "DMQ_PENDING",
    "DMQ_SECURITY_VIOLATION",
    "DROP_KEY",
    "HEARTBEAT_INTERVAL",
    "INIT_EXCHANGE",
    "INIT_KEY",
    "JOB_FAILURE_KEYS",
    "MAX_IDLE_TIME",
    "REPLY_BINDINGS",
    "SERVER_HEARTBEAT_KEY",
    "Publish",
    "ReadJob",
    "SettingJob",
    "Signer",
    "StreamJob",
    "drop_message",
    "heartbeat_message",
    "init_message",
    "is_pending",
    "mic_body",
    "reading_from_sample",
    "reading_key",
    "service_principal",
    "setting_key",
    "setting_message",
    "setting_sample",
]

INIT_EXCHANGE = "amq.topic"
INIT_KEY = "I"
CLIENT_HEARTBEAT_KEY = "H"
SERVER_HEARTBEAT_KEY = "Q"
DROP_KEY = "D"
#: What a job's queue is bound to on the job's exchange: replies and server heartbeats.
REPLY_BINDINGS = ("R.#", SERVER_HEARTBEAT_KEY)
#: Routing keys of an ``ErrorSample`` that fails the whole job (INIT or job construction).
JOB_FAILURE_KEYS = ("R", "R.null")

#: Seconds between the client's ``H`` keep-alives.
HEARTBEAT_INTERVAL = 5.0
#: Seconds of silence after which the server disposes a job (and a client gives up on it).
MAX_IDLE_TIME = 30.0

DMQ_OK = Status.from_name("DMQ_OK")
DMQ_PENDING = Status.from_name("DMQ_PENDING")
DMQ_INVALID_DATA_TYPE = Status.from_name("DMQ_INVALID_DATA_TYPE")
DMQ_LOGIN_REQUIRED = Status.from_name("DMQ_LOGIN_REQUIRED")
DMQ_INVALID_REQUEST = Status.from_name("DMQ_INVALID_REQUEST")
DMQ_SECURITY_VIOLATION = Status.from_name("DMQ_SECURITY_VIOLATION")

# AMQP routing keys are short strings: at most 255 bytes
_MAX_KEY = 255
_INT32 = (-(2**31), 2**31 - 1)


class Signer(Protocol):
    """A GSS-API context that can sign (the client's initiator, once complete)."""

    def get_mic(self, message: bytes) -> bytes: ...


def service_principal(host: str, realm: str = "FNAL.GOV") -> str:
    """The DMQ service principal for broker ``host``: ``daeset/bd/<host>@<realm>``."""
    if not isinstance(host, str) or not host.strip():
        raise ValueError(f"host must be a non-empty host name, got {host!r}")
    return f"daeset/bd/{host}@{realm}"


# ------------------------------------------------------------------- the wire


def _key(prefix: str, drf: str) -> str:
    if not isinstance(drf, str):
        raise TypeError(f"a DRF must be a str, not {type(drf).__name__}")
    key = prefix + drf
    size = len(key.encode("utf-8"))
    if size > _MAX_KEY:
        raise ValueError(
            f"DRF {drf[:40]!r}... is too long for DMQ: replies are routed by the DRF and an "
            f"AMQP routing key holds at most {_MAX_KEY} bytes ({prefix!r} + DRF is {size})"
        )
    return key


def reading_key(drf: str) -> str:
    """``R.<drf>``: the routing key of the replies about ``drf`` (ValueError if too long)."""
    return _key("R.", drf)


def setting_key(drf: str) -> str:
    """``S.<drf>``: the routing key of a setting on a job started for ``drf``."""
    return _key("S.", drf)


def mic_body(
    body: bytes,
    message_id: str | bytes | None,
    correlation_id: str | bytes | None,
    reply_to: str | bytes | None,
    app_id: str | bytes | None,
    host_address: bytes,
) -> bytes:
    """What a DMQ signature covers: Java's ``GSSUtil.createBody`` layout.

    The body, message id, correlation id, reply-to, app id and host address,
    in that order, each followed by one NUL byte; absent properties are empty
    strings. Text is UTF-8; a property given as bytes (pika hands over a
    property that is not UTF-8 as the bytes received) is taken as it is.
    ``host_address`` is the raw address bytes that the ``host-address``
    header carries (4 for IPv4).
    """
    parts: list[bytes] = [bytes(body)]
    for text in (message_id, correlation_id, reply_to, app_id):
        parts.append(_utf8(text))
    parts.append(bytes(host_address))
    return b"\0".join(parts) + b"\0"


def _utf8(text: str | bytes | None) -> bytes:
    return bytes(text) if isinstance(text, bytes | bytearray) else (text or "").encode("utf-8")


@dataclass(frozen=True, slots=True)
class Publish:
    """One AMQP message to publish: where, under which key, with which properties."""

    exchange: str
    routing_key: str
    body: bytes = b""
    message_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    app_id: str | None = None
    headers: Mapping[str, bytes] | None = None


def init_message(
    request: Message,
    *,
    exchange: str,
    message_id: str,
    app_id: str,
    host_address: bytes,
    token: bytes,
    signer: Signer,
) -> Publish:
    """The INIT of a job: ``request`` (a ReadingRequest or SettingRequest) to ``amq.topic``/``I``.

    ``exchange`` is the job's own exchange (its ``reply_to``); ``token`` the
    GSS initial context token; ``signer`` the context that made it, which
    signs the :func:`mic_body` of the message.
    """
    body = daqdata.encode(request)
    mic = signer.get_mic(mic_body(body, message_id, None, exchange, app_id, host_address))
    headers = {"gss-token": bytes(token), "signature": bytes(mic), "host-address": host_address}
    return Publish(
        INIT_EXCHANGE,
        INIT_KEY,
        body,
        message_id=message_id,
        reply_to=exchange,
        app_id=app_id,
        headers=headers,
    )


def setting_message(
    exchange: str,
    init_drf: str,
    body: bytes,
    *,
    message_id: str,
    host_address: bytes,
    signer: Signer,
) -> Publish:
    """A setting: the encoded sample ``body`` to ``S.<init_drf>`` on the job's exchange, signed.

    The correlation id is the message id (the server answers with an empty
    one, so replies are matched in order anyway).
    """
    mic = signer.get_mic(mic_body(body, message_id, message_id, None, None, host_address))
    return Publish(
        exchange,
        setting_key(init_drf),
        body,
        message_id=message_id,
        correlation_id=message_id,
        headers={"signature": bytes(mic), "host-address": host_address},
    )


def heartbeat_message(exchange: str) -> Publish:
    """The client's keep-alive: an empty ``H`` on the job's exchange."""
    return Publish(exchange, CLIENT_HEARTBEAT_KEY)


def drop_message(exchange: str) -> Publish:
    """``D``: the server drops the job."""
    return Publish(exchange, DROP_KEY)


# ---------------------------------------------------------------- samples


def is_pending(sample: Message) -> bool:
    """True for ``ErrorSample(DMQ, 1)``: the job is still initialising; keep waiting."""
    return (
        type(sample) is daqdata.ErrorSampleReply
        and sample.facility_code == DMQ_PENDING.facility
        and sample.error_number == DMQ_PENDING.error
    )


def _status_message(facility: int, error: int, text: str | None) -> str:
    if text:
        return text
    try:
        return str(Status(facility, error))
    except (TypeError, ValueError):  # an int32 pair no 16-bit ACNET status can hold
        return f"error [{facility} {error}]"


_BASIC_STATUS = ("on", "ready", "remote", "positive", "ramp")
_ALARM_COMMON = ("alarm_enable", "alarm_status", "abort", "abort_inhibit")
_ALARM_TRIES = ("tries_needed", "tries_now")
_ANALOG = ("minimum", "maximum", *_ALARM_COMMON, *_ALARM_TRIES)
_DIGITAL = ("nominal", "mask", *_ALARM_COMMON, *_ALARM_TRIES)
_CONTROL_BY_WIRE = {member: BasicControl[member.name] for member in daqdata.BasicControl}


def _fields(struct: Message, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in names}


_D = daqdata
# what a job's replies carry: the samples of _SAMPLE_VALUES below, and ErrorSample
_Sample: TypeAlias = (
    _D.DoubleSampleReply
    | _D.ShortSampleReply
    | _D.IntegerSampleReply
    | _D.LongSampleReply
    | _D.BooleanSampleReply
    | _D.BasicControlSampleReply
    | _D.DoubleArraySampleReply
    | _D.ShortArraySampleReply
    | _D.IntegerArraySampleReply
    | _D.LongArraySampleReply
    | _D.BooleanArraySampleReply
    | _D.BinarySampleReply
    | _D.StringSampleReply
    | _D.StringArraySampleReply
    | _D.BasicStatusSampleReply
    | _D.BasicStatusArraySampleReply
    | _D.AnalogAlarmSampleReply
    | _D.AnalogAlarmArraySampleReply
    | _D.DigitalAlarmSampleReply
    | _D.DigitalAlarmArraySampleReply
    | _D.ErrorSampleReply
)
# sample class -> (value type, the value from the sample's ``value``)
_SAMPLE_VALUES: dict[type, tuple[ValueType, Callable[[Any], Any]]] = {
    _D.DoubleSampleReply: (ValueType.SCALAR, float),
    _D.ShortSampleReply: (ValueType.SCALAR, int),
    _D.IntegerSampleReply: (ValueType.SCALAR, int),
    _D.LongSampleReply: (ValueType.SCALAR, int),
    _D.BooleanSampleReply: (ValueType.SCALAR, bool),
    _D.BasicControlSampleReply: (ValueType.SCALAR, _CONTROL_BY_WIRE.__getitem__),
    _D.DoubleArraySampleReply: (ValueType.SCALAR_ARRAY, lambda v: np.asarray(v, np.float64)),
    _D.ShortArraySampleReply: (ValueType.SCALAR_ARRAY, lambda v: np.asarray(v, np.int16)),
    _D.IntegerArraySampleReply: (ValueType.SCALAR_ARRAY, lambda v: np.asarray(v, np.int32)),
    _D.LongArraySampleReply: (ValueType.SCALAR_ARRAY, lambda v: np.asarray(v, np.int64)),
    _D.BooleanArraySampleReply: (ValueType.SCALAR_ARRAY, lambda v: np.asarray(v, np.bool_)),
    _D.BinarySampleReply: (ValueType.RAW, bytes),
    _D.StringSampleReply: (ValueType.TEXT, str),
    _D.StringArraySampleReply: (ValueType.TEXT_ARRAY, tuple),
    _D.BasicStatusSampleReply: (ValueType.BASIC_STATUS, lambda v: _fields(v, _BASIC_STATUS)),
    _D.BasicStatusArraySampleReply: (
        ValueType.BASIC_STATUS,
        lambda v: tuple(_fields(s, _BASIC_STATUS) for s in v),
    ),
    _D.AnalogAlarmSampleReply: (ValueType.ANALOG_ALARM, lambda v: _fields(v, _ANALOG)),
    _D.AnalogAlarmArraySampleReply: (
        ValueType.ANALOG_ALARM,
        lambda v: tuple(_fields(s, _ANALOG) for s in v),
    ),
    _D.DigitalAlarmSampleReply: (ValueType.DIGITAL_ALARM, lambda v: _fields(v, _DIGITAL)),
    _D.DigitalAlarmArraySampleReply: (
        ValueType.DIGITAL_ALARM,
        lambda v: tuple(_fields(s, _DIGITAL) for s in v),
    ),
}


def _is_sample(message: Message) -> TypeGuard[_Sample]:
    kind = type(message)
    return kind in _SAMPLE_VALUES or kind is daqdata.ErrorSampleReply


def reading_from_sample(sample: Message, drf: str) -> Reading:
    """The :class:`Reading` a DAQData sample stands for.

    ``ErrorSample(facility, error)`` is an error reading with that status;
    every other sample is a value: doubles as float, integers as int and
    booleans as bool (as pacsys does), arrays as read-only numpy arrays
    (float64, int16/32/64, bool), strings as str or a tuple of str, binary as
    bytes, a basic status or alarm block as a dict (arrays of them: a tuple
    of dicts), a BasicControl as :class:`~acnet_proto.api.device.BasicControl`.
    ``time`` (ms since the epoch) is the timestamp, ``cycle_time`` the cycle.
    DMQ sends no device metadata, so ``meta`` is None. Anything that is not
    a sample is a :class:`TypeError`; a ``time`` no date can stand for (years
    past 9999) a :class:`~acnet_proto.errors.RemoteProtocolError`.
    """
    if not _is_sample(sample):
        raise TypeError(f"{type(sample).__name__} is not a DAQData sample")
    at = timestamp(sample.time)
    cycle = sample.cycle_time
    if isinstance(sample, daqdata.ErrorSampleReply):
        facility, error = sample.facility_code, sample.error_number
        return Reading(
            drf,
            facility_code=facility,
            error_code=error,
            message=_status_message(facility, error, sample.message),
            timestamp=at,
            cycle=cycle,
        )
    value_type, convert = _SAMPLE_VALUES[type(sample)]
    value = convert(sample.value)
    return Reading(drf, value_type=value_type, value=value, timestamp=at, cycle=cycle)


def _status_of(sample: daqdata.ErrorSampleReply) -> Status:
    """An ``ErrorSample``'s status (int32 pairs no ACNET status can hold: ``ACNET_RPLYPACK``)."""
    try:
        return Status(sample.facility_code, sample.error_number)
    except (TypeError, ValueError):
        return UNREADABLE


def _finite(drf: str, number: float) -> float:
    if not math.isfinite(number):
        raise ValueError(f"cannot write {number!r} to {drf}: the value must be finite")
    return number


def _numbers(drf: str, items: Sequence[Any]) -> list[float]:
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise TypeError(
                f"cannot write {type(item).__name__} {item!r} to {drf}: "
                "an array must hold only numbers, or only str"
            )
        out.append(_finite(drf, float(item)))
    return out


class _Stamp(TypedDict):
    """What every setting sample carries beside its value."""

    time: int


def setting_sample(drf: str, value: Any, time_ms: int) -> Message:
    """The DAQData sample that carries ``value`` as a setting of ``drf``, stamped ``time_ms``.

    - :class:`~acnet_proto.api.device.BasicControl` RESET..DC → ``BasicControlSample``
      with the DAQData wire value (RESET 26767, ON 13987, ...); LOCAL, REMOTE
      and TRIP, which the DAQData enum lacks, go as ``DoubleSample`` of their
      ordinal (as pacsys sends them). A ``daqdata.BasicControl`` goes as is.
    - bool and int (32-bit) → ``IntegerSample``; float → ``DoubleSample``;
      str → ``StringSample``; a list, tuple or 1-D array of str →
      ``StringArraySample``, of numbers → ``DoubleArraySample``.

    Raises before anything is sent: TypeError for bytes (the DMQ server
    refuses binary samples), dicts (alarm blocks: write one field, e.g.
    ``Z:ACLTST.ANALOG.MAX``) and other types; ValueError for NaN/inf, an
    empty list, or an int outside 32 bits. Messages name ``drf``.
    """
    if isinstance(value, np.generic):
        value = value.item()
    stamp: _Stamp = {"time": time_ms}
    if isinstance(value, daqdata.BasicControl):
        return daqdata.BasicControlSampleReply(value=value, **stamp)
    if isinstance(value, BasicControl):
        wire = daqdata.BasicControl.__members__.get(value.name)
        if wire is None:  # LOCAL, REMOTE, TRIP
            return daqdata.DoubleSampleReply(value=float(value), **stamp)
        return daqdata.BasicControlSampleReply(value=wire, **stamp)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"cannot write bytes to {drf} over DMQ: the DMQ server refuses binary samples; "
            "write the number the raw value stands for instead"
        )
    if isinstance(value, dict):
        raise TypeError(
            f"cannot write a dict to {drf} over DMQ: set one alarm field at a time "
            "(e.g. Z:ACLTST.ANALOG.MAX)"
        )
    if isinstance(value, bool):
        return daqdata.IntegerSampleReply(value=int(value), **stamp)
    if isinstance(value, int):
        if not _INT32[0] <= value <= _INT32[1]:
            raise ValueError(f"cannot write {value} to {drf}: DMQ integers are 32-bit")
        return daqdata.IntegerSampleReply(value=value, **stamp)
    if isinstance(value, numbers.Real):
        return daqdata.DoubleSampleReply(value=_finite(drf, float(value)), **stamp)
    if isinstance(value, str):
        return daqdata.StringSampleReply(value=value, **stamp)
    items = list_value(drf, value)
    if items is not None:
        if all(isinstance(v, str) for v in items):
            return daqdata.StringArraySampleReply(value=items, **stamp)
        return daqdata.DoubleArraySampleReply(value=_numbers(drf, items), **stamp)
    raise TypeError(
        f"cannot write {type(value).__name__} {value!r} to {drf}: expected a number, a str, "
        "a list/array of numbers or of str, or a BasicControl"
    )


# ---------------------------------------------------------------- client jobs


def _reply_key(routing_key: str | bytes) -> TypeGuard[str]:
    """True for a key replies come on (``R``...). pika hands over a key that is not UTF-8
    as bytes: no DRF's key is, so such a delivery is nobody's reply."""
    return isinstance(routing_key, str) and routing_key.startswith("R")


class _Job:
    """What every client job has: its request, the INIT that sent it, when it last heard."""

    request: Message
    init_message_id: str | None = None
    heard_at: float | None = None

    def init_message(
        self,
        *,
        exchange: str,
        message_id: str,
        app_id: str,
        host_address: bytes,
        token: bytes,
        signer: Signer,
    ) -> Publish:
        """The INIT that starts this job (see :func:`init_message`)."""
        self.init_message_id = message_id
        return init_message(
            self.request,
            exchange=exchange,
            message_id=message_id,
            app_id=app_id,
            host_address=host_address,
            token=token,
            signer=signer,
        )

    def overdue(self, now: float, silence: float = MAX_IDLE_TIME) -> bool:
        """True if nothing came from the server for ``silence`` seconds since the last delivery."""
        return self.heard_at is not None and now - self.heard_at > silence


class _ReadingJob(_Job):
    """What read and stream jobs share: the request, and routing deliveries to entries."""

    request: daqdata.ReadingRequestRequest

    def __init__(self, drfs: Sequence[str | _drf.DataRequest], default_event: str | None) -> None:
        plan = ListPlan(drfs, default_event)  # checks every DRF before anything is sent
        self.drfs: list[str] = plan.drfs
        self.requests: list[_drf.DataRequest] = plan.requests
        self.wire: list[str] = plan.wire
        self._where: dict[str, list[int]] = {}
        for index, wire in enumerate(self.wire):
            reading_key(wire)
            self._where.setdefault(wire, []).append(index)
        # the server answers each distinct DRF once, so each is asked for once
        self.request = daqdata.ReadingRequestRequest(data_request=list(self._where))
        self.failure: Status | None = None

    def _route(
        self,
        routing_key: str | bytes,
        body: bytes,
        correlation_id: str | bytes | None,
        now: float | None,
    ) -> list[tuple[int, Reading]]:
        if now is not None:
            self.heard_at = now
        if not _reply_key(routing_key) or routing_key == SERVER_HEARTBEAT_KEY:
            return []
        by_key = self._where.get(routing_key[2:], []) if routing_key.startswith("R.") else []
        try:
            sample = daqdata.decode_reply(body)
        except DecodeError as exc:
            # one garbled message spoils its entries, not the whole job
            return self._unreadable(by_key, f"undecodable reply: {exc}")
        if not _is_sample(sample):
            return self._unreadable(by_key, f"{type(sample).__name__} is not a sample")
        if is_pending(sample):
            return []
        if routing_key in JOB_FAILURE_KEYS and type(sample) is daqdata.ErrorSampleReply:
            if correlation_id and correlation_id != self.init_message_id:
                return []  # about some other INIT: not this job's failure
            return self._fail(sample)
        ref = sample.ref_id
        if ref is not None and 1 <= ref <= len(self.request.data_request):
            by_key = self._where[self.request.data_request[ref - 1]]
        return self._readings(sample, by_key)

    def _fail(self, sample: daqdata.ErrorSampleReply) -> list[tuple[int, Reading]]:
        self.failure = _status_of(sample)
        return self._readings(sample, range(len(self.drfs)))

    def _readings(self, sample: Message, indexes: Iterable[int]) -> list[tuple[int, Reading]]:
        """``sample`` as the reading of each entry in ``indexes``; one that no reading can
        stand for (stamped with no date) spoils those entries, not the whole job."""
        indexes = list(indexes)
        try:
            return [(i, reading_from_sample(sample, self.drfs[i])) for i in indexes]
        except RemoteProtocolError as exc:
            return self._unreadable(indexes, str(exc))

    def _unreadable(self, indexes: Iterable[int], note: str) -> list[tuple[int, Reading]]:
        return [(i, error_reading(self.drfs[i], UNREADABLE, note=note)) for i in indexes]


class ReadJob(FirstReadings, _ReadingJob):
    """A one-shot read of several DRFs over one DMQ job: the first reading of each.

    DRFs without an event get ``@I`` (and are sent that way, so their replies
    come back on ``R.<drf>@I``); bad DRF text raises
    :class:`~acnet_proto.drf.DRFError` here. Duplicates are asked for once
    and answered for each position. ``DMQ_PENDING`` is skipped; an
    ``ErrorSample`` on ``R``/``R.null`` (the job could not be built) answers
    every entry still waiting.
    """

    _unfinished = "job not done"
    _what = "DMQ read"

    def __init__(self, drfs: Sequence[str | _drf.DataRequest]) -> None:
        super().__init__(drfs, default_event="I")
        self._expect_readings(self.requests)

    def receive(
        self,
        routing_key: str | bytes,
        body: bytes,
        correlation_id: str | bytes | None = None,
        now: float | None = None,
    ) -> list[tuple[int, Reading]]:
        """Take one delivery; return the ``(index, reading)`` pairs it completed."""
        return self._keep(self._route(routing_key, body, correlation_id, now))

    def disconnected(self, cause: object) -> ReadError:
        """The :class:`ReadError` for a broken connection (``ACNET_DISCONNECTED`` for the rest)."""
        return self._ended(f"DMQ connection failed: {cause}", timed_out=False)


class StreamJob(_ReadingJob):
    """A subscription over one DMQ job: every reading of every entry, as it comes.

    DRFs are sent as given (give each an event such as ``@p,1000``). After a
    job failure (:attr:`failure` set, every entry answered with its error)
    nothing more will come.
    """

    def __init__(self, drfs: Sequence[str | _drf.DataRequest]) -> None:
        super().__init__(drfs, default_event=None)

    def receive(
        self,
        routing_key: str | bytes,
        body: bytes,
        correlation_id: str | bytes | None = None,
        now: float | None = None,
    ) -> list[tuple[int, Reading]]:
        """Take one delivery; return the ``(index, reading)`` pairs it carries."""
        return self._route(routing_key, body, correlation_id, now)


def _write_result(drf: str, status: Status, note: str | None = None) -> WriteResult:
    message = None if status.error == 0 and note is None else note or str(status)
    return WriteResult(drf, status.facility, status.error, message)


@dataclass(slots=True)
class _Setting:
    ticket: int
    drf: str
    body: bytes


class SettingJob(_Job):
    """The settings of one device property over one DMQ job: a write session.

    ``init_drf`` is the DRF the job is started for, already in write form
    (``Z:ACLTST.SETTING@N``, see :func:`~acnet_proto.drf.to_write_drf`); every
    setting goes to ``S.<init_drf>``. Settings submitted before the server
    confirms the job (its ``DMQ_PENDING``, sent once ``S.#`` is bound) wait
    here, because a setting published earlier would be lost. Replies carry
    no correlation id, so they answer the settings sent, oldest first.
    """

    def __init__(self, init_drf: str) -> None:
        setting_key(init_drf)
        self.init_drf = init_drf
        self.request = daqdata.SettingRequestRequest(data_request=[init_drf])
        self.confirmed = False
        self.failure: Status | None = None
        self._reply_key = reading_key(init_drf)
        self._queued: deque[_Setting] = deque()
        self._sent: deque[_Setting] = deque()
        self._next_ticket = 1

    @property
    def busy(self) -> bool:
        """True while a setting waits to be sent or to be answered."""
        return bool(self._queued or self._sent)

    @property
    def sent(self) -> list[tuple[int, str]]:
        """``(ticket, drf)`` of the settings sent and not yet answered, oldest first."""
        return [(s.ticket, s.drf) for s in self._sent]

    def submit(self, drf: str, body: bytes) -> int:
        """Queue an encoded sample (see :func:`setting_sample`) for ``drf``; its ticket."""
        if self.failure is not None:
            raise RuntimeError(f"the DMQ job for {self.init_drf} failed: {self.failure}")
        ticket = self._next_ticket
        self._next_ticket += 1
        self._queued.append(_Setting(ticket, drf, bytes(body)))
        return ticket

    def take_outgoing(
        self,
        exchange: str,
        host_address: bytes,
        signer: Signer,
        message_ids: Callable[[], str],
    ) -> list[Publish]:
        """The settings that may go now, signed in the order they must be published.

        Nothing before the job is confirmed. The signatures carry GSS
        sequence numbers, so publish them in this order and sign nothing else
        in between.
        """
        out: list[Publish] = []
        while self.confirmed and self.failure is None and self._queued:
            setting = self._queued[0]
            out.append(
                setting_message(
                    exchange,
                    self.init_drf,
                    setting.body,
                    message_id=message_ids(),
                    host_address=host_address,
                    signer=signer,
                )
            )
            self._sent.append(self._queued.popleft())
        return out

    def receive(
        self,
        routing_key: str | bytes,
        body: bytes,
        correlation_id: str | bytes | None = None,
        now: float | None = None,
    ) -> list[tuple[int, WriteResult]]:
        """Take one delivery; return the ``(ticket, result)`` pairs it settled."""
        if now is not None:
            self.heard_at = now
        if not _reply_key(routing_key):
            return []
        try:
            sample = daqdata.decode_reply(body)
        except DecodeError as exc:
            if not self.confirmed:
                return self.fail(UNREADABLE, f"undecodable reply to the INIT: {exc}")
            return self._answer(UNREADABLE, f"undecodable reply: {exc}")
        if not _is_sample(sample):
            note = f"{type(sample).__name__} is not a sample"
            return self._answer(UNREADABLE, note) if self.confirmed else []
        if is_pending(sample):
            self.confirmed = True
            return []
        error = sample if type(sample) is daqdata.ErrorSampleReply else None
        if routing_key in JOB_FAILURE_KEYS:
            if error is None or (correlation_id and correlation_id != self.init_message_id):
                return []  # not about this job's INIT
            return self.fail(_status_of(error), error.message or None)
        if not self.confirmed:
            # nothing was sent yet, so an error can only be about the job itself
            return self.fail(_status_of(error), error.message or None) if error is not None else []
        if routing_key != self._reply_key:
            return []
        if error is not None:
            return self._answer(_status_of(error), error.message or None)
        return self._answer(DMQ_OK, None)

    def _answer(self, status: Status, note: str | None) -> list[tuple[int, WriteResult]]:
        if not self._sent:
            return []  # more answers than settings sent: nothing waits for this one
        setting = self._sent.popleft()
        return [(setting.ticket, _write_result(setting.drf, status, note))]

    def cancel(self, tickets: Iterable[int]) -> list[int]:
        """Withdraw the settings of ``tickets`` still waiting to be sent; the tickets withdrawn.

        Sent ones stay: their answers still come, in order.
        """
        wanted = set(tickets)
        kept = deque(s for s in self._queued if s.ticket not in wanted)
        withdrawn = [s.ticket for s in self._queued if s.ticket in wanted]
        self._queued = kept
        return withdrawn

    def fail(self, status: Status, note: str | None = None) -> list[tuple[int, WriteResult]]:
        """End the job: every setting waiting or unanswered gets ``status``."""
        if self.failure is None:
            self.failure = status
        settled = [(s.ticket, _write_result(s.drf, status, note)) for s in self._sent]
        settled += [(s.ticket, _write_result(s.drf, status, note)) for s in self._queued]
        self._sent.clear()
        self._queued.clear()
        return settled
