"""Where a DPM backend connects, and with what limits: arguments, then the environment.

Each setting is resolved in this order, the first one given wins:

1. the argument (``acnet_proto.dpm(host=...)``, ``acnet_proto.configure(dpm_host=...)``);
2. ``ACNET_DPM_HOST``, ``ACNET_DPM_PORT``, ``ACNET_POOL_SIZE``, ``ACNET_TIMEOUT``;
3. pacsys's names, so an environment set up for pacsys works unchanged:
   ``PACSYS_DPM_HOST``, ``PACSYS_DPM_PORT``, ``PACSYS_POOL_SIZE``, ``PACSYS_TIMEOUT``;
4. the defaults: port 6802, 4 pooled connections, 5.0 s.

The host has no default: the control-system proxy is not reachable from
everywhere, and silently trying it would only turn a missing setting into a
slow timeout. Without one, :func:`resolve_dpm` raises
:class:`ConfigurationError` saying what to set.

Pure: the environment is a mapping passed in (``os.environ`` by default) and
read when asked, never at import.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from acnet_proto.errors import ConfigurationError

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "ENVIRONMENT",
    "DPMSettings",
    "check_host",
    "check_pool_size",
    "check_port",
    "check_timeout",
    "host_port",
    "resolve_dpm",
    "resolve_endpoint",
    "resolve_timeout",
]

DEFAULT_PORT = 6802
DEFAULT_POOL_SIZE = 4
DEFAULT_TIMEOUT = 5.0

#: Per setting, the environment variables consulted, in order of precedence.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "host": ("ACNET_DPM_HOST", "PACSYS_DPM_HOST"),
    "port": ("ACNET_DPM_PORT", "PACSYS_DPM_PORT"),
    "pool_size": ("ACNET_POOL_SIZE", "PACSYS_POOL_SIZE"),
    "timeout": ("ACNET_TIMEOUT", "PACSYS_TIMEOUT"),
}

_T = TypeVar("_T")
_N = TypeVar("_N", int, float)
_D = TypeVar("_D", bound=float | None)  # resolve_timeout's default: None only if passed

_NO_HOST = (
    "no DPM host is configured: set ACNET_DPM_HOST (e.g. ACNET_DPM_HOST=localhost "
    "ACNET_DPM_PORT=6802 after starting a simulated DPM with `acnet-proto sim`), "
    "or pass host= to acnet_proto.dpm() / dpm_host= to acnet_proto.configure()"
)


@dataclass(frozen=True, slots=True)
class DPMSettings:
    """A DPM/TCP backend's resolved settings."""

    host: str
    port: int = DEFAULT_PORT
    pool_size: int = DEFAULT_POOL_SIZE
    timeout: float = DEFAULT_TIMEOUT


def check_host(host: object, name: str = "host") -> str:
    """``host`` if it is a non-empty string; else :class:`ConfigurationError` naming ``name``."""
    if not isinstance(host, str) or not host.strip():
        raise ConfigurationError(f"{name} must be a non-empty host name, got {host!r}")
    return host


def check_port(port: object, name: str = "port") -> int:
    """``port`` if it is an int in 1..65535 (not a bool)."""
    if type(port) is not int or not 1 <= port <= 65535:
        raise ConfigurationError(f"{name} must be an integer from 1 to 65535, got {port!r}")
    return port


def check_pool_size(size: object, name: str = "pool_size") -> int:
    """``size`` if it is a positive int (not a bool)."""
    if type(size) is not int or size < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {size!r}")
    return size


def check_timeout(timeout: object, name: str = "timeout") -> float:
    """``timeout`` as a float if it is a positive, finite number of seconds."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ConfigurationError(f"{name} must be a number of seconds, got {timeout!r}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ConfigurationError(f"{name} must be positive and finite, got {timeout!r}")
    return float(timeout)


def host_port(host: str, port: int) -> str:
    """``host:port`` as an address or URL wants it: an IPv6 literal in brackets.

    A host that came in brackets already (``"[::]"``) is left as it is.
    """
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def _from_environment(setting: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    for variable in ENVIRONMENT[setting]:
        text = environ.get(variable, "").strip()
        if text:
            return variable, text
    return None


def _number(variable: str, text: str, kind: type[_N], noun: str | None = None) -> _N:
    try:
        return kind(text)
    except ValueError:
        noun = noun or ("an integer" if kind is int else "a number")
        raise ConfigurationError(f"{variable}={text!r} is not {noun}") from None


def _pick(
    value: object,
    setting: str,
    kind: type[int] | type[float],
    check: Callable[[object, str], _T],
    default: _T,
    environ: Mapping[str, str],
) -> _T:
    if value is not None:
        return check(value, setting)
    found = _from_environment(setting, environ)
    if found is None:
        return default
    variable, text = found
    return check(_number(variable, text, kind), variable)


def resolve_dpm(
    host: str | None = None,
    port: int | None = None,
    pool_size: int | None = None,
    timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> DPMSettings:
    """The settings to use: each argument that is not None, else the environment, else the default.

    Raises :class:`ConfigurationError` when no host is given anywhere, or a
    value is invalid (the message names the argument or variable it came from).
    """
    env = os.environ if environ is None else environ
    if host is not None:
        host = check_host(host)
    elif (found := _from_environment("host", env)) is not None:
        host = check_host(found[1], found[0])
    else:
        raise ConfigurationError(_NO_HOST)
    return DPMSettings(
        host=host,
        port=_pick(port, "port", int, check_port, DEFAULT_PORT, env),
        pool_size=_pick(pool_size, "pool_size", int, check_pool_size, DEFAULT_POOL_SIZE, env),
        timeout=resolve_timeout(timeout, env),
    )


def resolve_timeout(
    timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
    default: float | _D = DEFAULT_TIMEOUT,
) -> float | _D:
    """A default operation timeout: ``timeout`` if not None, else ``ACNET_TIMEOUT``, else
    ``PACSYS_TIMEOUT``, else ``default`` (None: leave it to the backend's own default)."""
    env = os.environ if environ is None else environ
    return _pick(timeout, "timeout", float, check_timeout, default, env)


def resolve_endpoint(
    service: str,
    host: str | None,
    port: int | None,
    default_port: int,
    simulator: str,
    environ: Mapping[str, str] | None = None,
    *,
    no_host: str | None = None,
    port_noun: str = "an integer",
) -> tuple[str, int]:
    """``(host, port)`` of another service (``"GRPC"``, ``"DMQ"``, ``"DEVDB"``).

    Each argument that is not None wins; then ``ACNET_<SERVICE>_HOST``/``_PORT``,
    then pacsys's ``PACSYS_<SERVICE>_HOST``/``_PORT``; the port defaults to
    ``default_port``. No host anywhere is a :class:`ConfigurationError` that
    names the variable and the simulator option (``simulator``) to start one,
    or says ``no_host`` if given; a port variable that is no number says it
    is not ``port_noun``.
    """
    env = os.environ if environ is None else environ
    names = {p: (f"ACNET_{service}_{p}", f"PACSYS_{service}_{p}") for p in ("HOST", "PORT")}

    def first(part: str) -> tuple[str, str] | None:
        return next(((v, env[v].strip()) for v in names[part] if env.get(v, "").strip()), None)

    if host is None:
        found = first("HOST")
        if found is None:
            raise ConfigurationError(
                no_host
                or f"no {service} host is configured: pass host=, or set {names['HOST'][0]} "
                f"(a simulated one: `acnet-proto sim {simulator}`)"
            )
        host = check_host(found[1], found[0])
    else:
        host = check_host(host)
    if port is None:
        found = first("PORT")
        port = default_port if found is None else _number(found[0], found[1], int, port_noun)
        return host, check_port(port, found[0] if found else "port")
    return host, check_port(port)
