"""``acnet-proto sim`` (the simulators, on one device model) and ``acnet-proto record`` (a proxy).

Both serve until interrupted. Their files are read before anything
listens: a missing or unreadable file, or one that is not a valid model or
policy, is a usage error (exit 2) naming the file. A port that cannot be
listened on (in use, not allowed) is exit 3, like any other network
failure, naming the address; so is a DMQ broker that cannot be reached.
``--dmq`` without ``--dmq-url`` starts a private RabbitMQ broker before
anything listens and stops it on the way out; with rabbitmq-server not
installed, that is a usage error (exit 2) saying what to do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import urllib.parse
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from acnet_proto.adapters.cli.exits import NO_CONNECTION, CLIError, usage

__all__ = ["record", "serve_options", "serving", "sim"]

_T = TypeVar("_T")


def serve_options(commands: Any) -> None:
    """Add the ``sim`` and ``record`` subcommands to ``commands`` (argparse subparsers)."""
    srv = commands.add_parser("sim", help="serve the simulated DPM (and gRPC, ACL, DMQ...)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=6802, help="0 picks a free port")
    srv.add_argument(
        "--devices",
        help="device model TOML; it extends the built-in model (same-named devices replace "
        "built-in ones) unless it says builtin = false (see docs/simulator.md)",
    )
    srv.add_argument("--keytab", help="keytab holding daeset/bd: enables Kerberos settings")
    srv.add_argument("--policy", help="settings policy TOML (default: role testing sets Z:*)")
    srv.add_argument(
        "--insecure-settings",
        action="store_true",
        help="apply settings with no authentication at all (for a private test bench only)",
    )
    srv.add_argument("--grpc-port", type=int, help="also serve DAQ over gRPC on this port")
    srv.add_argument("--jwt-key", help="HS256 key for gRPC settings tokens ($ACNET_JWT_KEY)")
    srv.add_argument("--devdb-port", type=int, help="also serve DevDB over gRPC on this port")
    srv.add_argument("--acl-port", type=int, help="also serve the ACL CGI on this port (HTTP)")
    srv.add_argument("--acl-cert", help="PEM certificate (chain): serve the ACL CGI over HTTPS")
    srv.add_argument("--acl-key", help="the --acl-cert's PEM private key (default: in that file)")
    srv.add_argument(
        "--dmq",
        action="store_true",
        help="also answer DMQ, on a private RabbitMQ broker started now (needs rabbitmq-server)",
    )
    srv.add_argument("--dmq-url", help="also answer DMQ, on this AMQP broker (amqp://...)")
    rec = commands.add_parser("record", help="proxy a DPM server, recording transcripts")
    rec.add_argument("--host", required=True, help="the real DPM host")
    rec.add_argument("--port", type=int, default=6802)
    rec.add_argument("--listen-port", type=int, default=6803, help="where clients connect")
    rec.add_argument("-o", "--output", required=True, help="transcript file (JSONL)")
    rec.add_argument("--no-redact", action="store_true", help="keep Kerberos tokens and MICs")


def _load(option: str, path: str, loader: Callable[[str], _T]) -> _T:
    """``loader(path)``; a usage error naming ``option`` and the file if it cannot be used."""
    try:
        return loader(path)
    except OSError as exc:
        usage(f"cannot read {option} {path}: {exc.strerror or exc}; check the path")
    except ValueError as exc:  # DeviceModelError, and the policy's errors, name the problem
        what = str(exc) if path in str(exc) else f"{option} {path}: {exc}"
        usage(f"{what}; fix the file (see docs/simulator.md)")


def serving(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` until Ctrl-C; a port it cannot listen on is exit 3."""
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(coroutine)
    except OSError as exc:
        raise CLIError(
            NO_CONNECTION,
            f"cannot listen: {exc}; stop what holds the port, or choose another (0: a free one)",
        ) from exc


def sim(args: argparse.Namespace) -> int:
    """Serve the simulated DPM (and, when asked, gRPC, DevDB, ACL, DMQ) until interrupted."""
    from acnet_proto.sim import DeviceModel, SettingsPolicy

    model = (
        _load("--devices", args.devices, DeviceModel.load)
        if args.devices
        else DeviceModel.default()
    )
    policy = (
        _load("--policy", args.policy, SettingsPolicy.load)
        if args.policy
        else SettingsPolicy.default()
    )
    # gRPC's core would log a bind failure on a line of its own: the one line below says it
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    if args.keytab and not Path(args.keytab).is_file():
        usage(f"--keytab {args.keytab}: no such file; give the keytab holding daeset/bd")
    args.acl_tls = _acl_tls(args)  # checked before anything listens
    with _private_broker(args) as broker:
        serving(_services(args, model, policy, broker))
    return 0


@contextlib.contextmanager
def _private_broker(args: argparse.Namespace) -> Iterator[str | None]:
    """For ``--dmq`` without ``--dmq-url``: a private RabbitMQ broker for the block (its URL),
    started before anything listens and stopped after; otherwise None."""
    if not args.dmq or args.dmq_url is not None:
        yield None
        return
    from acnet_proto.adapters.sim.rabbitmq import ServerUnavailable, start_rabbitmq

    try:
        broker = start_rabbitmq()
    except ServerUnavailable as exc:
        usage(
            f"--dmq needs rabbitmq-server to start a private broker, and cannot run it ({exc}); "
            "install rabbitmq-server (apt install rabbitmq-server), or give --dmq-url "
            "amqp://HOST of a broker that runs"
        )
    except RuntimeError as exc:
        failure = f"--dmq: the private RabbitMQ broker did not start: {exc}"
        raise CLIError(NO_CONNECTION, failure) from exc
    try:
        yield broker.url
    finally:
        broker.stop()


async def _services(args: argparse.Namespace, model: Any, policy: Any, broker: str | None) -> None:
    from acnet_proto.adapters.sim.dpm import serve

    jwt_key = args.jwt_key or os.environ.get("ACNET_JWT_KEY")

    def ready(server: Any) -> None:
        auth = f"settings with keytab {args.keytab}" if args.keytab else "no settings (no --keytab)"
        print(f"simulated DPM on {server.host}:{server.port} ({auth}); Ctrl-C stops it", flush=True)

    def grpc_ready(server: Any) -> None:
        auth = "JWT settings" if jwt_key else "no settings (no --jwt-key)"
        print(f"simulated DAQ gRPC on {server.host}:{server.port} ({auth})", flush=True)

    settings = {"keytab": args.keytab, "policy": policy}
    services = [
        serve(
            args.host,
            args.port,
            model,
            ready=ready,
            insecure_settings=args.insecure_settings,
            **settings,
        )
    ]
    if args.grpc_port is not None:
        from acnet_proto.adapters.sim import daq

        services.append(
            daq.serve(
                args.host, args.grpc_port, model, jwt_key=jwt_key, policy=policy, ready=grpc_ready
            )
        )
    if args.devdb_port is not None:
        from acnet_proto.adapters.sim import devdb

        services.append(
            devdb.serve(args.host, args.devdb_port, model, ready=_announce("DevDB gRPC"))
        )
    if args.acl_port is not None:
        from acnet_proto.adapters.sim import acl

        acl_ready = _announce("ACL")
        services.append(
            acl.serve(args.host, args.acl_port, model, ready=acl_ready, ssl_context=args.acl_tls)
        )
    if args.dmq_url is not None:
        services.append(_dmq(args.dmq_url, model, settings, private=False))
    elif broker is not None:
        services.append(_dmq(broker, model, settings, private=True))
    await asyncio.gather(*services)


async def _dmq(url: str, model: Any, settings: dict[str, Any], private: bool) -> None:
    """The DMQ simulator on the broker at ``url``; a broker it cannot use is exit 3."""
    import pika.exceptions

    from acnet_proto.adapters.sim import dmq

    shown = url if private else _without_password(url)
    whose = "a private RabbitMQ broker, stopped with the simulator" if private else "--dmq-url"

    def ready(server: Any) -> None:
        keytab = settings["keytab"] or "$KRB5_KTNAME"
        print(
            f"simulated DMQ on {shown} ({whose}; tickets for any service in {keytab})",
            flush=True,
        )

    try:
        await dmq.serve(url, model, ready=ready, **settings)
    except (pika.exceptions.AMQPError, RuntimeError) as exc:
        raise CLIError(
            NO_CONNECTION,
            f"no DMQ broker at {shown}: {exc!r}; check the URL and that RabbitMQ runs",
        ) from exc


def _without_password(url: str) -> str:
    """``url`` with its password, if it has one, shown as ``***``: a ready line is not for it."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def _acl_tls(args: argparse.Namespace) -> Any:
    """``--acl-cert``/``--acl-key`` as the ACL CGI's server context (None: plain HTTP);
    a file that cannot serve HTTPS is a usage error naming it."""
    if args.acl_cert is None:
        if args.acl_key is not None:
            usage("--acl-key needs --acl-cert, the certificate it belongs to")
        return None
    if args.acl_port is None:
        usage("--acl-cert needs --acl-port: it is the certificate of the ACL CGI")
    from acnet_proto.adapters.sim.acl import tls_context
    from acnet_proto.errors import ConfigurationError

    try:
        return tls_context(args.acl_cert, args.acl_key)
    except ConfigurationError as exc:
        usage(f"{exc}; give --acl-cert a PEM certificate and --acl-key its private key")


def _announce(what: str) -> Callable[[Any], None]:
    def ready(server: Any) -> None:
        where = getattr(server, "base_url", None) or f"{server.host}:{server.port}"
        print(f"simulated {what} on {where}", flush=True)

    return ready


def record(args: argparse.Namespace) -> int:
    """Proxy a DPM server and record each connection until interrupted."""
    from acnet_proto.adapters.proxy.record import Recorder

    async def run() -> None:
        recorder = Recorder(
            (args.host, args.port),
            args.output,
            port=args.listen_port,
            redact=not args.no_redact,
            on_refused=lambda refusal: print(refusal, flush=True),
        )
        await recorder.start()
        print(
            f"recording {args.host}:{args.port} via 127.0.0.1:{recorder.port} to {args.output}",
            flush=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await recorder.aclose()

    serving(run())
    return 0
