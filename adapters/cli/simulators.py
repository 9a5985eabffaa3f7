"""The servers ``--sim`` and ``acnet-proto demo`` start in this process, and their credentials.

Nothing leaves the machine: each simulator listens on a free loopback port.
Settings over DPM are authenticated by a throwaway MIT Kerberos KDC in a
temporary directory (:func:`throwaway_kdc`); over gRPC by a token signed
with a key made up for the run (:func:`simulated_grpc`). DMQ runs on a
private RabbitMQ broker started for the run (it needs rabbitmq-server
installed), and authenticates every operation with the throwaway KDC.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from acnet_proto.adapters.cli.exits import NO_CONNECTION, CLIError, usage
from acnet_proto.adapters.sim._processes import ServerStartFailed, ServerUnavailable

__all__ = ["Simulated", "helper_server", "simulated", "throwaway_kdc"]

_T = TypeVar("_T")

#: the principal the throwaway KDC gives a ticket to (what ``kinit`` would)
OPERATOR = "operator@FNAL.GOV"


@dataclass
class Simulated:
    """Where a simulator listens (``host``/``port``; for ACL, ``host`` is the CGI's base URL,
    as :func:`~acnet_proto.adapters.default.make_backend` takes it) and its credentials."""

    host: str = ""
    port: int = 0
    #: keywords the backend factory needs for settings (``auth=``, ``role=``)
    credentials: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def throwaway_kdc() -> Iterator[Path]:
    """A KDC for FNAL.GOV with a ticket for operator@FNAL.GOV; yields the service keytab.

    This process's Kerberos variables point at it until the block ends.
    :class:`ServerUnavailable` if krb5kdc is not installed,
    :class:`ServerStartFailed` if it does not start.
    """
    from acnet_proto.adapters.sim.kdc import start_kdc

    with tempfile.TemporaryDirectory(prefix="acnet-proto-kdc-") as workdir:
        kdc = start_kdc(Path(workdir))
        saved = {name: os.environ.get(name) for name in kdc.env_vars()}
        os.environ.update(kdc.env_vars())
        try:
            yield kdc.keytab
        finally:
            kdc.stop()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def helper_server(start: Callable[[], _T], needs: str, install: str, instead: str) -> _T:
    """``start()``: a helper server (KDC, broker) that the command ``needs``; the one place
    that decides what its failure to start means.

    Not installed is a usage error (exit 2): the fix is to ``install`` it, or
    to do ``instead``. Installed but not started (it exited, or did not
    answer in time) is exit 3, no connection: the command line was right,
    and what failed is a server it needs, as when a port cannot be listened
    on; the message ends with the server's log, which says why.
    """
    try:
        return start()
    except ServerUnavailable as exc:
        usage(f"{needs}, and cannot run it ({exc}); install {install}, or {instead}")
    except ServerStartFailed as exc:
        failure = f"{needs}, which did not start: {exc}; fix what its log says, or {instead}"
        raise CLIError(NO_CONNECTION, failure) from exc


@contextlib.contextmanager
def simulated(backend: str, settings: bool) -> Iterator[Simulated]:
    """Run the simulator of ``backend`` for the block; with ``settings``, one that takes them."""
    with contextlib.ExitStack() as stack:
        if backend == "dpm":
            yield _simulated_dpm(stack, settings)
        elif backend == "grpc":
            yield _simulated_grpc(stack, settings)
        elif backend == "acl":
            from acnet_proto.adapters.sim.acl import ACLSimServer

            yield Simulated(stack.enter_context(ACLSimServer()).base_url)
        elif backend == "dmq":
            yield _simulated_dmq(stack)
        else:
            usage(f"--sim cannot run {backend}: choose dpm, grpc, dmq or acl")


def _simulated_dpm(stack: contextlib.ExitStack, settings: bool) -> Simulated:
    from acnet_proto.adapters.kerberos import KerberosAuth
    from acnet_proto.adapters.sim.dpm import SimServer

    if not settings:
        sim = stack.enter_context(SimServer.in_thread())
        return Simulated(sim.host, sim.port)
    keytab = _keytab(stack, "--sim settings", "acnet-proto sim --keytab FILE")
    sim = stack.enter_context(SimServer.in_thread(keytab=keytab))
    credentials = {"auth": KerberosAuth(OPERATOR), "role": "testing"}
    return Simulated(sim.host, sim.port, credentials=credentials)


def _keytab(stack: contextlib.ExitStack, what: str, instead: str) -> Path:
    """The keytab of a throwaway KDC for the block; if it cannot start, the failure says to
    run ``instead`` (and pass --host/--port)."""
    return helper_server(
        lambda: stack.enter_context(throwaway_kdc()),
        f"{what} need a Kerberos KDC in-process",
        "krb5-kdc",
        f"run `{instead}` and pass --host/--port",
    )


def _simulated_dmq(stack: contextlib.ExitStack) -> Simulated:
    """A private broker, a throwaway KDC, and the simulated DMQ on them. The client reaches
    the broker as ``localhost``, so it asks for ``daeset/bd/localhost``, which the keytab holds."""
    from acnet_proto.adapters.kerberos import KerberosAuth
    from acnet_proto.adapters.sim.dmq import DMQSimServer
    from acnet_proto.adapters.sim.rabbitmq import start_rabbitmq

    instead = "acnet-proto sim --dmq-url amqp://HOST"
    broker = helper_server(
        lambda: stack.enter_context(start_rabbitmq()),
        "--sim runs DMQ on a private RabbitMQ broker",
        "rabbitmq-server",
        f"run `{instead}` and pass --host/--port",
    )
    keytab = _keytab(stack, "--sim DMQ reads and settings", instead)
    stack.enter_context(DMQSimServer(broker.url, keytab=keytab))
    return Simulated("localhost", broker.port, credentials={"auth": KerberosAuth(OPERATOR)})


def _simulated_grpc(stack: contextlib.ExitStack, settings: bool) -> Simulated:
    from acnet_proto.adapters.sim.daq import DAQSimServer

    key = secrets.token_hex(32)
    sim = stack.enter_context(DAQSimServer(jwt_key=key))
    credentials: dict[str, Any] = {}
    if settings:
        import jwt

        from acnet_proto.api.auth import JWTAuth

        claims = {"sub": OPERATOR, "exp": int(time.time()) + 3600}
        credentials["auth"] = JWTAuth(jwt.encode(claims, key, algorithm="HS256"))
    return Simulated(sim.host, sim.port, credentials=credentials)
