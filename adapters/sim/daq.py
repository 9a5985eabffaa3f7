"""A simulated DAQ gRPC service (DPM over gRPC) answering from the shared device model.

::

    with DAQSimServer(jwt_key=KEY) as sim:       # or sim.start() ... sim.stop()
        backend = GRPCBackend(sim.host, sim.port)
        backend.read("M:OUTTMP")

The values come from a :class:`~acnet_proto.sim.model.DeviceModel` (by
default a fresh :meth:`~acnet_proto.sim.model.DeviceModel.default`; pass the
DPM simulator's to share one machine between both services), turned into
replies by :mod:`acnet_proto.services.daq`. The service runs on grpc's
thread-pool server, with one lock around the model, so settings never
race. It holds its clients to ``limits`` (:class:`~acnet_proto.limits.ServerLimits`,
enforced as :mod:`acnet_proto.adapters.grpc.server` says): a streaming ``Read``
beyond ``max_streams_per_peer`` per client address or ``max_streams`` in all
ends ``RESOURCE_EXHAUSTED``, and each stream holds one of ``max_streams``
threads beside those kept for ``Set`` and one-shot reads, which streams can
never take. A ``ReadingList`` or ``SettingList`` with more than
``max_list_entries`` entries, or a DRF longer than
:data:`~acnet_proto.drf.MAX_DRF_LENGTH`, is refused ``INVALID_ARGUMENT``
before it is looked at. It uses no event loop: grpc.aio binds every event loop of a process
to one shared poller, and a server on a loop of its own would then field
the events of the clients' loops (and their errors once those close).

``Read`` answers each DRF at its position in the request (the reply's
``index``), per its event (no event or ``@U``: the device's default):
``@I`` once, at once; ``@p``/``@q`` every period, first one period after
the call (``@q`` only when the value changed); ``@e`` when the simulated
clock event fires (:class:`~acnet_proto.sim.schedule.ClockEvents`); ``@N``
never. A DRF the model refuses gets a status reply with the model's status
(e.g. ``DPM_PEND``, a warning with no data, for a device the model does not
have, as the lab's DPM answers it). A DRF with a ``<-LOGGER`` or ``<-FTP`` source
is served as :mod:`acnet_proto.sim.history` says: a status reply if it is
refused, else ``ReadingReply`` chunks of at most 487 ``Reading`` each (one
scalar per sample, stamped with its time), a logger's ending with an empty
``ReadingReply(index, readings=Readings())``; the chunks are made a slice
at a time (:class:`~acnet_proto.sim.history.Feeds`), holding the model's
lock for one slice only, so other calls are answered in between. The stream ends once nothing
is left to send, so a request of ``@I`` and logger DRFs only is answered
and completed.

``Set`` needs ``authorization: Bearer <JWT>`` in the call metadata: an HS256
token signed with ``jwt_key`` that has not expired, naming its principal in
``sub``; anything else is refused with ``UNAUTHENTICATED`` (a server without
a key refuses every setting so). The token's ``realm_access.roles`` (as
Keycloak issues them) are roles of :class:`~acnet_proto.sim.policy.Policy`
(default :meth:`~acnet_proto.sim.policy.Policy.default`): the roles it defines
join the ones the policy gives the principal, and a setting is allowed when
one of them allows the device, or else the principal's console class
matches the device's protection mask. Each setting gets its own status in
the reply: the model's for a device or property it refuses, ``DPM_PRIV``
(or ``DPM_DBPRIV``) when not allowed, ``DIO_INVDATA`` for a value of the
wrong type, 0 when applied.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import jwt

from acnet_proto.adapters.grpc.server import GRPCServer, serve_until_cancelled, with_max_streams
from acnet_proto.adapters.grpc.stubs import DAQ_pb2_grpc
from acnet_proto.errors import RemoteProtocolError
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits
from acnet_proto.plans.lists import error_reading, reading_from_reply
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.services.daq import (
    reading_reply,
    setting_reply,
    status_message,
    value_from_proto,
)
from acnet_proto.sim import DeviceModel, Entry, RequestRejected, SettingsPolicy
from acnet_proto.sim.history import Chunk, Feeds
from acnet_proto.sim.schedule import ClockEvents, Group, fire_due, next_due, schedule
from acnet_proto.status import Status

__all__ = ["DEFAULT_PORT", "DAQSimServer", "serve"]

log = logging.getLogger(__name__)

#: The DAQ service's usual port.
DEFAULT_PORT = 50051
DIO_INVDATA = Status.from_name("DIO_INVDATA")
_OK = status_message(0, 0)


def _authorize(
    policy: SettingsPolicy, principal: str, token_roles: Sequence[str], device: str, protection: int
) -> Status | None:
    """None if ``principal`` may set ``device`` with ``token_roles`` besides its policy roles."""
    known = tuple(r for r in token_roles if r in policy.roles)
    held = dict(policy.principals)
    held[principal] = held.get(principal, ()) + known
    effective = dataclasses.replace(policy, principals=held)
    for role in effective.roles_of(principal):
        if effective.authorize(principal, role, device, protection) is None:
            return None
    return effective.authorize(principal, None, device, protection)


def _roles_of(claims: dict[str, Any]) -> tuple[str, ...]:
    access = claims.get("realm_access")
    roles = access.get("roles") if isinstance(access, dict) else None
    if not isinstance(roles, list):
        return ()
    return tuple(r for r in roles if isinstance(r, str))


class _Refused(Exception):
    """A call refused for its credentials; the text says why (never the token)."""


class _DAQService(DAQ_pb2_grpc.DAQServicer):
    def __init__(self, server: DAQSimServer) -> None:
        self.server = server

    def Read(
        self, request: DAQ_pb2.ReadingList, context: grpc.ServicerContext
    ) -> Iterator[DAQ_pb2.ReadingReply]:
        server = self.server
        server.check_request(request.drf, "ReadingList", context)
        over = threading.Event()
        context.add_callback(over.set)  # the client cancelled, or the server is stopping
        drfs = list(request.drf)
        with server.lock:
            wall, now = time.time(), time.monotonic()
            first, groups, feeds = self._start(drfs, now, wall)
        if not groups and not feeds:  # answered at once: no stream, so no stream slot
            yield from first
            return
        with server.stream_slot(context):
            yield from first
            yield from self._repeat(drfs, groups, feeds, over)

    def _repeat(
        self,
        drfs: list[str],
        groups: list[Group],
        feeds: Feeds,
        over: threading.Event,
    ) -> Iterator[DAQ_pb2.ReadingReply]:
        """The replies of the repeating ``groups`` and of ``feeds``, each when due, until
        ``over`` is set or nothing is left to send. The lock is held for one slice of
        the feeds at a time (:meth:`Feeds.fire`), never for a whole window."""
        server = self.server
        while groups or feeds:
            dues = [next_due(groups), feeds.next_due()]
            due = min(d for d in dues if d is not None)
            if over.wait(max(0.0, due - time.monotonic())):
                return
            with server.lock:
                now, wall = time.monotonic(), time.time()
                # the model's DPM replies, whose ref_id is the DRF's index
                fired = fire_due(groups, now, wall, server.clock)
                replies = [
                    reading_reply(r.ref_id, reading_from_reply(r, drfs[r.ref_id])) for r in fired
                ]
                replies.extend(_chunk_reply(i, c) for i, c in feeds.fire(now, wall))
            yield from replies

    def _start(
        self, drfs: list[str], now: float, wall: float
    ) -> tuple[list[DAQ_pb2.ReadingReply], list[Group], Feeds]:
        """The replies due at once (refusals and ``@I`` readings, in DRF order), the
        groups that repeat, and the feeds of DRFs with a ``<-`` source."""
        first: dict[int, DAQ_pb2.ReadingReply] = {}
        accepted: list[tuple[int, Entry]] = []
        for index, text in enumerate(drfs):
            try:
                accepted.append((index, self.server.model.resolve(text)))
            except RequestRejected as e:
                first[index] = reading_reply(index, error_reading(text, e.status))
        feeds, failed = Feeds.start(accepted, now, wall)
        for index, rejected in failed:
            first[index] = reading_reply(index, error_reading(drfs[index], rejected.status))
        live = [(index, entry) for index, entry in accepted if entry.request.source is None]
        immediate, groups = schedule(live, now, self.server.clock)
        for index, entry in immediate:
            reading = reading_from_reply(entry.reply(index, wall), drfs[index])
            first[index] = reading_reply(index, reading)
        return [first[index] for index in sorted(first)], groups, feeds

    def Set(
        self, request: DAQ_pb2.SettingList, context: grpc.ServicerContext
    ) -> DAQ_pb2.SettingReply:
        server = self.server
        try:
            claims = server._verify(context.invocation_metadata() or ())
        except _Refused as e:
            server.refuse(context, grpc.StatusCode.UNAUTHENTICATED, "a Set", str(e))
        server.check_request([s.device for s in request.setting], "SettingList", context)
        principal, roles = claims["sub"], _roles_of(claims)
        with server.lock:
            statuses = [self._apply(principal, roles, s) for s in request.setting]
        return setting_reply(statuses)

    def _apply(self, principal: str, roles: Sequence[str], setting: DAQ_pb2.Setting) -> Any:
        server = self.server
        try:
            entry = server.model.resolve(setting.device)
        except RequestRejected as e:
            return e.status
        device = entry.device
        refusal = _authorize(server.policy, principal, roles, device.name, device.protection)
        if refusal is not None:
            return refusal
        try:
            value, _ = value_from_proto(setting.value)
        except RemoteProtocolError:  # no value at all
            return DIO_INVDATA
        return server.model.apply_setting(entry, value)


def _chunk_reply(index: int, chunk: Chunk) -> DAQ_pb2.ReadingReply:
    """One ``ReadingReply`` of ``chunk``: a scalar ``Reading`` per sample; empty: the end."""
    reply = DAQ_pb2.ReadingReply(index=index)
    reply.readings.SetInParent()  # set even when empty: that is the end of data
    for us, value in zip(chunk.micros, chunk.values, strict=True):
        reading = reply.readings.reading.add()
        seconds, micros = divmod(us, 1_000_000)
        reading.timestamp.seconds, reading.timestamp.nanos = seconds, micros * 1000
        reading.data.scalar = value
        reading.status.CopyFrom(_OK)
    return reply


class DAQSimServer(GRPCServer):
    """A simulated DAQ gRPC service on ``host``:``port`` (0: a free port).

    ``jwt_key`` is the HS256 key that signs valid tokens (None: no setting
    is accepted); ``policy`` says who may set what; ``limits`` what a client
    may take of it. ``max_streams``, if given, replaces ``limits.max_streams``
    (the streaming ``Read`` calls served at once; ``Set`` and one-shot reads
    have threads of their own beside them). :meth:`start` (or ``with``)
    starts it; ``host`` and ``port`` are then where it listens.
    """

    _what = "the simulated DAQ"
    _thread_prefix = "sim-daq"

    def __init__(
        self,
        model: DeviceModel | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        jwt_key: str | bytes | None = None,
        policy: SettingsPolicy | None = None,
        *,
        max_streams: int | None = None,
        limits: ServerLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(host, port, with_max_streams(limits, max_streams))
        self.model = model if model is not None else DeviceModel.default()
        self.policy = policy if policy is not None else SettingsPolicy.default()
        #: Held while the model is read or changed (calls run in a thread pool).
        self.lock = threading.Lock()
        self.clock = ClockEvents(self.model, 0.0)
        self._jwt_key = jwt_key

    def _add_services(self, server: grpc.Server) -> None:
        DAQ_pb2_grpc.add_DAQServicer_to_server(_DAQService(self), server)
        self.clock.origin = time.monotonic()  # events count from when the service starts

    def start(self) -> None:
        """Start listening; returns once calls are accepted. OSError if the port is taken."""
        super().start()
        log.info("simulated DAQ gRPC service listening on %s:%d", self.host, self.port)

    # -- credentials ----------------------------------------------------------------------

    def _verify(self, metadata: Sequence[tuple[str, Any]]) -> dict[str, Any]:
        """The claims of the call's bearer token; :class:`_Refused` if there is no good one."""
        if self._jwt_key is None:
            raise _Refused("this server has no key to verify tokens: settings are disabled")
        header = next((v for k, v in metadata if k.lower() == "authorization"), None)
        if not header:
            raise _Refused("no token: send the metadata 'authorization: Bearer <JWT>'")
        scheme, _, token = str(header).strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused("the authorization metadata is not 'Bearer <JWT>'")
        try:
            claims = jwt.decode(
                token.strip(),
                self._jwt_key,
                algorithms=["HS256"],
                options={"require": ["exp", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise _Refused("the token has expired") from None
        except jwt.InvalidTokenError as e:
            raise _Refused(f"the token is not valid: {e}") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise _Refused("the token's 'sub' claim names no principal")
        return claims


async def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    model: DeviceModel | None = None,
    *,
    jwt_key: str | bytes | None = None,
    policy: SettingsPolicy | None = None,
    ready: Callable[[DAQSimServer], None] | None = None,
    limits: ServerLimits = DEFAULT_LIMITS,
) -> None:
    """Serve the simulated DAQ service until cancelled (``acnet-proto sim --grpc-port PORT``).

    A coroutine, to run beside the DPM simulator's :func:`acnet_proto.adapters.sim.dpm.serve`
    on one loop (the service itself runs in its own threads). ``ready`` is
    called with the server once it listens (e.g. to print the port when
    ``port=0``). Give the DPM simulator's ``model`` to serve one simulated
    machine over both protocols: a setting through either is seen by both.
    ``limits``: what a client may take of it.
    """
    sim = DAQSimServer(model, host, port, jwt_key, policy, limits=limits)
    await serve_until_cancelled(sim, ready)
