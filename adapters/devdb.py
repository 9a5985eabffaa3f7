"""A DevDB client (device metadata over gRPC) for blocking and threaded programs.

::

    import acnet_proto

    with acnet_proto.devdb(host="localhost") as db:      # or ACNET_DEVDB_HOST=localhost
        info = db.get_device_info(["Z:ACLTST", "M:OUTTMP"])
        info["Z:ACLTST"].description                     # 'ACL test device!'
        info["Z:ACLTST"].status_bits[0].short_name       # 'On'
        db.get_alarm_info(["M:OUTTMP"])                  # [AlarmInfo(...)]
        db.get_alarm_text([54470])                       # [AlarmText(...)]

:meth:`DevDBClient.get_device_info` keeps each device's record for
``cache_ttl`` seconds (default an hour; names compare in any case) and asks
DevDB only for the others, in one ``getDeviceInfo`` call. A device DevDB
does not know raises :class:`~acnet_proto.errors.DeviceError`
(``DPM_NO_SUCH_DEVICE``; ``DPM_LOOKUP_FAILED`` with DevDB's message for a
name it refused), after the devices found in the same call were cached. A
call that fails (server unreachable, deadline passed, ...) raises
:class:`DevDBRpcError`, both a ``grpc.RpcError`` (as the seeds say) and a
:class:`~acnet_proto.errors.ConnectionLost`. Alarm information and texts
are not cached.

The lab serves DevDB over TLS: give ``tls=True`` (as pacsys's client
takes it), and ``ca_file=`` a PEM file of the certificates to trust if
grpc's own roots do not vouch for the server's (a test server's
self-signed certificate, say; grpc also reads ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``).
A ``ca_file`` implies ``tls``.

The records and the cache live in :mod:`acnet_proto.services.devdb`; the
client is safe to share between threads. :func:`default_devdb` is the
process-wide client that :meth:`Device.info() <acnet_proto.api.device.Device.info>`
uses when given none.
"""

from __future__ import annotations

import atexit
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import grpc

from acnet_proto.adapters.grpc.stubs.DevDB_pb2_grpc import DevDBStub
from acnet_proto.api.config import check_host, check_port, check_timeout, host_port
from acnet_proto.errors import ConfigurationError, ConnectionLost, RemoteProtocolError
from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
from acnet_proto.services.devdb import (
    DEFAULT_CACHE_TTL,
    AlarmInfo,
    AlarmText,
    DeviceInfoResult,
    TTLCache,
    alarm_infos,
    alarm_texts,
    check_names,
    device_infos,
    resolve_devdb,
)

__all__ = [
    "DevDBClient",
    "DevDBRpcError",
    "close_default",
    "configure_default",
    "default_devdb",
    "devdb",
]

_MAX_TEXT_ID = 2**32 - 1


class DevDBRpcError(grpc.RpcError, ConnectionLost):
    """A DevDB call failed: ``code()`` and ``details()`` say how, as grpc's own errors do."""

    def __init__(self, target: str, method: str, error: grpc.RpcError) -> None:
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        self._code, self._details = code, details
        super().__init__(f"DevDB at {target}: {method} failed: {code.name}: {details}")

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details


class DevDBClient:
    """A DevDB client on one gRPC channel (the seeds' ``DevDBClient``).

    ``host``/``port``/``timeout`` left None come from ``ACNET_DEVDB_HOST``,
    ``ACNET_DEVDB_PORT`` (or ``PACSYS_DEVDB_*``), then the defaults (port
    6802, 5 s; no default host: :class:`~acnet_proto.api.config.ConfigurationError`).
    ``cache_ttl`` is how long device records are kept, in seconds (0: not
    at all); ``clock`` tells the cache the time (monotonic seconds). ``tls``:
    connect over TLS (None: only if ``ca_file`` is given); ``ca_file``: the PEM
    certificates to trust (None: grpc's own roots). The channel connects on
    the first call.
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        timeout: float | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        *,
        clock: Callable[[], float] = time.monotonic,
        tls: bool | None = None,
        ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        settings = resolve_devdb(host, port, timeout)
        credentials = _channel_credentials(tls, ca_file)
        self._cache: TTLCache[DeviceInfoResult] = TTLCache(cache_ttl)
        self.host, self.port, self.timeout = settings.host, settings.port, settings.timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self.target = host_port(self.host, self.port)
        self.tls = credentials is not None
        if credentials is None:
            self._channel = grpc.insecure_channel(self.target)
        else:
            self._channel = grpc.secure_channel(self.target, credentials)
        self._stub = DevDBStub(self._channel)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        how = ", TLS" if self.tls else ""
        return f"DevDBClient({self.host!r}, {self.port}{how}, {state})"

    def _seconds(self, timeout: float | None) -> float:
        """The deadline of a call (the client's default if None); RuntimeError once closed."""
        if self._closed:
            raise RuntimeError("this DevDBClient is closed")
        return self.timeout if timeout is None else check_timeout(timeout)

    def _call(self, method: str, request: Any, seconds: float) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=seconds)
        except grpc.RpcError as e:
            raise DevDBRpcError(self.target, method, e) from e

    def get_device_info(
        self, names: list[str], timeout: float | None = None
    ) -> dict[str, DeviceInfoResult]:
        """Each device's metadata, keyed by the names as given (cached; see the module docstring).

        ``names`` must be a list of names (a lone string is a TypeError).
        """
        seconds = self._seconds(timeout)
        names = check_names(names)
        found: dict[str, DeviceInfoResult] = {}
        wanted: dict[str, None] = {}  # the names to ask for, once each, in order
        with self._lock:
            now = self._clock()
            for name in names:
                cached = self._cache.get(name.upper(), now)
                if cached is not None:
                    found[name] = cached
                else:
                    wanted[name] = None
        if not wanted:
            return found
        reply = self._call("getDeviceInfo", DevDB_pb2.DeviceList(device=list(wanted)), seconds)
        infos, failure = device_infos(reply)
        by_key = {name.upper(): info for name, info in infos.items()}
        with self._lock:
            now = self._clock()
            for key, info in by_key.items():
                self._cache.put(key, info, now)
        if failure is not None:
            raise failure
        missing = [name for name in wanted if name.upper() not in by_key]
        if missing:
            raise RemoteProtocolError(
                f"DevDB at {self.target} sent no entry for {', '.join(missing)}"
            )
        found.update((name, by_key[name.upper()]) for name in wanted)
        return {name: found[name] for name in names}

    def get_alarm_info(self, names: list[str], timeout: float | None = None) -> list[AlarmInfo]:
        """The alarm blocks of the devices (none for a device without alarms, or unknown)."""
        seconds = self._seconds(timeout)
        request = DevDB_pb2.DeviceList(device=check_names(names))
        return alarm_infos(self._call("getAllAlarmInfo", request, seconds))

    def get_alarm_text(self, ids: Iterable[int], timeout: float | None = None) -> list[AlarmText]:
        """The alarm texts of ``ids`` (ids DevDB does not know are left out)."""
        seconds = self._seconds(timeout)
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise TypeError(f"ids must be a list of alarm text ids, not {type(ids).__name__}")
        ids = list(ids)
        for index, text_id in enumerate(ids):
            if type(text_id) is not int:
                raise TypeError(f"ids[{index}] must be an alarm text id (int), got {text_id!r}")
            if not 0 <= text_id <= _MAX_TEXT_ID:
                raise ValueError(f"ids[{index}] must be an alarm text id (uint32), got {text_id}")
        request = DevDB_pb2.AlarmTextIdList(alarm_text_id=ids)
        return alarm_texts(self._call("getAlarmText", request, seconds))

    def clear_cache(self, device: str | None = None) -> None:
        """Forget ``device``'s record (any case), or every record."""
        with self._lock:
            self._cache.clear(None if device is None else device.upper())

    def close(self) -> None:
        """Close the channel; idempotent."""
        self._closed = True
        self._channel.close()

    def __enter__(self) -> DevDBClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _channel_credentials(
    tls: bool | None, ca_file: str | os.PathLike[str] | None
) -> grpc.ChannelCredentials | None:
    """What the channel is secured with (None: plain); a ``ca_file`` that cannot be read, or
    holds no PEM certificate, is a ConfigurationError naming it."""
    if tls is not None and not isinstance(tls, bool):
        raise TypeError(f"tls must be True, False or None, not {tls!r}")
    if ca_file is None:
        return grpc.ssl_channel_credentials() if tls else None
    if tls is False:
        raise ConfigurationError(f"ca_file={ca_file!s} is for TLS, but tls=False; drop one")
    try:
        ssl.create_default_context(cafile=ca_file)  # grpc would only fail each handshake
        with open(ca_file, "rb") as file:
            roots = file.read()
    except ssl.SSLError:  # an OSError too: first
        problem = f"the CA file {ca_file!s} holds no PEM certificate"
        raise ConfigurationError(f"{problem}; give the server's certificate or its CA") from None
    except OSError as e:
        problem = f"the CA file {ca_file!s} cannot be read: {e.strerror or e}"
        raise ConfigurationError(f"{problem}; check the path") from None
    return grpc.ssl_channel_credentials(roots)


def devdb(
    host: str | None = None,
    port: int | None = None,
    timeout: float | None = None,
    cache_ttl: float = DEFAULT_CACHE_TTL,
    *,
    tls: bool | None = None,
    ca_file: str | os.PathLike[str] | None = None,
) -> DevDBClient:
    """A DevDB client of your own (``acnet_proto.devdb()``; close it, or use ``with``).

    ``host``/``port`` left None come from ``acnet_proto.configure(devdb_host=,
    devdb_port=)`` (:func:`configure_default`), then the environment;
    ``tls``/``ca_file`` as for :class:`DevDBClient`.
    """
    host = _default_settings.get("host") if host is None else host
    port = _default_settings.get("port") if port is None else port
    return DevDBClient(host, port, timeout, cache_ttl, tls=tls, ca_file=ca_file)


_default_lock = threading.Lock()
_default: DevDBClient | None = None
_default_settings: dict[str, Any] = {}


def default_devdb() -> DevDBClient:
    """The process-wide client, made on first use from :func:`configure_default`'s settings,
    then the environment (:class:`~acnet_proto.api.config.ConfigurationError` without a host)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = DevDBClient(**_default_settings)
        return _default


def configure_default(host: str | None = None, port: int | None = None) -> None:
    """Where the process-wide client connects (None: the environment's say); closes the
    current one, so the next use makes one with these settings."""
    settings = {
        "host": None if host is None else check_host(host, "devdb_host"),
        "port": None if port is None else check_port(port, "devdb_port"),
    }
    with _default_lock:
        _close_locked()
        _default_settings.update(settings)


def close_default() -> None:
    """Close the process-wide client, if there is one; the settings are kept."""
    with _default_lock:
        _close_locked()


def _close_locked() -> None:
    global _default
    client, _default = _default, None
    if client is not None:
        client.close()


atexit.register(close_default)
