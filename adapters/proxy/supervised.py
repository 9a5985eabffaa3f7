"""Supervised mode: a DAQ gRPC server in front of any backend, enforcing policies and logging.

::

    from acnet_proto.adapters.proxy.supervised import AuditLog, SupervisedServer
    from acnet_proto.proxy import DeviceAccessPolicy, ValueRangePolicy

    policies = [
        DeviceAccessPolicy(["Z:*"], mode="allow", action="set"),
        ValueRangePolicy({"Z:ACLTST": (0.0, 100.0)}),
    ]
    with SupervisedServer(backend, port=50099, policies=policies, token=secret,
                          audit_log=AuditLog("audit.jsonl")) as server:
        server.wait()          # clients: GRPCBackend("host", 50099, auth=JWTAuth(secret))

``backend`` is any :class:`~acnet_proto.api.backend.Backend`: the threaded DPM
backend, a gRPC one, :class:`~acnet_proto.testing.FakeBackend`... The
server serves ``Read`` and ``Set`` of the DAQ service (the spec's §4):

- ``Read`` of ``@I`` DRFs only is one ``backend.get_many``; anything else is
  a ``backend.subscribe`` streamed until the client cancels or the backend's
  stream ends (a stream that dies ends the call ``UNAVAILABLE``). Each DRF's
  readings carry its position in the request; a DRF asked for twice is
  subscribed once.
- ``Set`` needs ``authorization: Bearer <token>`` when the server has a
  ``token`` (else ``UNAUTHENTICATED``, "Invalid or missing bearer token");
  reads never do. Settings are made by ``backend.write_many``, one call at a
  time, and each gets its status in the reply.

Every call goes through the policies (:func:`acnet_proto.proxy.decide`,
where the rules are): a denial ends it ``PERMISSION_DENIED`` with the reason
as details and the name of who refused as the trailing metadata
``acnet-proto-policy`` (:data:`~acnet_proto.proxy.POLICY_METADATA`), which
our clients raise as :class:`~acnet_proto.errors.PolicyDenied` (a backend
that raises one, e.g. a client of another supervised proxy, is passed on
the same way). DRFs that cannot be checked (empty, unparsable) end it
``INVALID_ARGUMENT``. Backend failures: bad values ``INVALID_ARGUMENT``, a
backend without the credentials to write ``PERMISSION_DENIED``, a setting
whose outcome is unknown ``UNKNOWN``, a refused connection ``UNAVAILABLE``,
anything else ``INTERNAL``.

:class:`AuditLog` records each call (and, if asked, each reply) as a JSON
line; a setting is not made unless its record was written. The bearer
token is never logged, recorded or echoed.

The server runs on grpc's thread-pool server, like the simulated DAQ
service, and uses no event loop. It holds its clients to ``limits``
(:class:`~acnet_proto.limits.ServerLimits`, enforced as
:mod:`acnet_proto.adapters.grpc.server` says): a streaming ``Read`` beyond
``max_streams_per_peer`` per client address or ``max_streams`` in all ends
``RESOURCE_EXHAUSTED``; each stream holds one of ``max_streams`` threads,
and ``Set`` and one-shot reads have threads of their own that streams can
never take. A list of more than ``max_list_entries`` DRFs or settings, or a
DRF longer than :data:`~acnet_proto.drf.MAX_DRF_LENGTH`, is refused
``INVALID_ARGUMENT`` before it is parsed, kept or audited in full (its
audit record names it in bounded form). Refusals are logged once per burst,
the peer's text bounded and escaped.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, NoReturn

import grpc

from acnet_proto import drf as _drf
from acnet_proto._text import shown
from acnet_proto.adapters.grpc.server import (
    GRPCServer,
    abort,
    with_max_streams,
)
from acnet_proto.adapters.grpc.stubs import DAQ_pb2_grpc
from acnet_proto.adapters.proxy.audit_log import AuditLog
from acnet_proto.api.backend import DEFAULT_QUEUE_SIZE, Backend, Subscription
from acnet_proto.errors import (
    AuthenticationError,
    PolicyDenied,
    ReadError,
    RemoteProtocolError,
    SettingOutcomeUnknown,
)
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.proxy import (
    POLICY_METADATA,
    SERVER_RULES,
    NameOf,
    Policy,
    PolicyDecision,
    RequestContext,
    decide,
    is_one_shot,
    malformed,
)
from acnet_proto.services.daq import reading_reply, status_message, value_from_proto
from acnet_proto.streams.reconnect import Gap, summary
from acnet_proto.types import Reading

__all__ = ["DEFAULT_PORT", "AuditLog", "SupervisedServer"]

log = logging.getLogger(__name__)

#: The DAQ service's port.
DEFAULT_PORT = 50051
_POLL = 0.25  # how often a stream looks at its backend's subscription between readings
_BAD_TOKEN = "Invalid or missing bearer token"


#: How many DRFs, and how much of each, the audit record of a request too large keeps.
_AUDITED_ENTRIES = 8
_AUDITED_CHARS = 64


def _deny(context: grpc.ServicerContext, policy: str, why: str) -> NoReturn:
    """End the call ``PERMISSION_DENIED`` with ``why``, naming the ``policy`` that refused it in
    the :data:`~acnet_proto.proxy.POLICY_METADATA` trailer (our clients raise PolicyDenied)."""
    context.set_trailing_metadata(((POLICY_METADATA, policy),))
    abort(context, grpc.StatusCode.PERMISSION_DENIED, why)


class _Stream:
    """A backend subscription's readings, handed from its thread to the call's."""

    _WAKE = object()

    def __init__(self, drfs: list[str]) -> None:
        self.slots: dict[str, list[int]] = {}
        for index, drf in enumerate(drfs):
            self.slots.setdefault(_drf.canonical(drf), []).append(index)
        # subscribe each request once (as first written): replies fan out to its slots
        self.drfs = [drfs[indices[0]] for indices in self.slots.values()]
        self.items: queue.Queue[Any] = queue.Queue(DEFAULT_QUEUE_SIZE)
        self.dropped = 0

    def reading(self, reading: Reading | Gap, handle: Subscription) -> None:
        # a gap is queued too: it wakes the call, which sends only readings
        try:
            self.items.put_nowait(reading)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("a client of %s is too slow: dropping readings", summary(self.drfs))

    def wake(self, *_: object) -> None:
        # a full queue wakes the call anyway, and it looks at the subscription every _POLL s
        with contextlib.suppress(queue.Full):
            self.items.put_nowait(self._WAKE)

    def indices(self, reading: Reading) -> list[int] | None:
        """The request positions ``reading`` answers (None: it answers none of them)."""
        try:
            return self.slots.get(_drf.canonical(reading.drf))
        except (_drf.DRFError, TypeError):
            return None


def _reply(index: int, reading: Reading, context: grpc.ServicerContext) -> DAQ_pb2.ReadingReply:
    try:
        return reading_reply(index, reading)
    except (ValueError, TypeError, KeyError) as e:  # a value the DAQ messages cannot carry
        log.exception("cannot send the reading of %s", reading.drf)
        abort(context, grpc.StatusCode.INTERNAL, f"cannot send the reading of {reading.drf}: {e}")


class _DAQProxy(DAQ_pb2_grpc.DAQServicer):
    def __init__(self, server: SupervisedServer) -> None:
        self.server = server
        self.backend = server.backend
        self._policy_lock = threading.Lock()  # stateful policies see one call at a time
        self._set_lock = threading.Lock()  # ... and one setting at a time, until it is made

    # -- what every call goes through -----------------------------------------------------

    def _context(
        self, method: str, drfs: list[str], context: grpc.ServicerContext, request: Any
    ) -> RequestContext:
        peer = context.peer() or "unknown"
        metadata = context.invocation_metadata() or ()
        now = self.server.clock()
        name_of = None if self.server.name_of is None else self._name_of
        return RequestContext.of_call(
            method, drfs, peer, metadata, (), request, now, name_of=name_of
        )

    def _name_of(self, index_name: str) -> str | None:
        """The server's resolver, made safe: its failure leaves the index unresolved
        (so refused), rather than failing the call with a traceback."""
        assert self.server.name_of is not None
        try:
            return self.server.name_of(index_name)
        except Exception:
            log.exception("name_of failed on %s: refusing it as unresolved", shown(index_name))
            return None

    def _decide(self, ctx: RequestContext, context: grpc.ServicerContext) -> PolicyDecision:
        try:
            with self._policy_lock:
                return decide(self.server.policies, ctx)
        except Exception as e:  # a policy's bug: refuse rather than guess
            log.exception("a policy failed on %s from %s", ctx.rpc_method, ctx.peer)
            abort(context, grpc.StatusCode.INTERNAL, f"policy error: {e}")

    def _audit(
        self, ctx: RequestContext, decision: PolicyDecision, context: grpc.ServicerContext
    ) -> int | None:
        audit = self.server.audit_log
        if audit is None:
            return None
        try:
            return audit.log_request(ctx, decision)
        except Exception as e:
            log.exception("the audit log failed")
            if decision.allowed and ctx.rpc_method == "Set":  # no setting goes unrecorded
                abort(context, grpc.StatusCode.INTERNAL, f"audit log failed; not set: {e}")
            return None

    def _audit_reply(self, seq: int | None, ctx: RequestContext, reply: Any) -> None:
        audit = self.server.audit_log
        if seq is None or audit is None:
            return
        try:
            audit.log_response(seq, ctx.peer, ctx.rpc_method, reply)
        except Exception:
            log.exception("the audit log failed")

    def _refuse(
        self,
        ctx: RequestContext,
        context: grpc.ServicerContext,
        code: grpc.StatusCode,
        why: str,
        policy: str | None = None,
    ) -> NoReturn:
        self._audit(ctx, PolicyDecision(False, why, policy=policy), context)
        self.server.note_refusal(context, f"{ctx.rpc_method} {code.name}", why)
        if policy is not None:  # how a client tells a policy's refusal from any other
            _deny(context, policy, why)
        abort(context, code, why)

    def _admit(
        self, ctx: RequestContext, context: grpc.ServicerContext
    ) -> tuple[PolicyDecision, int | None]:
        """The allowing verdict and the call's audit seq; aborts the call if it is denied."""
        decision = self._decide(ctx, context)
        if not decision.allowed:
            why, policy = decision.reason or "", decision.policy or SERVER_RULES
            self._refuse(ctx, context, grpc.StatusCode.PERMISSION_DENIED, why, policy)
        seq = self._audit(ctx, decision, context)
        log.info("allowed %s of %s from %s", ctx.rpc_method, summary(ctx.drfs), ctx.peer)
        return decision, seq

    def _seconds(self, context: grpc.ServicerContext) -> float | None:
        """The backend's timeout for this call: the client's deadline if that is sooner."""
        left = context.time_remaining()
        default = getattr(self.backend, "timeout", None)
        if left is None or (default is not None and left >= default):
            return None
        return max(left, 0.001)

    # -- Read ------------------------------------------------------------------------------

    def _check_size(
        self, method: str, drfs: list[str], what: str, context: grpc.ServicerContext
    ) -> None:
        """Refuse the call ``INVALID_ARGUMENT`` if it has too many DRFs or one too long, before
        they are parsed or kept: its audit record holds the first few, shortened."""

        def refuse(code: grpc.StatusCode, why: str) -> NoReturn:
            kept = [shown(drf, _AUDITED_CHARS) for drf in drfs[:_AUDITED_ENTRIES]]
            peer = context.peer() or "unknown"
            ctx = RequestContext.of_call(method, kept, peer, (), (), None, self.server.clock())
            self._refuse(ctx, context, code, why)

        self.server.check_request(drfs, what, context, refuse)

    def Read(
        self, request: DAQ_pb2.ReadingList, context: grpc.ServicerContext
    ) -> Iterator[DAQ_pb2.ReadingReply]:
        drfs = list(request.drf)
        self._check_size("Read", drfs, "ReadingList", context)
        ctx = self._context("Read", drfs, context, request)
        bad = malformed(drfs, "Read") if drfs else "the ReadingList names no DRFs"
        if bad is not None:
            self._refuse(ctx, context, grpc.StatusCode.INVALID_ARGUMENT, bad)
        if is_one_shot(drfs):
            yield from self._answer(ctx, self._read_once, context)
            return
        # a stream is refused for its slot before the policies see it or the backend is asked
        with self.server.stream_slot(context, partial(self._refuse, ctx, context)):
            yield from self._answer(ctx, self._stream, context)

    def _answer(
        self,
        ctx: RequestContext,
        replies: Callable[[list[str], grpc.ServicerContext], Iterator[DAQ_pb2.ReadingReply]],
        context: grpc.ServicerContext,
    ) -> Iterator[DAQ_pb2.ReadingReply]:
        """The ``replies`` to an allowed ``Read``, each audited; aborts it if it is denied."""
        _, seq = self._admit(ctx, context)
        for reply in replies(ctx.drfs, context):
            self._audit_reply(seq, ctx, reply)
            yield reply

    def _read_once(
        self, drfs: list[str], context: grpc.ServicerContext
    ) -> Iterator[DAQ_pb2.ReadingReply]:
        try:
            readings = self.backend.get_many(drfs, self._seconds(context))
        except ReadError as e:  # what arrived, and error readings for the rest
            readings = e.readings
        except Exception as e:
            self._backend_failed("Read", drfs, e, context)
        for index, reading in enumerate(readings):
            yield _reply(index, reading, context)

    def _stream(
        self, drfs: list[str], context: grpc.ServicerContext
    ) -> Iterator[DAQ_pb2.ReadingReply]:
        stream = _Stream(drfs)
        context.add_callback(stream.wake)  # the client went away, or the server is stopping
        try:
            handle = self.backend.subscribe(stream.drfs, stream.reading, stream.wake)
        except Exception as e:
            self._backend_failed("Read", drfs, e, context)
        try:
            while context.is_active():
                try:
                    item = stream.items.get(timeout=_POLL)
                except queue.Empty:
                    item = None
                if isinstance(item, Reading):
                    indices = stream.indices(item)
                    if indices is None:
                        why = f"the backend sent a reading of {item.drf!r}, which was not asked for"
                        abort(context, grpc.StatusCode.INTERNAL, why)
                    for index in indices:
                        yield _reply(index, item, context)
                elif handle.stopped and stream.items.empty():
                    if isinstance(handle.exc, PolicyDenied):  # a proxy behind this one refused
                        _deny(context, handle.exc.policy, handle.exc.reason)
                    if handle.exc is not None:  # any other end: UNAVAILABLE, not a failed call
                        abort(
                            context,
                            grpc.StatusCode.UNAVAILABLE,
                            f"the backend's stream ended: {handle.exc}",
                        )
                    return
        finally:
            handle.stop()

    # -- Set -------------------------------------------------------------------------------

    def Set(
        self, request: DAQ_pb2.SettingList, context: grpc.ServicerContext
    ) -> DAQ_pb2.SettingReply:
        drfs = [s.device for s in request.setting]
        self._check_size("Set", drfs, "SettingList", context)
        ctx = self._context("Set", drfs, context, request)
        if not self._token_ok(context.invocation_metadata() or ()):
            self._refuse(ctx, context, grpc.StatusCode.UNAUTHENTICATED, _BAD_TOKEN)
        bad = malformed(drfs, "Set") if drfs else "the SettingList has no settings"
        if bad is not None:
            self._refuse(ctx, context, grpc.StatusCode.INVALID_ARGUMENT, bad)
        values = []
        for index, setting in enumerate(request.setting):
            try:
                value, _ = value_from_proto(setting.value)
            except RemoteProtocolError:
                why = f"setting {index} ({setting.device!r}) carries no value"
                self._refuse(ctx, context, grpc.StatusCode.INVALID_ARGUMENT, why)
            values.append((setting.device, value))
        ctx = replace(ctx, values=values)
        with self._set_lock:
            decision, seq = self._admit(ctx, context)
            assert decision.ctx is not None
            try:
                results = self.backend.write_many(decision.ctx.values, self._seconds(context))
            except Exception as e:
                self._backend_failed("Set", drfs, e, context)
        reply = DAQ_pb2.SettingReply(
            status=[status_message(r.facility_code, r.error_code, r.message) for r in results]
        )
        self._audit_reply(seq, ctx, reply)
        return reply

    def _token_ok(self, metadata: Sequence[tuple[str, Any]]) -> bool:
        token = self.server.token
        if token is None:
            return True
        header = next((v for k, v in metadata if k.lower() == "authorization"), None)
        if not isinstance(header, str):
            return False
        scheme, _, given = header.strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )

    def _backend_failed(
        self, method: str, drfs: list[str], error: Exception, context: grpc.ServicerContext
    ) -> NoReturn:
        if isinstance(error, PolicyDenied):  # a proxy behind this one refused: say whose policy
            _deny(context, error.policy, error.reason)
        if isinstance(error, AuthenticationError):
            code, why = grpc.StatusCode.PERMISSION_DENIED, f"the proxy's backend refused: {error}"
        elif isinstance(error, SettingOutcomeUnknown):
            code, why = grpc.StatusCode.UNKNOWN, str(error)
        elif isinstance(error, (ValueError, TypeError)):  # DRFError is a ValueError
            code, why = grpc.StatusCode.INVALID_ARGUMENT, str(error)
        elif isinstance(error, OSError):
            code, why = grpc.StatusCode.UNAVAILABLE, f"the proxy's backend is unreachable: {error}"
        else:
            log.exception("the backend failed a %s of %s", method, summary(drfs))
            code, why = grpc.StatusCode.INTERNAL, f"backend error: {error}"
        abort(context, code, why)


class SupervisedServer(GRPCServer):
    """A DAQ gRPC service on ``host``:``port`` (0: a free port) in front of ``backend``.

    The seeds' arguments: ``policies`` (run in order; see
    :mod:`acnet_proto.proxy.policies`), ``token`` (the bearer token settings
    need; None: no token checked), ``audit_log`` (closed by :meth:`stop`).
    ``limits``: what a client may take of it. ``max_streams``, if given,
    replaces ``limits.max_streams`` (the streaming ``Read`` calls served at
    once; ``Set`` and one-shot reads have threads of their own beside them).
    ``clock`` is the monotonic clock policies are given (a test's fake one,
    say). ``name_of`` resolves an index name (``0:<di>``) to the device's name
    (None: unknown) so that policies judge the device; without it, index names
    are refused whenever a policy is configured. It must agree with the
    backend's device database, since the DRF is forwarded as the client wrote it
    (for the simulator: ``lambda d: getattr(model.device(d), "name", None)``). The
    backend stays the caller's: stopping the server does not close it.
    """

    _what = "the supervised server"
    _thread_prefix = "supervised"

    def __init__(
        self,
        backend: Backend,
        port: int = DEFAULT_PORT,
        host: str = "[::]",
        policies: Sequence[Policy] | None = None,
        token: str | None = None,
        audit_log: AuditLog | None = None,
        *,
        max_streams: int | None = None,
        limits: ServerLimits = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.monotonic,
        name_of: NameOf | None = None,
    ) -> None:
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be a Backend, not {type(backend).__name__}")
        if type(port) is not int or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
        if not isinstance(host, str) or not host.strip():
            raise ValueError(f"host must be a host name or address, got {host!r}")
        super().__init__(host, port, with_max_streams(limits, max_streams))
        self.policies = list(policies or ())
        bad = next((p for p in self.policies if not isinstance(p, Policy)), None)
        if bad is not None:
            raise TypeError(f"policies must be Policy instances, got {bad!r}")
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty string, or None for no token")
        if audit_log is not None and not isinstance(audit_log, AuditLog):
            raise TypeError(f"audit_log must be an AuditLog, not {type(audit_log).__name__}")
        self.backend = backend
        self.token = token
        self.audit_log = audit_log
        self.clock = clock
        if name_of is not None and not callable(name_of):
            raise TypeError(f"name_of must be a function of an index name, not {name_of!r}")
        self.name_of = name_of

    def __repr__(self) -> str:
        state = "running" if self._server is not None else "stopped"
        return (
            f"SupervisedServer({self._host!r}, {self._port}, {state}, "
            f"policies={len(self.policies)}, token={'set' if self.token else 'none'})"
        )

    def _add_services(self, server: grpc.Server) -> None:
        DAQ_pb2_grpc.add_DAQServicer_to_server(_DAQProxy(self), server)

    def start(self) -> None:
        """Start listening; returns once calls are accepted. OSError if the port is taken."""
        super().start()
        log.info(
            "supervised DAQ server on %s:%d, %d policies, token %s",
            self.host,
            self.port,
            len(self.policies),
            "required for settings" if self.token else "not required",
        )

    def stop(self) -> None:
        """Stop listening, end every call (streams end ``CANCELLED``), close the audit log;
        idempotent."""
        super().stop()
        if self.audit_log is not None:
            self.audit_log.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout`` seconds); True if it has stopped."""
        server = self._server
        return server is None or not server.wait_for_termination(timeout)  # True: timed out
