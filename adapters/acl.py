r"""ACL over HTTP (the ACL CGI), read-only, for blocking and threaded programs.

::

    import acnet_proto

    with acnet_proto.acl() as backend:                 # https://www-bd.fnal.gov/cgi-bin/acl.pl
        backend.read("M:OUTTMP")                       # 41.7
        backend.get_many(["M:OUTTMP", "Z:NOTFND"])     # readings; Z:NOTFND's is DIO_NO_SUCH
        print(backend.execute("read M:OUTTMP; read G:AMANDA"))

The last-resort backend of the seeds' comparison table: reads only, no
settings, no streaming, no authentication (``write``, ``write_many`` and
``subscribe`` raise ``NotImplementedError`` saying so, before any I/O). A read
is one or more HTTP GETs planned by :class:`~acnet_proto.services.acl.ACLRead` (one
URL per batch of up to ~8 KB; when ACL stops a batch at a bad device, that
device alone, then the rest as a new batch); the query text and the output
format are in :mod:`acnet_proto.services.acl`. ``timeout`` is the deadline of the
whole call, fallback requests included; a server that trickles its answer byte
by byte can stretch a single request past it (requests bounds each socket
wait, not the request). When a request fails,
:class:`~acnet_proto.errors.ReadError` carries the readings that arrived and
``ACNET_REQTMO`` (deadline) or ``ACNET_DISCONNECTED`` (anything else: refused
connection, HTTP error status, output that is not ACL's) for the rest.

The query must reach the CGI exactly as built: it decodes only ``+``, ``%20``
and ``%27``, and DRF characters (``[ ] { }``) and the ``\;`` between commands
go raw. requests and urllib3 percent-encode those, so this backend's transport
adapter sends the request target as built (:class:`RawTargetAdapter`).
Redirects are not followed (they would be re-encoded): a redirect is an error
naming the new address, to be given as ``base_url``.

One ``requests.Session`` carries every call; the backend may be shared
between threads.
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from acnet_proto import drf as _drf
from acnet_proto._text import shown
from acnet_proto.api.backend import Backend, ErrorCallback, ReadingCallback, Subscription
from acnet_proto.api.config import DEFAULT_TIMEOUT, check_timeout
from acnet_proto.errors import ACLError, ConfigurationError, RemoteProtocolError
from acnet_proto.services.acl import (
    DEFAULT_BASE_URL,
    MAX_URL_LENGTH,
    ACLRead,
    check_base_url,
    decode_output,
    script_error,
    script_query,
)
from acnet_proto.streams.reconnect import Reconnect
from acnet_proto.types import Reading

__all__ = ["ENVIRONMENT", "ACLBackend", "RawTargetAdapter", "acl"]

#: What :func:`acl` consults, in order, when no ``base_url`` is given.
ENVIRONMENT = ("ACNET_ACL_URL", "PACSYS_ACL_URL")

# The request target to send, set by RawTargetAdapter.send for the calling thread.
_TARGET: contextvars.ContextVar[str | None] = contextvars.ContextVar("acl_target", default=None)


class _RawTarget:
    """A urllib3 connection that sends the target requests computed, not urllib3's re-encoding."""

    def putrequest(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        target = _TARGET.get()
        super().putrequest(method, url if target is None else target, *args, **kwargs)  # type: ignore[misc]


class _RawHTTPConnection(_RawTarget, HTTPConnection):
    pass


class _RawHTTPSConnection(_RawTarget, HTTPSConnection):
    pass


class _RawHTTPPool(HTTPConnectionPool):
    ConnectionCls = _RawHTTPConnection


class _RawHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _RawHTTPSConnection


_RAW_POOLS = {"http": _RawHTTPPool, "https": _RawHTTPSPool}


class RawTargetAdapter(HTTPAdapter):
    r"""A requests transport adapter that sends each request's URL byte for byte.

    Give it a prepared request whose ``url`` was set after preparing
    (requests re-quotes URLs as it prepares them); urllib3, which encodes
    ``[ ] { } | \ ^`` in targets, is then bypassed for the request line.
    The URL must still be printable ASCII without spaces.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _RAW_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _RAW_POOLS
        return manager

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        token = _TARGET.set(self.request_url(request, proxies or {}))
        try:
            return super().send(request, stream, timeout, verify, cert, proxies)
        finally:
            _TARGET.reset(token)


class ACLBackend(Backend):
    """Reads through the ACL CGI at ``base_url`` (the seeds' ``ACLBackend``); read-only.

    ``timeout`` is the default deadline of a call, in seconds;
    ``max_url_length`` the longest URL a batch read sends; ``verify`` is
    requests' TLS check: True (the system's CAs, or ``$REQUESTS_CA_BUNDLE``),
    a CA bundle's path, or False (no check).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        max_url_length: int = MAX_URL_LENGTH,
        verify: bool | str = True,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.timeout = check_timeout(timeout)
        if type(max_url_length) is not int or max_url_length <= len(base_url) + len("?acl="):
            raise ConfigurationError(
                f"max_url_length must be an int longer than {base_url!r}?acl=, "
                f"got {max_url_length!r}"
            )
        self.max_url_length = max_url_length
        self.closed = False
        self._verify = verify
        self._session = requests.Session()
        transport = RawTargetAdapter()
        self._session.mount("http://", transport)
        self._session.mount("https://", transport)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"ACLBackend({self.base_url!r}, timeout={self.timeout}, {state})"

    def _seconds(self, timeout: float | None) -> float:
        if self.closed:
            raise RuntimeError("this ACLBackend is closed")
        return self.timeout if timeout is None else check_timeout(timeout)

    def _fetch(self, url: str, deadline: float) -> str:
        """GET ``url`` (sent as is) before ``deadline``; the body, or ACLError for a non-200."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the deadline passed before the next ACL request")
        prepared = self._session.prepare_request(requests.Request("GET", url))
        prepared.url = url  # as built: preparing percent-encoded what the CGI never decodes
        # what Session.request would add: proxies, and the CA bundle from the environment
        # unless verify names one (a session's verify would lose to the environment's)
        settings = self._session.merge_environment_settings(url, {}, False, self._verify, None)
        response = self._session.send(
            prepared, timeout=remaining, allow_redirects=False, **settings
        )
        with response:
            if response.status_code != 200:
                where = response.headers.get("Location")
                hint = f"; it redirects to {where}: use that as base_url" if where else ""
                raise ACLError(
                    f"the ACL CGI at {self.base_url} answered HTTP {response.status_code} "
                    f"{shown(response.reason or '')}{hint}"
                )
            return decode_output(response.content, response.encoding)

    def get_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Reading]:
        """Read every DRF once; see :meth:`Backend.get_many` and :class:`ACLRead`."""
        plan = ACLRead(drfs, self.base_url, self.max_url_length)
        seconds = self._seconds(timeout)
        deadline = time.monotonic() + seconds
        while (url := plan.next_url()) is not None:
            try:
                plan.receive(self._fetch(url, deadline), time.time())
            except (TimeoutError, requests.RequestException, ACLError, RemoteProtocolError) as e:
                if _timed_out(e, deadline):
                    raise plan.timed_out(seconds, e) from e
                raise plan.failed(e) from e
        return plan.readings()

    def execute(self, command: str | Sequence[str], timeout: float | None = None) -> str:
        r"""Run ACL ``command`` (a script, or a list of commands) and return what it printed.

        Script text is written as in ACL: ``"read M:OUTTMP; read G:AMANDA"``
        (or already in URL form, ``"read+M:OUTTMP\;read+G:AMANDA"``, as
        pacsys takes it; see :func:`~acnet_proto.services.acl.encode_script`).
        :class:`ACLError` if ACL reported an error (the script stopped
        there), the server answered with an HTTP error, or the request
        failed or timed out; ``ValueError`` before any I/O for text a URL
        cannot carry.
        """
        commands = [command] if isinstance(command, str) else list(command)
        url = f"{self.base_url}?{script_query(commands)}"
        seconds = self._seconds(timeout)
        deadline = time.monotonic() + seconds
        try:
            output = self._fetch(url, deadline)
        except (TimeoutError, requests.RequestException) as e:
            if _timed_out(e, deadline):
                raise ACLError(f"ACL script {command!r} timed out after {seconds} s") from e
            raise ACLError(f"ACL script {command!r}: the request failed: {e}") from e
        error = script_error(output)
        if error is not None:
            raise ACLError(f"ACL stopped the script {command!r}: {shown(error.line)}")
        return output

    def write(
        self, drf: str | _drf.DataRequest, value: Any, timeout: float | None = None
    ) -> NoReturn:
        """Refused: ACL over HTTP cannot set devices."""
        _read_only()

    def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> NoReturn:
        """Refused: ACL over HTTP cannot set devices."""
        _read_only()

    def subscribe(
        self,
        drfs: Sequence[str | _drf.DataRequest],
        callback: ReadingCallback | None = None,
        on_error: ErrorCallback | None = None,
        *,
        reconnect: bool | Reconnect = True,
    ) -> Subscription:
        """Refused: ACL over HTTP answers each request once; it has no streams."""
        raise NotImplementedError(
            "ACLBackend cannot subscribe: ACL over HTTP has no streaming; "
            "use acnet_proto.dpm(), grpc() or dmq() for streams"
        )

    def close(self) -> None:
        """Close the HTTP connections (idempotent); later calls raise RuntimeError."""
        self.closed = True
        self._session.close()


def _timed_out(error: Exception, deadline: float) -> bool:
    # requests reports a timeout while reading the body as a ConnectionError: ask the clock too
    return isinstance(error, TimeoutError | requests.Timeout) or time.monotonic() >= deadline


def _read_only() -> NoReturn:
    raise NotImplementedError(
        "ACLBackend is read-only: ACL over HTTP cannot write settings; "
        "use acnet_proto.dpm(), grpc() or dmq() to write"
    )


def acl(base_url: str | None = None, timeout: float | None = None) -> ACLBackend:
    """An :class:`ACLBackend` (the seeds' ``pacsys.acl()``): read-only, no streaming, no auth.

    ``base_url`` defaults to ``$ACNET_ACL_URL``, else ``$PACSYS_ACL_URL``,
    else :data:`~acnet_proto.services.acl.DEFAULT_BASE_URL`; ``timeout`` to 5 s.
    """
    if base_url is None:
        found = (os.environ.get(name, "").strip() for name in ENVIRONMENT)
        base_url = next((url for url in found if url), DEFAULT_BASE_URL)
    return ACLBackend(base_url, DEFAULT_TIMEOUT if timeout is None else timeout)
