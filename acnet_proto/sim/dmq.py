"""The DMQ server's half of spec §3, kept pure: jobs, what they send, and when.

The simulated DMQ (``acnet_proto.adapters.sim.dmq``) consumes the INITs on
``amq.topic``/``I`` and the messages its jobs bind on the clients'
exchanges, and hands each to a :class:`DMQService`; the service answers with
the :class:`~acnet_proto.services.dmq.Publish`, :class:`Bind` and :class:`Unbind`
actions to carry out, in order. Time is passed in: ``now`` (monotonic
seconds) schedules, ``wall`` (Unix seconds) stamps the samples.

What a job does:

- INIT: the ``gss-token`` header is accepted (a fresh acceptor per job) and
  the ``signature`` must verify over the :func:`~acnet_proto.services.dmq.mic_body`
  of the message. Refusals answer ``ErrorSample`` on ``R`` with the INIT's
  message id as correlation id: ``DMQ_LOGIN_REQUIRED`` (no token),
  ``DMQ_SECURITY_VIOLATION`` (-99: token refused, bad signature),
  ``DMQ_INVALID_REQUEST`` (-98: not a Reading/SettingRequest, no DRF, a DRF
  too long to route, a second INIT on one exchange), or the device model's
  status for the DRF of a setting job.
- A job binds ``H`` and ``D`` (setting jobs also ``S.#``) on the client's
  exchange, then sends ``DMQ_PENDING`` on ``R.<drf>`` per distinct DRF. A
  reading job then sends per DRF: the model's refusal as an ``ErrorSample``,
  or samples as its event says (``@I`` once, ``@p``/``@q`` every period
  starting at once, ``@e`` when the clock event fires, ``@N`` never). With
  ``init_delay`` the first data waits that long after the PENDING.
- ``S.<key>``: the signature is checked first (-99), so that the GSS
  sequence stays in step, then the key against ``S.<INIT's DRF>`` (-98),
  then the sample (``DMQ_INVALID_DATA_TYPE`` for binary, alarm, status or
  error samples), then the policy, then the model applies it. The one reply
  on ``R.<drf>`` is an ``ErrorSample``: ``DMQ_OK`` or the refusal, with an
  empty correlation id.
- ``Q`` on every job's exchange each ``heartbeat_period``; ``H`` (and any
  other message) keeps a job alive; a job silent for ``idle_timeout`` is
  disposed, as is one that gets ``D``: its bindings are removed.

Every refusal (and every job disposed of for idleness) is kept in
:attr:`DMQService.refusals` and reported as a :class:`Refused` to the
``refused`` callback, for the server's log.

Authorization: DMQ carries no role claim, so a principal acts with every
role it holds (a setting is allowed if any of its roles allows the device),
then the console-class check as in :class:`~acnet_proto.sim.policy.Policy`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from acnet_proto import drf as _drf
from acnet_proto.engine.events import DataReply
from acnet_proto.errors import AuthenticationError, DecodeError
from acnet_proto.pc import daqdata, dpm
from acnet_proto.pc._message import Message
from acnet_proto.services.dmq import (
    CLIENT_HEARTBEAT_KEY,
    DMQ_INVALID_DATA_TYPE,
    DMQ_INVALID_REQUEST,
    DMQ_LOGIN_REQUIRED,
    DMQ_OK,
    DMQ_PENDING,
    DMQ_SECURITY_VIOLATION,
    DROP_KEY,
    SERVER_HEARTBEAT_KEY,
    Publish,
    mic_body,
    reading_key,
    setting_key,
)
from acnet_proto.sim.binding import Entry, RequestRejected
from acnet_proto.sim.model import DeviceModel
from acnet_proto.sim.policy import SettingsPolicy
from acnet_proto.sim.schedule import ClockEvents, next_on_phase
from acnet_proto.sim.settings import Acceptor
from acnet_proto.status import Status

__all__ = [
    "Bind",
    "DMQService",
    "Delivery",
    "Refused",
    "ServerJob",
    "Unbind",
    "error_sample",
    "sample_from_reply",
    "setting_value",
]

_READ_BINDINGS = (CLIENT_HEARTBEAT_KEY, DROP_KEY)
_SETTING_BINDINGS = (CLIENT_HEARTBEAT_KEY, DROP_KEY, "S.#")
_REFUSALS_KEPT = 100


@dataclass(frozen=True, slots=True)
class Bind:
    """Bind the server's job queue to ``exchange`` for ``routing_key``."""

    exchange: str
    routing_key: str


@dataclass(frozen=True, slots=True)
class Unbind:
    """Remove that binding."""

    exchange: str
    routing_key: str


Action = Publish | Bind | Unbind


@dataclass(frozen=True, slots=True)
class Refused:
    """One refusal, for the server's log.

    ``kind`` is one of a few fixed phrases (``"bad INIT signature"``,
    ``"setting routing key mismatch"``...), so that a log can count
    refusals per kind; ``why`` the detail, which may quote what the client
    sent (show it escaped); ``status`` what the client was answered (None:
    nothing, e.g. for want of a ``reply_to``); ``exchange`` the job's and
    ``app_id`` the client's own name, when known.
    """

    kind: str
    why: str
    status: Status | None = None
    exchange: str | None = None
    app_id: str | None = None

    @property
    def label(self) -> str:
        """The kind, and the status: ``bad INIT signature (DMQ_SECURITY_VIOLATION -99)``."""
        if self.status is None:
            return self.kind
        return f"{self.kind} ({self.status.name} {self.status.error})"

    @property
    def peer(self) -> str | None:
        """Who was refused, as far as a broker lets a server know: the job's exchange and app id."""
        if self.exchange is None:
            return None
        return self.exchange if not self.app_id else f"{self.app_id} on {self.exchange}"


class _Refusal(Exception):
    """An INIT refused: its kind, the status and the reason to answer with."""

    def __init__(self, kind: str, status: Status, why: str) -> None:
        super().__init__(why)
        self.kind = kind
        self.status = status
        self.why = why


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message the server received: where it was published, and its properties."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    app_id: str | None = None
    headers: Mapping[str, Any] | None = None

    @classmethod
    def received(
        cls,
        exchange: object,
        routing_key: object,
        body: bytes,
        headers: Mapping[str, Any] | None = None,
        **properties: object,
    ) -> Delivery | None:
        """A delivery as the AMQP client hands it over, or None if it cannot be one.

        pika passes a name or property it cannot decode as UTF-8 on as bytes; no
        job or key of ours has such a name, so a message carrying one is for no
        one (None: drop it).
        """
        texts: dict[str, str | None] = {}
        for name, value in {"exchange": exchange, "routing_key": routing_key, **properties}.items():
            if isinstance(value, (bytes, bytearray)):
                try:
                    value = bytes(value).decode("utf-8")
                except UnicodeDecodeError:
                    return None
            if value is not None and not isinstance(value, str):
                return None
            texts[name] = value
        exchange_name, key = texts.pop("exchange"), texts.pop("routing_key")
        if exchange_name is None or key is None:
            return None
        return cls(exchange_name, key, body, headers=headers, **texts)

    def header(self, name: str) -> bytes:
        """A header's bytes (a str is taken as UTF-8; absent: ``b""``)."""
        value = (self.headers or {}).get(name)
        if isinstance(value, str):
            return value.encode("utf-8")
        return bytes(value) if isinstance(value, (bytes, bytearray)) else b""

    def signed_part(self) -> bytes:
        """What its ``signature`` header must be a MIC of."""
        return mic_body(
            self.body,
            self.message_id,
            self.correlation_id,
            self.reply_to,
            self.app_id,
            self.header("host-address"),
        )


def _ms(wall: float) -> int:
    return int(wall * 1000)


def error_sample(status: Status, wall: float, message: str | None = None) -> Message:
    """``ErrorSample(status)`` stamped ``wall`` (Unix seconds)."""
    return daqdata.ErrorSampleReply(
        facility_code=status.facility, error_number=status.error, time=_ms(wall), message=message
    )


class _Stamp(TypedDict):
    time: int
    cycle_time: int


def sample_from_reply(
    reply: DataReply | dpm.StatusReply,
) -> Message:
    """The DAQData sample for a DPM data reply of the device model (same stamp and cycle)."""
    stamp: _Stamp = {"time": reply.timestamp, "cycle_time": reply.cycle}
    # type(reply) in every test, not a variable: only that narrows reply for a type checker
    if type(reply) is dpm.StatusReply:
        status = Status.from_int(reply.status)
        return daqdata.ErrorSampleReply(
            facility_code=status.facility, error_number=status.error, **stamp
        )
    if type(reply) is dpm.ScalarReply:
        return daqdata.DoubleSampleReply(value=float(reply.data), **stamp)
    if type(reply) is dpm.ScalarArrayReply or type(reply) is dpm.TimedScalarArrayReply:
        return daqdata.DoubleArraySampleReply(value=list(reply.data), **stamp)
    if type(reply) is dpm.RawReply:
        return daqdata.BinarySampleReply(value=bytes(reply.data), **stamp)
    if type(reply) is dpm.TextReply:
        return daqdata.StringSampleReply(value=reply.data, **stamp)
    if type(reply) is dpm.TextArrayReply:
        return daqdata.StringArraySampleReply(value=list(reply.data), **stamp)
    if type(reply) is dpm.BasicStatusReply:
        bits = {f: bool(getattr(reply, f)) for f in daqdata.BasicStatus.field_names}
        return daqdata.BasicStatusSampleReply(value=daqdata.BasicStatus(**bits), **stamp)
    if type(reply) is dpm.AnalogAlarmReply:
        fields = daqdata.AnalogAlarm.field_names
        block = daqdata.AnalogAlarm(**{f: getattr(reply, f) for f in fields})
        return daqdata.AnalogAlarmSampleReply(value=block, **stamp)
    if type(reply) is dpm.DigitalAlarmReply:
        fields = daqdata.DigitalAlarm.field_names
        digital = daqdata.DigitalAlarm(**{f: getattr(reply, f) for f in fields})
        return daqdata.DigitalAlarmSampleReply(value=digital, **stamp)
    raise TypeError(f"{type(reply).__name__} is not a data reply")


_NUMERIC = (
    daqdata.DoubleSampleReply,
    daqdata.ShortSampleReply,
    daqdata.IntegerSampleReply,
    daqdata.LongSampleReply,
    daqdata.BooleanSampleReply,
    daqdata.BasicControlSampleReply,
)
_ARRAYS = (
    daqdata.DoubleArraySampleReply,
    daqdata.ShortArraySampleReply,
    daqdata.IntegerArraySampleReply,
    daqdata.LongArraySampleReply,
    daqdata.BooleanArraySampleReply,
)


def setting_value(sample: Message) -> Any:
    """What a setting sample asks :meth:`DeviceModel.apply_setting` to set, or None.

    Numbers stay numbers (a ``BasicControlSample`` its
    :class:`daqdata.BasicControl`), arrays become lists, strings stay
    strings. Binary samples (which the real DMQ refuses), status, alarm and
    error samples are not settings: None.
    """
    if isinstance(sample, _NUMERIC):
        return sample.value
    if isinstance(sample, _ARRAYS):
        return [float(v) for v in sample.value]
    if isinstance(sample, daqdata.StringSampleReply):
        return sample.value
    if isinstance(sample, daqdata.StringArraySampleReply):
        return list(sample.value)
    return None


@dataclass(eq=False)
class _Feed:
    """One DRF of a reading job: what to send on its key, and when."""

    key: str
    make: Callable[[float], Message]  # wall time -> sample
    due: float | None
    period: float | None = None
    clock_event: _drf.ClockEvent | None = None
    changes_only: bool = False
    last: bytes | None = None


@dataclass(eq=False)
class ServerJob:
    """One client's job: its exchange, who authenticated it, and what it serves."""

    exchange: str
    principal: str
    acceptor: Acceptor
    heard_at: float
    next_heartbeat: float
    bindings: tuple[str, ...]
    feeds: list[_Feed] = field(default_factory=list)
    setting: Entry | None = None
    init_drf: str | None = None


class DMQService:
    """Every job of one simulated DMQ server, and the device model they share.

    ``make_acceptor()`` returns a fresh GSS acceptor (None: no keytab, every
    INIT is refused with -99). ``policy`` defaults to
    :meth:`SettingsPolicy.default` (role ``testing`` may set ``Z:*``). ``clock``
    schedules ``@e`` events. ``refused`` is called with each :class:`Refused`
    as it happens (a server logs them); :attr:`refusals` keeps the reasons of
    the last ones (for tests); :attr:`disposed` counts ended jobs.
    """

    def __init__(
        self,
        model: DeviceModel,
        clock: ClockEvents,
        make_acceptor: Callable[[], Acceptor] | None,
        policy: SettingsPolicy | None = None,
        *,
        idle_timeout: float = 30.0,
        heartbeat_period: float = 5.0,
        init_delay: float = 0.0,
        refused: Callable[[Refused], None] | None = None,
    ) -> None:
        for name, value in (("idle_timeout", idle_timeout), ("heartbeat_period", heartbeat_period)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not (math.isfinite(init_delay) and init_delay >= 0):
            raise ValueError(f"init_delay must be >= 0 seconds, got {init_delay!r}")
        self.model = model
        self.clock = clock
        self.make_acceptor = make_acceptor
        self.policy = policy if policy is not None else SettingsPolicy.default()
        self.idle_timeout = idle_timeout
        self.heartbeat_period = heartbeat_period
        self.init_delay = init_delay
        self.jobs: dict[str, ServerJob] = {}
        self.disposed = 0
        self.refusals: deque[str] = deque(maxlen=_REFUSALS_KEPT)
        self._on_refused = refused

    def _refuse(self, refusal: Refused) -> None:
        self.refusals.append(refusal.why)
        if self._on_refused is not None:
            self._on_refused(refusal)

    # -- INIT ------------------------------------------------------------------------

    def on_init(self, msg: Delivery, now: float, wall: float) -> list[Action]:
        """Answer an INIT (a message on ``amq.topic``/``I``)."""
        exchange = msg.reply_to
        if not exchange:
            why = "an INIT without reply_to: nowhere to answer"
            self._refuse(Refused("INIT without reply_to", why, app_id=msg.app_id))
            return []
        try:
            acceptor, kind, drfs = self._accept(msg)
            entry = self._setting_entry(drfs[0]) if kind is daqdata.SettingRequestRequest else None
        except _Refusal as refusal:
            self._refuse(Refused(refusal.kind, refusal.why, refusal.status, exchange, msg.app_id))
            body = daqdata.encode(error_sample(refusal.status, wall, refusal.why))
            return [Publish(exchange, "R", body, correlation_id=msg.message_id or "")]
        principal = acceptor.initiator or ""
        heartbeat = now + self.heartbeat_period
        if entry is not None:
            job = ServerJob(
                exchange,
                principal,
                acceptor,
                now,
                heartbeat,
                _SETTING_BINDINGS,
                setting=entry,
                init_drf=drfs[0],
            )
        else:
            feeds = [self._feed(d, now, exchange, msg.app_id) for d in drfs]
            job = ServerJob(exchange, principal, acceptor, now, heartbeat, _READ_BINDINGS, feeds)
        self.jobs[exchange] = job
        pending = daqdata.encode(error_sample(DMQ_PENDING, wall))
        actions: list[Action] = [Bind(exchange, key) for key in job.bindings]
        actions += [Publish(exchange, reading_key(d), pending) for d in drfs]
        actions += self._fire(job, now, wall)
        return actions

    def _accept(self, msg: Delivery) -> tuple[Acceptor, type, list[str]]:
        """The INIT's acceptor, request kind and distinct DRFs; :class:`_Refusal` if refused."""
        if msg.reply_to in self.jobs:
            why = "a job already runs on this exchange"
            raise _Refusal("second INIT on an exchange", DMQ_INVALID_REQUEST, why)
        acceptor = self._authenticate(msg)
        invalid = "invalid INIT"
        try:
            request = daqdata.decode_request(msg.body)
        except DecodeError as exc:
            raise _Refusal(invalid, DMQ_INVALID_REQUEST, f"undecodable INIT: {exc}") from None
        kind = type(request)
        if not isinstance(request, daqdata.ReadingRequestRequest | daqdata.SettingRequestRequest):
            raise _Refusal(invalid, DMQ_INVALID_REQUEST, f"{kind.__name__} starts no job")
        drfs = list(dict.fromkeys(request.data_request))
        if not drfs or (kind is daqdata.SettingRequestRequest and len(drfs) != 1):
            count = len(request.data_request)
            why = f"{count} DRFs in the {kind.__name__}"
            raise _Refusal(invalid, DMQ_INVALID_REQUEST, why)
        for d in drfs:
            try:
                reading_key(d)
            except ValueError as exc:
                raise _Refusal("DRF too long to route", DMQ_INVALID_REQUEST, str(exc)) from None
        return acceptor, kind, drfs

    def _authenticate(self, msg: Delivery) -> Acceptor:
        """The INIT's accepted context, its signature verified; :class:`_Refusal` if not."""
        token = msg.header("gss-token")
        if not token:
            raise _Refusal("no gss-token", DMQ_LOGIN_REQUIRED, "the INIT has no gss-token")
        if self.make_acceptor is None:
            why = "this server has no keytab"
            raise _Refusal("no keytab", DMQ_SECURITY_VIOLATION, why)
        try:
            acceptor = self.make_acceptor()
            acceptor.step(token)
        except AuthenticationError as exc:
            raise _Refusal("gss-token refused", DMQ_SECURITY_VIOLATION, str(exc)) from None
        if not acceptor.verify_mic(msg.signed_part(), msg.header("signature")):
            why = "the INIT signature does not verify"
            raise _Refusal("bad INIT signature", DMQ_SECURITY_VIOLATION, why)
        return acceptor

    def _setting_entry(self, drf: str) -> Entry:
        try:
            return self.model.resolve(drf, live_only=True)
        except RequestRejected as exc:
            raise _Refusal("setting DRF refused", Status.from_int(exc.status), str(exc)) from None

    def _feed(self, drf: str, now: float, exchange: str, app_id: str | None) -> _Feed:
        key = reading_key(drf)
        start = now + self.init_delay
        try:
            entry = self.model.resolve(drf, live_only=True)  # recorded data: DPM only
        except RequestRejected as exc:
            status, why = Status.from_int(exc.status), exc.reason
            self._refuse(Refused("DRF refused", str(exc), status, exchange, app_id))
            return _Feed(key, lambda wall: error_sample(status, wall, why), start)
        make = _sampler(entry)
        event = entry.event
        if isinstance(event, _drf.PeriodicEvent):
            period = event.period_us / 1e6
            return _Feed(key, make, start, period, changes_only=not event.continuous)
        if isinstance(event, _drf.ClockEvent):
            return _Feed(key, make, self.clock.next_after(event, start), clock_event=event)
        if isinstance(event, _drf.NeverEvent):
            return _Feed(key, make, None)
        return _Feed(key, make, start)  # immediate: once

    # -- messages on a job's exchange -----------------------------------------------

    def on_job_message(self, msg: Delivery, now: float, wall: float) -> list[Action]:
        """Answer ``H``, ``D`` or ``S.<drf>`` published on a job's exchange."""
        job = self.jobs.get(msg.exchange)
        if job is None:
            return []  # disposed already; its bindings are on their way out
        job.heard_at = now
        if msg.routing_key == DROP_KEY:
            return self.dispose(job.exchange)
        if msg.routing_key.startswith("S.") and job.setting is not None:
            return self._set(job, msg, wall)
        return []

    def _set(self, job: ServerJob, msg: Delivery, wall: float) -> list[Action]:
        assert job.setting is not None and job.init_drf is not None
        init_drf = job.init_drf  # for answer(): a closure keeps no narrowing of job.init_drf

        def answer(status: Status, kind: str | None = None, why: str | None = None) -> list[Action]:
            if kind is not None:
                said = why or f"{init_drf}: {status.name}"
                self._refuse(Refused(kind, said, status, job.exchange, msg.app_id))
            body = daqdata.encode(error_sample(status, wall, why))
            return [Publish(job.exchange, reading_key(init_drf), body, correlation_id="")]

        # the signature first: each one verified moves the GSS sequence on
        if not job.acceptor.verify_mic(msg.signed_part(), msg.header("signature")):
            why = "the setting's signature does not verify"
            return answer(DMQ_SECURITY_VIOLATION, "bad setting signature", why)
        if msg.routing_key != setting_key(job.init_drf):
            why = f"routing key {msg.routing_key!r} is not S.<the INIT's DRF {job.init_drf!r}>"
            return answer(DMQ_INVALID_REQUEST, "setting routing key mismatch", why)
        try:
            sample = daqdata.decode_reply(msg.body)
        except DecodeError as exc:
            return answer(DMQ_INVALID_REQUEST, "undecodable setting", f"undecodable setting: {exc}")
        value = setting_value(sample)
        if value is None:
            why = f"{type(sample).__name__} is not a setting"
            return answer(DMQ_INVALID_DATA_TYPE, "setting of no settable type", why)
        device = job.setting.device
        refusal = self._authorize(job.principal, device.name, device.protection)
        if refusal is not None:
            why = f"{job.principal} may not set {device.name}"
            return answer(refusal, "setting not allowed", why)
        status = self.model.apply_setting(job.setting, value)
        if status == 0:
            return answer(DMQ_OK)
        return answer(Status.from_int(status), "setting refused by the model")

    def _authorize(self, principal: str, device: str, mask: int) -> Status | None:
        # no role is claimed over DMQ: any role the principal holds will do
        for role in self.policy.roles_of(principal):
            if self.policy.authorize(principal, role, device, mask) is None:
                return None
        return self.policy.authorize(principal, None, device, mask)

    def dispose(self, exchange: str) -> list[Action]:
        """End the job on ``exchange``: its bindings go, nothing more is sent."""
        job = self.jobs.pop(exchange, None)
        if job is None:
            return []
        self.disposed += 1
        return [Unbind(exchange, key) for key in job.bindings]

    # -- time ------------------------------------------------------------------------

    def tick(self, now: float, wall: float) -> list[Action]:
        """Everything due by ``now``: data, ``Q`` heartbeats, disposal of idle jobs."""
        out: list[Action] = []
        for job in list(self.jobs.values()):
            if now - job.heard_at >= self.idle_timeout:
                why = f"job {job.exchange} idle for {self.idle_timeout} s"
                self._refuse(Refused("idle job disposed", why, exchange=job.exchange))
                out += self.dispose(job.exchange)
                continue
            if now >= job.next_heartbeat:
                out.append(Publish(job.exchange, SERVER_HEARTBEAT_KEY))
                job.next_heartbeat = next_on_phase(job.next_heartbeat, self.heartbeat_period, now)
            out += self._fire(job, now, wall)
        return out

    def next_due(self) -> float | None:
        """When :meth:`tick` next has something to do (None: no jobs)."""
        dues = []
        for job in self.jobs.values():
            dues += [job.heard_at + self.idle_timeout, job.next_heartbeat]
            dues += [f.due for f in job.feeds if f.due is not None]
        return min(dues, default=None)

    def _fire(self, job: ServerJob, now: float, wall: float) -> list[Action]:
        out: list[Action] = []
        for feed in job.feeds:
            if feed.due is None or feed.due > now:
                continue
            sample = feed.make(wall)
            body = daqdata.encode(sample)
            if feed.changes_only:
                unstamped = daqdata.encode(sample.replace(time=0))
                if unstamped != feed.last:
                    out.append(Publish(job.exchange, feed.key, body))
                feed.last = unstamped
            else:
                out.append(Publish(job.exchange, feed.key, body))
            if feed.period is not None:
                feed.due = next_on_phase(feed.due, feed.period, now)
            elif feed.clock_event is not None:
                feed.due = self.clock.next_after(feed.clock_event, now)
            else:
                feed.due = None
        return out


def _sampler(entry: Entry) -> Callable[[float], Message]:
    return lambda wall: sample_from_reply(entry.reply(0, wall))
