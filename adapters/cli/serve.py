"""``acnet-proto sim`` (the simulators, on one device model) and ``acnet-proto record`` (a proxy).

Both serve until interrupted. Their files are read before anything
listens: a missing or unreadable file, or one that is not a valid model or
policy, is a usage error (exit 2) naming the file. A port that cannot be
listened on (in use, not allowed) is exit 3, like any other network
failure, naming the address; so is a DMQ broker that cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from acnet_proto.adapters.cli.exits import NO_CONNECTION, CLIError, usage

__all__ = ["record", "serve_options", "sim"]

_T = TypeVar("_T")


def serve_options(commands: Any) -> None:
    """Add the ``sim`` and ``record`` subcommands to ``commands`` (argparse subparsers)."""
    srv = commands.add_parser("sim", help="serve the simulated DPM (and gRPC, ACL, DMQ...)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=6802, help="0 picks a free port")
    srv.add_argument("--devices", help="device model TOML (default: the built-in one)")
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
    srv.add_argument("--acl-port", type=int, help="also serve the ACL CGI over HTTP on this port")
    srv.add_argument("--dmq-url", help="also answer DMQ on this AMQP broker (amqp://...)")
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


def _serving(coroutine: Coroutine[Any, Any, None]) -> None:
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
    _serving(_services(args, model, policy))
    return 0


async def _services(args: argparse.Namespace, model: Any, policy: Any) -> None:
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

        services.append(acl.serve(args.host, args.acl_port, model, ready=_announce("ACL")))
    if args.dmq_url is not None:
        services.append(_dmq(args.dmq_url, model, settings))
    await asyncio.gather(*services)


async def _dmq(url: str, model: Any, settings: dict[str, Any]) -> None:
    """The DMQ simulator on the broker at ``url``; a broker it cannot use is exit 3."""
    import pika.exceptions

    from acnet_proto.adapters.sim import dmq

    try:
        await dmq.serve(url, model, **settings)
    except (pika.exceptions.AMQPError, RuntimeError) as exc:
        raise CLIError(
            NO_CONNECTION,
            f"no DMQ broker at --dmq-url {url}: {exc!r}; check the URL and that RabbitMQ runs",
        ) from exc


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

    _serving(run())
    return 0
