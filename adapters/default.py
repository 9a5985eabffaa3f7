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
backend is a :class:`~acnet_proto.adapters.dpm.threaded.DPMBackend`, or the
kind ``configure(backend=...)`` names (``"grpc"``, ``"dmq"``, ``"acl"``, made
by that kind's factory from the environment); it is shared by every thread
and closed at interpreter exit.

Each function takes DRF text, a :class:`~acnet_proto.drf.DataRequest` or a
:class:`~acnet_proto.api.device.Device`; Devices bound to a backend
(``with_backend``) are read through that backend instead, and one call may
not mix backends. The list calls take a list: a lone DRF string is the
TypeError every backend raises, before any DRF is read.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.api.auth import Auth, JWTAuth
from acnet_proto.api.backend import Backend, ErrorCallback, ReadingCallback, Subscription, pairs_of
from acnet_proto.api.config import (
    check_host,
    check_pool_size,
    check_port,
    check_timeout,
    resolve_dpm,
    resolve_timeout,
)
from acnet_proto.api.device import DeviceSpec, bound_backend, drf_of
from acnet_proto.errors import ConfigurationError
from acnet_proto.plans.lists import check_drf_list
from acnet_proto.types import Reading, WriteResult

__all__ = [
    "BACKENDS",
    "KINDS",
    "BackendKind",
    "configure",
    "default_backend",
    "dpm",
    "dpm_http",
    "get",
    "get_many",
    "make_backend",
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
# what configure() was given: the DPM settings under resolve_dpm's names, then devdb_host,
# devdb_port, backend, auth and role
_configured: dict[str, Any] = {}
_backend: Backend | None = None
_DPM_SETTINGS = ("host", "port", "pool_size", "timeout")
_DEVDB_MODULE = "acnet_proto.adapters.devdb"


def pause(seconds: float) -> None:
    """How the blocking API waits (between verified readbacks, by default): ``time.sleep``."""
    time.sleep(seconds)


def configure(
    *,
    dpm_host: str | None = _UNSET,
    dpm_port: int | None = _UNSET,
    pool_size: int | None = _UNSET,
    default_timeout: float | None = _UNSET,
    devdb_host: str | None = _UNSET,
    devdb_port: int | None = _UNSET,
    backend: str | None = _UNSET,
    auth: Auth | str | None = _UNSET,
    role: str | None = _UNSET,
) -> None:
    """Settings for the global backend and DevDB client; they win over the environment.

    Only the settings given change; None clears one (back to the
    environment or the default). A global backend already made is closed
    (the DevDB client, if its settings change), and the next call makes one
    with the new settings.
    ``backend`` is the kind of global backend: ``"dpm"`` (the default),
    ``"grpc"``, ``"dmq"`` or ``"acl"``. ``auth`` is what settings (and
    every DMQ operation) need: ``KerberosAuth()`` (``"krb"`` makes one now,
    raising AuthenticationError without a ticket) or, for gRPC,
    ``JWTAuth(token)``; ``role`` (DPM only) e.g. ``"testing"``. A value or
    combination that cannot work raises :class:`ConfigurationError` and
    changes nothing.
    """
    changes = _checked(
        host=(dpm_host, check_host, "dpm_host"),
        port=(dpm_port, check_port, "dpm_port"),
        pool_size=(pool_size, check_pool_size, "pool_size"),
        timeout=(default_timeout, check_timeout, "default_timeout"),
        devdb_host=(devdb_host, check_host, "devdb_host"),
        devdb_port=(devdb_port, check_port, "devdb_port"),
        backend=(backend, _check_kind, "backend"),
        auth=(auth, _check_auth, "auth"),
        role=(role, _check_role, "role"),
    )
    with _lock:
        _check_combination({**_configured, **changes})
        if changes.get("auth") == "krb":
            changes["auth"] = _kerberos()
        _close_backend_locked()
        _configured.update(changes)
    if "devdb_host" in changes or "devdb_port" in changes:
        from acnet_proto.adapters.devdb import configure_default

        # closes the shared DevDB client: the next use makes one with these settings
        configure_default(_configured.get("devdb_host"), _configured.get("devdb_port"))


def _checked(**given: tuple[Any, Callable[[Any, str], Any], str]) -> dict[str, Any]:
    """The settings given (not _UNSET), each checked (None stays None: "cleared")."""
    return {
        setting: value if value is None else check(value, name)
        for setting, (value, check, name) in given.items()
        if value is not _UNSET
    }


def _check_kind(kind: object, name: str) -> str:
    if not isinstance(kind, str) or kind not in BACKENDS:
        choices = ", ".join(map(repr, BACKENDS))
        raise ConfigurationError(f"{name} must be one of {choices} (or None), got {kind!r}")
    return kind


def _check_auth(auth: object, name: str) -> Auth | str:
    if isinstance(auth, Auth):
        return auth
    if auth == "krb":
        return "krb"
    raise ConfigurationError(
        f"{name} must be KerberosAuth(), 'krb' (a KerberosAuth() made now), JWTAuth(token) "
        f"or None, got {auth!r}"
    )


def _check_role(role: object, name: str) -> str:
    if not isinstance(role, str) or not role.strip():
        raise ConfigurationError(f"{name} must be a role name such as 'testing', got {role!r}")
    return role


def _check_combination(settings: Mapping[str, Any]) -> None:
    """ConfigurationError for credentials or a role the configured kind of backend cannot use."""
    kind = settings.get("backend") or "dpm"
    auth = settings.get("auth")
    given = None if auth is None else ("kerberos" if auth == "krb" else auth.kind)
    if given not in KINDS[kind].takes:
        raise ConfigurationError(
            f"backend={kind!r} cannot use auth={auth!r}; its credentials: {KINDS[kind].needs}"
        )
    if settings.get("role") is not None and not KINDS[kind].role:
        raise ConfigurationError(f"role= is for the DPM backend only, not backend={kind!r}")


def _kerberos() -> Auth:
    """``KerberosAuth()``, for ``auth="krb"`` (AuthenticationError without a valid ticket)."""
    try:
        from acnet_proto.adapters.kerberos import KerberosAuth
    except ImportError as exc:
        raise ConfigurationError(
            f"auth='krb' needs the gssapi package: pip install 'acnet-proto[krb]' ({exc})"
        ) from exc
    return KerberosAuth()


def shutdown() -> None:
    """Close the global backend (its streams too) and DevDB client, if made; settings are kept."""
    with _lock:
        _close_backend_locked()
        devdb = sys.modules.get(_DEVDB_MODULE)  # not imported: there is no client to close
        if devdb is not None:
            devdb.close_default()


def _close_backend_locked() -> None:
    global _backend
    backend, _backend = _backend, None
    if backend is not None:
        backend.close()


def default_backend() -> Backend:
    """The global backend, made now from the settings if there is none yet."""
    global _backend
    backend = _backend
    if backend is not None:
        return backend
    with _lock:
        if _backend is None:
            _backend = _make(_configured)
        return _backend


def _make(settings: Mapping[str, Any]) -> Backend:
    """A backend of the configured kind, from ``settings`` then the environment."""
    kind = settings.get("backend") or "dpm"
    credentials = {"auth": settings.get("auth"), "role": settings.get("role")}
    if kind == "dpm":  # configure()'s host, port, pool_size and timeout are DPM's
        dpm_settings = {name: settings.get(name) for name in _DPM_SETTINGS}
        return make_backend(kind, **dpm_settings, **credentials)
    timeout = resolve_timeout(settings.get("timeout"), default=None)  # None: the kind's own
    return make_backend(kind, timeout=timeout, **credentials)


def make_backend(
    kind: str,
    host: str | None = None,
    port: int | None = None,
    *,
    timeout: float | None = None,
    auth: Auth | None = None,
    role: str | None = None,
    pool_size: int | None = None,
) -> Backend:
    """A new backend of ``kind`` (one of :data:`BACKENDS`), made by that kind's factory.

    Arguments left None come from the environment, then the kind's
    defaults. For ACL, ``host`` is the CGI's base URL and ``port`` is not
    used; ``role`` and ``pool_size`` are DPM's (see :data:`KINDS` for the
    credentials each kind takes). A kind whose extra is not installed is a
    :class:`ConfigurationError` naming it (``pip install 'acnet-proto[grpc]'``).
    """
    try:
        return KINDS[kind].make(host, port, timeout, auth, role, pool_size)
    except ImportError as exc:
        raise ConfigurationError(
            f"backend={kind!r} needs its extra: pip install 'acnet-proto[{kind}]' ({exc})"
        ) from exc


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

#: a kind's factory: (host, port, timeout, auth, role, pool_size) -> a new backend
_Factory = Callable[
    [str | None, int | None, float | None, Auth | None, str | None, int | None], Backend
]


@dataclass(frozen=True, slots=True)
class BackendKind:
    """What one kind of backend takes (``configure(backend=...)``, the tools' ``-b``)."""

    #: makes one (see :func:`make_backend`)
    make: _Factory
    #: the kinds of credentials it takes: None (none at all), "kerberos", "jwt"
    takes: tuple[str | None, ...]
    #: what to give it, for the error naming credentials it cannot use
    needs: str
    #: whether it takes a settings role
    role: bool = False
    #: what it cannot do at all, and why: {"stream": ..., "set": ...}
    cannot: Mapping[str, str] = field(default_factory=dict)


def _dpm(
    host: str | None,
    port: int | None,
    timeout: float | None,
    auth: Auth | None,
    role: str | None,
    pool_size: int | None,
) -> Backend:
    return dpm(host, port, pool_size, timeout, auth=auth, role=role)


def _grpc(
    host: str | None, port: int | None, timeout: float | None, auth: Auth | None, *_: object
) -> Backend:
    from acnet_proto.adapters.grpc.threaded import grpc_backend

    jwt = auth if isinstance(auth, JWTAuth) else None  # the only kind it takes
    return grpc_backend(host, port, auth=jwt, timeout=timeout)


def _dmq(
    host: str | None, port: int | None, timeout: float | None, auth: Auth | None, *_: object
) -> Backend:
    from acnet_proto.adapters.dmq import dmq

    return dmq(host, port, auth=auth, timeout=timeout)


def _acl(url: str | None, port: int | None, timeout: float | None, *_: object) -> Backend:
    from acnet_proto.adapters.acl import acl

    return acl(url, timeout)


_ACL_READ_ONLY = "ACL is read-only"

#: every kind of backend, by the name ``configure(backend=...)`` and ``-b`` take
KINDS: Mapping[str, BackendKind] = {
    "dpm": BackendKind(_dpm, (None, "kerberos"), "KerberosAuth() (or 'krb')", role=True),
    "grpc": BackendKind(_grpc, (None, "jwt"), "JWTAuth(token)"),
    "dmq": BackendKind(
        _dmq,
        ("kerberos",),
        "KerberosAuth() (or 'krb'): DMQ authenticates every operation, reads too",
    ),
    "acl": BackendKind(
        _acl,
        (None,),
        f"none: {_ACL_READ_ONLY}",
        cannot={"stream": "ACL over HTTP answers each request once", "set": _ACL_READ_ONLY},
    ),
}
#: the kinds of global backend ``configure(backend=...)`` takes (None: "dpm")
BACKENDS = tuple(KINDS)


def _device_list(devices: Sequence[DeviceSpec]) -> list[DeviceSpec]:
    """``devices`` as a list: a lone DRF string is the TypeError every backend raises."""
    check_drf_list(devices)
    return list(devices)


def _backend_for(specs: list[Any]) -> Backend:
    return bound_backend(specs) or default_backend()


def read(device: DeviceSpec, timeout: float | None = None) -> Any:
    """The value of ``device``.

    DeviceError if it answers an error or no data, ReadError if it is unreachable.
    """
    return _backend_for([device]).read(drf_of(device), timeout)


def get(device: DeviceSpec, timeout: float | None = None) -> Reading:
    """The :class:`Reading` of ``device``, error or not."""
    return _backend_for([device]).get(drf_of(device), timeout)


def get_many(devices: Sequence[DeviceSpec], timeout: float | None = None) -> list[Reading]:
    """One reading per device, in order, in one batch (ReadError on transport failure)."""
    devices = _device_list(devices)
    return _backend_for(devices).get_many([drf_of(d) for d in devices], timeout)


def read_many(devices: Sequence[DeviceSpec], timeout: float | None = None) -> list[Any]:
    """One value per device, in order (ReadError, with every reading, if any is unusable)."""
    devices = _device_list(devices)
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
    drfs: Sequence[DeviceSpec],
    callback: ReadingCallback | None = None,
    on_error: ErrorCallback | None = None,
) -> Subscription:
    """Stream ``drfs`` (each with an event, e.g. ``M:OUTTMP@p,1000``); see ``Backend.subscribe``."""
    devices = _device_list(drfs)
    return _backend_for(devices).subscribe([drf_of(d) for d in devices], callback, on_error)
