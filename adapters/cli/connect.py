"""Opening the backend the options name (``-b``, ``--host``/``--port``, ``--sim``).

:func:`connect` is a context manager that yields the backend; a
failure to reach the server, inside the block or while opening it, leaves
it as a :class:`CLIError` with exit status 3 that names the server.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from acnet_proto.adapters.cli.exits import NO_CONNECTION, UNREACHABLE, CLIError, usage
from acnet_proto.adapters.cli.simulators import Simulated, simulated
from acnet_proto.adapters.default import make_backend
from acnet_proto.api.backend import Backend

__all__ = ["connect"]

_NAMES = {"dpm": "DPM", "grpc": "DAQ gRPC", "dmq": "DMQ", "acl": "the ACL CGI"}


@contextlib.contextmanager
def connect(args: argparse.Namespace, *, settings: bool = False) -> Iterator[Backend]:
    """The backend of ``args``, closed after the block; ``settings``: with credentials to set."""
    if args.sim and (args.host is not None or args.port is not None):
        usage("--sim starts its own server: leave out --host/--port (or --sim)")
    with contextlib.ExitStack() as stack:
        place = stack.enter_context(simulated(args.backend, settings)) if args.sim else None
        backend = _open(args, place, settings)
        stack.callback(backend.close)
        where = _where(args.backend, backend)
        try:
            yield backend
        except BrokenPipeError:  # stdout closed (`| head`): not the server's fault
            raise
        except UNREACHABLE as exc:
            raise CLIError(
                NO_CONNECTION,
                f"no connection to {where}: {exc}; check the host and port, "
                "and that the server is up (or use --sim)",
            ) from exc


def _open(args: argparse.Namespace, place: Simulated | None, settings: bool) -> Backend:
    """The backend itself: its factory, with the options and credentials it uses."""
    if place is None:
        host, port, credentials = args.host, args.port, _credentials(args, settings)
    else:
        host, port, credentials = place.host, place.port, place.credentials
    return make_backend(args.backend, host, port, timeout=args.timeout, **credentials)


def _credentials(args: argparse.Namespace, settings: bool) -> dict[str, Any]:
    """Kerberos for DPM settings and for everything DMQ does; gRPC's token is in the environment."""
    if args.backend == "dmq" or (args.backend == "dpm" and settings):
        from acnet_proto.adapters.kerberos import KerberosAuth

        auth = KerberosAuth(name=getattr(args, "principal", None))
        if args.backend == "dmq":
            return {"auth": auth}
        return {"auth": auth, "role": getattr(args, "role", None) or "testing"}
    return {}


def _where(kind: str, backend: Backend) -> str:
    url = getattr(backend, "base_url", None)
    if url is not None:
        return f"{_NAMES[kind]} at {url}"
    return f"{_NAMES[kind]} at {getattr(backend, 'host', '?')}:{getattr(backend, 'port', '?')}"
