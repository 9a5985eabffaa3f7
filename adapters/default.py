"""The process-wide backend behind ``acnet_proto.read()`` and friends, made on first use.

::

    import acnet_proto

    acnet_proto.configure(dpm_host="localhost")     # or ACNET_DPM_HOST=localhost
    acnet_proto.read("M:OUTTMP")                     # creates the backend, then reads
    acnet_proto.shutdown()                           # closes it; the next call makes another

The first call that needs the backend resolves its settings with
:func:`acnet_proto.api.config.resolve_dpm`: what :func:`configure` was given,
then ``ACNET_*`` variables, then ``PACSYS_*`` ones, then defaults (there is
no default host: without one the call raises
:class:`~acnet_proto.api.config.ConfigurationError` saying what to set). The
backend is a :class:`~acnet_proto.adapters.dpm.threaded.DPMBackend`, shared by
every thread; it is closed at interpreter exit.

Each function takes DRF text, a :class:`~acnet_proto.drf.DataRequest` or a
:class:`~acnet_proto.api.device.Device`; Devices bound to a backend
(``with_backend``) are read through that backend instead, and one call may
not mix backends.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.api.auth import Auth
from acnet_proto.api.backend import Backend, ErrorCallback, ReadingCallback, Subscription, pairs_of
from acnet_proto.api.config import (
    check_host,
    check_pool_size,
    check_port,
    check_timeout,
    resolve_dpm,
)
from acnet_proto.api.device import DeviceSpec, bound_backend, drf_of
from acnet_proto.types import Reading, WriteResult

__all__ = [
    "configure",
    "default_backend",
    "dpm",
    "dpm_http",
    "get",
    "get_many",
    "read",
    "read_many",
    "shutdown",
    "subscribe",
    "write",
    "write_many",
]


class _Unset:
    """configure()'s "not given", as distinct from None ("back to the environment or default")."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()
_lock = threading.Lock()
_configured: dict[str, Any] = {}
_credentials: dict[str, Any] = {}
_backend: DPMBackend | None = None


def pause(seconds: float) -> None:
    """How the blocking API waits (between verified readbacks, by default): ``time.sleep``."""
    time.sleep(seconds)


def configure(
    *,
    dpm_host: str | None = _UNSET,
    dpm_port: int | None = _UNSET,
    pool_size: int | None = _UNSET,
    default_timeout: float | None = _UNSET,
    auth: Auth | None = _UNSET,
    role: str | None = _UNSET,
) -> None:
    """Settings for the global backend; they win over the environment.

    Only the settings given change; None clears one (back to the
    environment or the default). A global backend already made is closed,
    and the next call makes one with the new settings. ``auth`` and
    ``role`` are what settings (writes) need: ``KerberosAuth()`` and e.g.
    ``"testing"``.
    """
    given = {
        "host": (dpm_host, check_host, "dpm_host"),
        "port": (dpm_port, check_port, "dpm_port"),
        "pool_size": (pool_size, check_pool_size, "pool_size"),
        "timeout": (default_timeout, check_timeout, "default_timeout"),
    }
    changes = {
        setting: value if value is None else check(value, name)
        for setting, (value, check, name) in given.items()
        if value is not _UNSET
    }
    with _lock:
        _close_locked()
        _configured.update(changes)
        if auth is not _UNSET:
            _credentials["auth"] = auth
        if role is not _UNSET:
            _credentials["role"] = role


def shutdown() -> None:
    """Close the global backend, if there is one (its streams too); settings are kept."""
    with _lock:
        _close_locked()


def _close_locked() -> None:
    global _backend
    backend, _backend = _backend, None
    if backend is not None:
        backend.close()


def default_backend() -> DPMBackend:
    """The global backend, made now from the settings if there is none yet."""
    global _backend
    backend = _backend
    if backend is not None:
        return backend
    with _lock:
        if _backend is None:
            settings = resolve_dpm(**_configured)
            _backend = DPMBackend(
                settings.host, settings.port, settings.pool_size, settings.timeout, **_credentials
            )
        return _backend


atexit.register(shutdown)


def dpm(
    host: str | None = None,
    port: int | None = None,
    pool_size: int | None = None,
    timeout: float | None = None,
    *,
    auth: Auth | None = None,
    role: str | None = None,
) -> DPMBackend:
    """A DPM/TCP backend of your own (close it, or use ``with``).

    Arguments left None come from the environment, then the defaults, as for
    the global backend (but :func:`configure` does not apply). Settings need
    ``auth=KerberosAuth()`` and ``role=``.
    """
    settings = resolve_dpm(host, port, pool_size, timeout)
    return DPMBackend(
        settings.host, settings.port, settings.pool_size, settings.timeout, auth=auth, role=role
    )


#: pacsys's name for :func:`dpm`.
dpm_http = dpm


def _backend_for(specs: list[Any]) -> Backend:
    return bound_backend(specs) or default_backend()


def read(device: DeviceSpec, timeout: float | None = None) -> Any:
    """The value of ``device`` (DeviceError if it answers an error, ReadError if unreachable)."""
    return _backend_for([device]).read(drf_of(device), timeout)


def get(device: DeviceSpec, timeout: float | None = None) -> Reading:
    """The :class:`Reading` of ``device``, error or not."""
    return _backend_for([device]).get(drf_of(device), timeout)


def get_many(devices: Iterable[DeviceSpec], timeout: float | None = None) -> list[Reading]:
    """One reading per device, in order, in one batch (ReadError on transport failure)."""
    devices = list(devices)
    return _backend_for(devices).get_many([drf_of(d) for d in devices], timeout)


def read_many(devices: Iterable[DeviceSpec], timeout: float | None = None) -> list[Any]:
    """One value per device, in order (ReadError, with every reading, if any is unusable)."""
    devices = list(devices)
    return _backend_for(devices).read_many([drf_of(d) for d in devices], timeout)


def write(device: DeviceSpec, value: Any, timeout: float | None = None) -> WriteResult:
    """Apply one setting (AuthenticationError without credentials)."""
    return _backend_for([device]).write(drf_of(device), value, timeout)


def write_many(
    settings: Iterable[tuple[DeviceSpec, Any]] | Mapping[DeviceSpec, Any],
    timeout: float | None = None,
) -> list[WriteResult]:
    """Apply several settings in one batch: ``[(device, value), ...]`` or ``{device: value}``."""
    pairs = pairs_of(settings)
    backend = _backend_for([device for device, _ in pairs])
    return backend.write_many([(drf_of(device), value) for device, value in pairs], timeout)


def subscribe(
    drfs: Iterable[DeviceSpec],
    callback: ReadingCallback | None = None,
    on_error: ErrorCallback | None = None,
) -> Subscription:
    """Stream ``drfs`` (each with an event, e.g. ``M:OUTTMP@p,1000``); see ``Backend.subscribe``."""
    devices = list(drfs)
    return _backend_for(devices).subscribe([drf_of(d) for d in devices], callback, on_error)
