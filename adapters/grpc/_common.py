"""What the three gRPC backends share: the channel, the configuration, failures, the blocking
calls and the stream thread.

The threaded backend (:mod:`acnet_proto.adapters.grpc.threaded`) and the trio
one (:mod:`acnet_proto.adapters.grpc.trio`, which runs the blocking calls in
worker threads) use all of it; the asyncio one
(:mod:`acnet_proto.adapters.grpc.asyncio`, on ``grpc.aio``) the configuration
and the failures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import grpc

from acnet_proto import drf as _drf
from acnet_proto.adapters import _streams
from acnet_proto.adapters._streams import JOIN_PATIENCE, DefaultTimeout, resume
from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.api.auth import JWTAuth
from acnet_proto.api.backend import (
    DEFAULT_QUEUE_SIZE,
    AsyncSubscription,
    check_queue_size,
)
from acnet_proto.api.config import (
    check_host,
    check_port,
    check_timeout,
    host_port,
)
from acnet_proto.errors import (
    AuthenticationError,
    ConnectionLost,
    PolicyDenied,
    ProtocolError,
    SettingOutcomeUnknown,
)
from acnet_proto.proxy.decision import POLICY_METADATA
from acnet_proto.services.daq import GRPCReadBatch, GRPCStream, SettingBatch
from acnet_proto.streams.driver import GiveUp
from acnet_proto.streams.reconnect import Gap, Reconnect, reconnect_policy, summary
from acnet_proto.types import Reading, WriteResult

__all__ = [
    "CHANNEL_OPTIONS",
    "DEFAULT_PORT",
    "ENDED_EARLY",
    "AsyncGRPCConfig",
    "BearerMetadata",
    "GRPCConfig",
    "StreamEnd",
    "StreamThread",
    "code_name",
    "describe",
    "policy_denied",
    "read_blocking",
    "read_failed",
    "retry_within",
    "stream_failure",
    "write_blocking",
    "write_failed",
]

log = logging.getLogger(__name__)


#: The DAQ service's port.
DEFAULT_PORT = 50051
# Keepalive pings no more often than servers allow by default (every 5 min),
# so a peer that vanished without a word is noticed, and no GOAWAY is earned.
# While the channel waits out its own backoff after a refused connection, every
# call fails at once: kept near a Reconnect's (0.1 s, at most 10 s by default),
# so that a subscription's attempts are not spent before the channel tries again.
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 10_000),
)
_REFUSED = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
ENDED_EARLY = "the server ended the stream before answering every DRF"
#: What ends a subscription for good: the connection, or a supervised proxy's policy.
StreamEnd = ConnectionLost | PolicyDenied


def _nothing() -> None:
    """A gRPC stream's "connect": the channel connects by itself, with the next call."""


def _code(error: BaseException) -> grpc.StatusCode | None:
    # a failed call is an RpcError with a code(); grpc's other errors have none
    return error.code() if isinstance(error, grpc.RpcError) and hasattr(error, "code") else None


def code_name(error: BaseException) -> str | None:
    """The name of a failed call's status code (``"UNAVAILABLE"``), None for other errors."""
    code = _code(error)
    return None if code is None else code.name


def describe(error: BaseException) -> str:
    """A gRPC failure as ``CODE: details``; anything else as
    :func:`acnet_proto.adapters._streams.describe` says it."""
    code = _code(error)
    if code is not None:
        return f"{code.name}: {error.details()}"  # type: ignore[attr-defined]
    return _streams.describe(error)


def stream_failure(stream: GRPCStream, error: Exception) -> ConnectionLost:
    """The end of ``stream`` for a failure outside a call's replies: a call that could not
    start (a closed channel), or a bug. Never retried."""
    step = stream.broke(None, describe(error), datetime.now(UTC), time.monotonic(), error)
    # a failure with no gRPC code is never retried, and is no AuthenticationError
    assert isinstance(step, GiveUp) and isinstance(step.error, ConnectionLost)
    return step.error


def policy_denied(error: BaseException, drfs: Sequence[str], action: str) -> PolicyDenied | None:
    """The :class:`PolicyDenied` a failed call stands for, if a supervised proxy's policy
    refused it: ``PERMISSION_DENIED`` with the policy named in the trailing metadata
    (:data:`~acnet_proto.proxy.POLICY_METADATA`). None for any other failure, a bare
    ``PERMISSION_DENIED`` included (a server refusing the caller's role, say).

    ``action`` is what was refused (``"read"``, ``"set"``, ``"stream"``). The one place
    gRPC failures become :class:`PolicyDenied`, for every gRPC backend.
    """
    if _code(error) != grpc.StatusCode.PERMISSION_DENIED:
        return None
    trailing = getattr(error, "trailing_metadata", None)
    pairs = (trailing() if callable(trailing) else None) or ()
    policy = next((value for key, value in pairs if key == POLICY_METADATA), None)
    if not isinstance(policy, str) or not policy:
        return None
    return PolicyDenied(policy, drfs, error.details() or "", action)  # type: ignore[attr-defined]


def retry_within(batch: GRPCReadBatch, error: BaseException, deadline: float) -> float | None:
    """The seconds a failed one-shot ``Read`` may be tried again for (with
    ``wait_for_ready``); None: raise ``error``.

    Only a call the server closed the connection under before any reply came,
    as our servers do at their connection limit (``ServerLimits.max_connections``),
    and only while its deadline (monotonic) has time left: the server is busy,
    not gone (a server that is not there refuses the connection, and that fails
    at once). A ``Set`` is never tried again: a connection closed under it may
    have been closed after the setting was made.
    """
    left = deadline - time.monotonic()
    if batch.arrived or left <= 0 or _code(error) != grpc.StatusCode.UNAVAILABLE:
        return None
    details = error.details()  # type: ignore[attr-defined]
    return left if isinstance(details, str) and "Socket closed" in details else None


def read_failed(batch: GRPCReadBatch, error: BaseException, seconds: float) -> Exception:
    """What a ``Read`` that failed raises: :class:`PolicyDenied` if a supervised proxy's policy
    refused it; else a :class:`ReadError` whose missing entries get ``ACNET_REQTMO`` if its
    deadline (``seconds``) passed, ``ACNET_DISCONNECTED`` otherwise."""
    denied = policy_denied(error, batch.drfs, "read")
    if denied is not None:
        return denied
    if _code(error) == grpc.StatusCode.DEADLINE_EXCEEDED:
        return batch.timed_out(seconds)
    return batch.disconnected(describe(error))


def write_failed(batch: SettingBatch, error: BaseException) -> Exception:
    """What a failed ``Set`` raises: :class:`PolicyDenied` if a supervised proxy's policy
    refused it; a refused token (``UNAUTHENTICATED``) or caller (``PERMISSION_DENIED``) is
    an :class:`AuthenticationError`; anything else leaves the outcome unknown."""
    denied = policy_denied(error, batch.drfs, "set")
    if denied is not None:
        return denied
    code = _code(error)
    if code in _REFUSED:
        what = "token" if code == grpc.StatusCode.UNAUTHENTICATED else "settings"
        details = error.details()  # type: ignore[attr-defined]
        return AuthenticationError(f"the DAQ service refused the {what}: {details}")
    return SettingOutcomeUnknown(batch.drfs, describe(error))


class BearerMetadata(tuple[tuple[str, str], ...]):
    """Call metadata carrying a bearer token, whose repr (in tracebacks, logs) hides it."""

    __slots__ = ()

    def __new__(cls, token: str) -> BearerMetadata:
        return super().__new__(cls, (("authorization", f"Bearer {token}"),))

    def __repr__(self) -> str:
        return "(('authorization', 'Bearer <redacted>'),)"


class GRPCConfig(DefaultTimeout):
    """What the three gRPC backends share: where, how long, and the credentials."""

    def __init__(self, host: str, port: int, auth: JWTAuth | None, timeout: float) -> None:
        self._host = check_host(host)
        self._port = check_port(port)
        self.timeout = check_timeout(timeout)
        if auth is not None and not isinstance(auth, JWTAuth):
            raise TypeError(
                f"auth must be a JWTAuth (DPM over gRPC takes JWT bearer tokens) or None, "
                f"not {type(auth).__name__}"
            )
        self._auth = auth
        self.closed = False

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def target(self) -> str:
        """The channel target, ``host:port`` (IPv6 literals in brackets)."""
        return host_port(self._host, self._port)

    @property
    def authenticated(self) -> bool:
        """True if the backend has a token to write with."""
        return self._auth is not None

    @property
    def principal(self) -> str | None:
        """The token's ``sub`` (read, not verified), or None without a token."""
        return self._auth.principal if self._auth is not None else None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        who = f", principal={self._auth.claims.get('sub')!r}" if self._auth is not None else ""
        return f"{type(self).__name__}({self._host!r}, {self._port}{who}, {state})"

    def seconds(self, timeout: float | None) -> float:
        """The deadline of one call: ``timeout``, or the backend's default."""
        if self.closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")
        return self._seconds(timeout)

    def write_metadata(self) -> BearerMetadata:
        """The call metadata carrying the token; :class:`AuthenticationError` without one."""
        if self._auth is None:
            raise AuthenticationError(
                "settings over DPM/gRPC need a JWT: create the backend with "
                "auth=JWTAuth(token) (or JWTAuth.from_env())"
            )
        return BearerMetadata(self._auth.token)


# --- blocking calls, shared with the trio backend (which runs them in threads) --------------


def read_blocking(
    stub: DAQStub,
    batch: GRPCReadBatch,
    seconds: float,
    started: Callable[[Any], None] | None = None,
) -> list[Reading]:
    """Run ``batch`` as one ``Read`` call with a ``seconds`` deadline; its readings.

    ``started(call)`` is told the call as soon as it exists (so another
    thread can cancel it). Failures raise :class:`ReadError` with what arrived.
    """
    deadline = time.monotonic() + seconds
    try:
        try:
            _read_into(batch, stub.Read(batch.request(), timeout=seconds), started)
        except grpc.RpcError as e:
            if (left := retry_within(batch, e, deadline)) is None:
                raise
            call = stub.Read(batch.request(), timeout=left, wait_for_ready=True)
            _read_into(batch, call, started)
    except grpc.RpcError as e:
        raise read_failed(batch, e, seconds) from e
    except ProtocolError as e:
        raise batch.disconnected(e) from e
    if not batch.done:
        raise batch.disconnected(ENDED_EARLY)
    return batch.readings()


def _read_into(batch: GRPCReadBatch, call: Any, started: Callable[[Any], None] | None) -> None:
    if started is not None:
        started(call)
    try:
        for reply in call:
            batch.feed(reply)
            if batch.done:
                break
    finally:
        call.cancel()  # done with it: the server stops streaming what is left


def write_blocking(
    stub: DAQStub,
    batch: SettingBatch,
    seconds: float,
    metadata: Sequence[tuple[str, str]],
    started: Callable[[Any], None] | None = None,
) -> list[WriteResult]:
    """Send ``batch`` as one ``Set`` call with a ``seconds`` deadline; the results."""
    future = stub.Set.future(batch.request(), timeout=seconds, metadata=metadata)
    if started is not None:
        started(future)
    try:
        reply = future.result()
    except (grpc.RpcError, grpc.FutureCancelledError) as e:
        raise write_failed(batch, e) from e
    return batch.results(reply)


_S = TypeVar("_S", bound=AsyncSubscription)


class _SubscriptionType(Protocol[_S]):
    """What an async gRPC backend's subscriptions are made by: their class."""

    def __call__(
        self, stub: DAQStub, stream: GRPCStream, queue_size: int, owners: set[_S]
    ) -> _S: ...


class AsyncGRPCConfig(GRPCConfig, Generic[_S]):
    """:class:`GRPCConfig` and ``subscribe`` for the two async gRPC backends; each names
    its subscription type, whose constructor takes the set of live subscriptions."""

    # a class attribute; not a ClassVar, which cannot hold a type variable
    _subscription_type: _SubscriptionType[_S]
    _subscriptions: set[_S]

    if TYPE_CHECKING:
        # an attribute or a property (made on first use), read only here
        @property
        def _stub(self) -> DAQStub: ...

    async def subscribe(
        self,
        drfs: Sequence[str | _drf.DataRequest],
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        reconnect: bool | Reconnect = True,
    ) -> _S:
        """Start streaming ``drfs`` (give each an event, e.g. ``@p,1000``).

        Returns at once: a server that cannot be reached is an outage like
        any other (an open :class:`Gap` from ``readings()``, then
        reconnection). ``reconnect``: if the stream breaks because the server
        went away, call again with the default :class:`Reconnect` policy
        (True), a policy of your own, or not at all (False: the stream ends
        with :class:`ConnectionLost` from ``readings()``).
        """
        stream = GRPCStream(drfs, reconnect_policy(reconnect), self.target)
        check_queue_size(queue_size)
        self.seconds(None)  # raises if closed
        subscription = self._subscription_type(self._stub, stream, queue_size, self._subscriptions)
        self._subscriptions.add(subscription)
        return subscription


class StreamThread:
    """One subscription's ``Read`` calls (see :class:`GRPCStream`), made by a daemon thread.

    Every reading (and :class:`Gap`) goes to ``deliver(item)``, in order, on
    that thread; then ``finish(error)`` is called once: None when the server
    ended the stream or :meth:`cancel` was called, a :class:`ConnectionLost`
    when it broke for good, a :class:`PolicyDenied` when a supervised proxy
    refused it.
    """

    def __init__(
        self,
        stub: DAQStub,
        stream: GRPCStream,
        deliver: Callable[[Reading | Gap], None],
        finish: Callable[[StreamEnd | None], None],
    ) -> None:
        self._stub = stub
        self._stream = stream
        self._deliver = deliver
        self._finish = finish
        # _lock makes "cancelled, else start a call" one step, so cancel() ends the call it sees
        # and no call is started after it
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._call: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"acnet-grpc-stream {summary(stream.drfs)}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """End the stream, or a pause between calls (the thread finishes soon after); idempotent."""
        with self._lock:
            self._cancelled.set()
            call = self._call
        if call is not None:
            call.cancel()

    def join(self) -> None:
        """Wait for the thread, unless it is the caller (a callback stopping its own stream)."""
        if self._thread is threading.current_thread():
            return
        self._thread.join(JOIN_PATIENCE)
        if self._thread.is_alive():
            name = self._thread.name
            log.warning("%s is still in a callback %s s after stop()", name, JOIN_PATIENCE)

    def _run(self) -> None:
        error: StreamEnd | None = None
        try:
            self._calls()
        except (ConnectionLost, PolicyDenied) as e:
            error = e
        except Exception as e:  # a call that could not start, or a bug: the stream is over
            error = stream_failure(self._stream, e)
        self._finish(error)

    def _next_call(self) -> Any:
        with self._lock:
            if self._cancelled.is_set():
                return None
            self._call = self._stub.Read(self._stream.request())
            return self._call

    def _calls(self) -> None:
        """Make one call after another until the server ends one, cancel(), or the stream is
        lost or refused (raised)."""
        stream = self._stream
        while (call := self._next_call()) is not None:
            try:
                for reply in call:
                    for item in stream.feed(reply, datetime.now(UTC)):
                        self._deliver(item)
                return
            except Exception as e:  # RpcError, ProtocolError, or a bug: this call is over
                call.cancel()
                if self._cancelled.is_set():
                    return
                denied = policy_denied(e, stream.drfs, "stream")
                if denied is not None:  # the proxy would refuse every new call too
                    raise denied from e
                now = time.monotonic()
                step = stream.broke(code_name(e), describe(e), datetime.now(UTC), now, e)
                # the next call is the next attempt: there is nothing to connect first
                wait = self._cancelled.wait
                if not resume(stream.driver, step, _nothing, wait, (), self._deliver):
                    return
