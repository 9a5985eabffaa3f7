"""Command-line tools: ``acnet-proto`` (decode, sim, demo) and the EPICS-style ``ac*`` commands.

This is an entry point, not part of the pure core: it imports adapters.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from acnet_proto.engine._state import Role
from acnet_proto.engine.framing import HANDSHAKE
from acnet_proto.engine.transcript import ReplayError, load, messages_of, replay
from acnet_proto.errors import ProtocolError
from acnet_proto.pc._message import Message
from acnet_proto.status import Status
from acnet_proto.streams.reconnect import Gap

__all__ = ["main"]

_TIME_FIELDS = frozenset({"timestamp"})
_STATUS_FIELDS = frozenset({"status"})


def _field_text(name: str, value: Any) -> str:
    if name in _TIME_FIELDS and isinstance(value, int) and value:
        when = datetime.fromtimestamp(value / 1000, UTC).isoformat(timespec="milliseconds")
        return f"{name}={when}"
    if name in _STATUS_FIELDS and isinstance(value, int):
        return f"{name}={value}" if value == 0 else f"{name}={value} {Status.from_int(value)}"
    if isinstance(value, Message):
        return f"{name}={describe(value)}"
    if isinstance(value, tuple) and value and isinstance(value[0], Message):
        return f"{name}=[{', '.join(describe(v) for v in value)}]"
    return f"{name}={value!r}"


def describe(message: Message) -> str:
    """One message, readably: its class, fields, UTC times and status names."""
    fields = message.to_dict() if hasattr(message, "to_dict") else {}
    parts = [
        _field_text(name, getattr(message, name))
        for name in fields
        if getattr(message, name) is not None
    ]
    return f"{type(message).__name__}({', '.join(parts)})"


def decode(path: str, check: bool, out: Any = None) -> int:
    """Print a transcript's conversation; with ``check``, find the first broken frame."""
    out = sys.stdout if out is None else out
    try:
        lines = load(path)
    except (OSError, ValueError) as exc:
        print(f"acnet-proto decode: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    arrows = {"c2s": "client -> server", "s2c": "server -> client"}
    number = 0
    try:
        for number, (line, items) in enumerate(messages_of(lines), 1):
            note = f"   # {line.note}" if line.note else ""
            print(f"[{number}] {arrows[line.direction]}{note}", file=out)
            for item in items:
                text = "handshake " + repr(HANDSHAKE) if item is HANDSHAKE else describe(item)
                print(f"      {text}", file=out)
    except ProtocolError as exc:
        print(f"acnet-proto decode: line {number + 1} does not decode: {exc}", file=sys.stderr)
        return 1
    if not check:
        return 0
    try:
        for _ in replay(lines, Role.CLIENT):
            pass
    except ReplayError as exc:
        # the engine's message already names whose fault it is; say it once
        blame = f"the {exc.culprit.value} broke the protocol"
        detail = str(exc.cause).removeprefix(blame + ": ").removeprefix("cannot send: ")
        print(f"BROKEN at line {exc.number}: {blame}: {detail}", file=out)
        return 1
    print("OK: every frame follows the DPM state machine", file=out)
    return 0


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sim", action="store_true", help="use a simulated DPM started in this process"
    )
    parser.add_argument("--host", help="DPM host (default: $ACNET_DPM_HOST)")
    parser.add_argument("--port", type=int, help="DPM port (default: $ACNET_DPM_PORT or 6802)")
    parser.add_argument("--timeout", type=float, help="seconds for the whole operation (default 5)")


@contextlib.contextmanager
def _backend(args: argparse.Namespace, **credentials: Any) -> Iterator[Any]:
    from acnet_proto.adapters.default import dpm

    with contextlib.ExitStack() as stack:
        host, port = args.host, args.port
        if args.sim:
            from acnet_proto.adapters.sim.dpm import SimServer

            sim = stack.enter_context(SimServer.in_thread())
            host, port = sim.host, sim.port
        yield stack.enter_context(dpm(host, port, timeout=args.timeout, **credentials))


def _value_text(reading: Any) -> str:
    if reading.is_error:
        return f"ERROR {reading.message}"
    value = reading.value
    if hasattr(value, "tolist"):
        value = value.tolist()
    units = f" {reading.units}" if reading.units else ""
    return f"{value}{units}"


def _when(reading: Any) -> str:
    return reading.timestamp.isoformat(timespec="milliseconds") if reading.timestamp else "-"


def acget(argv: Sequence[str] | None = None) -> int:
    """``acget DRF...``: read devices once, one line each (like EPICS ``caget``)."""
    parser = argparse.ArgumentParser(prog="acget", description="Read ACNET devices once.")
    parser.add_argument("drfs", nargs="+", metavar="DRF")
    parser.add_argument("-t", "--timestamp", action="store_true", help="print the timestamp")
    _connection_options(parser)
    args = parser.parse_args(argv)
    with _backend(args) as backend:
        readings = backend.get_many(args.drfs)
    for reading in readings:
        stamp = f"{_when(reading)} " if args.timestamp else ""
        print(f"{reading.drf} {stamp}{_value_text(reading)}")
    return 1 if any(r.is_error for r in readings) else 0


def acput(argv: Sequence[str] | None = None) -> int:
    """``acput DRF VALUE``: set a device (Kerberos; like EPICS ``caput``), old and new values."""
    parser = argparse.ArgumentParser(prog="acput", description="Set an ACNET device.")
    parser.add_argument("drf", metavar="DRF")
    parser.add_argument("value", metavar="VALUE", help="a number, a comma list, or text")
    parser.add_argument("--role", default="testing", help="the settings role (default testing)")
    parser.add_argument("--principal", help="Kerberos principal (default: the ticket's)")
    _connection_options(parser)
    args = parser.parse_args(argv)
    from acnet_proto.adapters.kerberos import KerberosAuth

    value = _parse_value(args.value)
    auth = KerberosAuth(name=args.principal)
    with _backend(args, auth=auth, role=args.role) as backend:
        before = backend.get(args.drf)
        result = backend.write(args.drf, value)
        after = backend.get(args.drf)
    print(f"Old : {args.drf} {_value_text(before)}")
    if not result.ok:
        print(f"REFUSED: {result.message}")
        return 1
    print(f"New : {args.drf} {_value_text(after)}")
    return 0


def _parse_value(text: str) -> Any:
    def one(item: str) -> Any:
        try:
            return float(item)
        except ValueError:
            return item

    parts = [one(p.strip()) for p in text.split(",")] if "," in text else [one(text)]
    return parts[0] if len(parts) == 1 else parts


def acmonitor(argv: Sequence[str] | None = None) -> int:
    """``acmonitor DRF...``: print readings as they stream (like EPICS ``camonitor``)."""
    parser = argparse.ArgumentParser(prog="acmonitor", description="Stream ACNET devices.")
    parser.add_argument("drfs", nargs="+", metavar="DRF", help="e.g. M:OUTTMP@p,1000")
    parser.add_argument("-n", "--count", type=int, help="stop after this many readings")
    _connection_options(parser)
    args = parser.parse_args(argv)
    seen = 0
    with _backend(args) as backend, backend.subscribe(args.drfs) as stream:
        for reading, _ in stream.readings(timeout=args.timeout):
            if isinstance(reading, Gap):  # reconnected: say what is missing, in the stream
                print(f"# {reading}", flush=True)
                continue
            print(f"{reading.drf} {_when(reading)} {_value_text(reading)}", flush=True)
            seen += 1
            if args.count is not None and seen >= args.count:
                break
    return 0


def acinfo(argv: Sequence[str] | None = None) -> int:
    """``acinfo DEVICE...``: what the server says about each device."""
    parser = argparse.ArgumentParser(prog="acinfo", description="Describe ACNET devices.")
    parser.add_argument("devices", nargs="+", metavar="DEVICE")
    _connection_options(parser)
    args = parser.parse_args(argv)
    with _backend(args) as backend:
        readings = backend.get_many(args.devices)
    failed = False
    for reading in readings:
        meta = reading.meta
        if meta is None:
            print(f"{reading.drf}: {reading.message}")
            failed = True
            continue
        print(f"{meta.name}\n  description: {meta.description}\n  units: {meta.units}")
        print(f"  device index: {meta.device_index}\n  reading: {_value_text(reading)}")
    return 1 if failed else 0


class _Command(Protocol):
    """A command: its arguments (None: ``sys.argv[1:]``) in, its exit status out."""

    __name__: str

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def _tool(function: _Command) -> _Command:
    """Wrap a command so expected failures print one line, not a traceback."""

    def run(argv: Sequence[str] | None = None) -> int:
        from acnet_proto.errors import (
            AuthenticationError,
            ConfigurationError,
            DeviceError,
            ReadError,
        )

        try:
            return function(argv)
        except ConfigurationError as exc:
            hint = "" if "--sim" in str(exc) else "; or add --sim to use a simulator in-process"
            print(f"{function.__name__}: {exc}{hint}", file=sys.stderr)
            return 2
        except (AuthenticationError, DeviceError, ReadError, OSError) as exc:
            print(f"{function.__name__}: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130

    run.__name__ = function.__name__
    run.__doc__ = function.__doc__
    return run


acget_main = _tool(acget)
acput_main = _tool(acput)
acmonitor_main = _tool(acmonitor)
acinfo_main = _tool(acinfo)


def sim(args: argparse.Namespace) -> int:
    """Serve the simulated DPM (and, when asked, gRPC) on one device model until interrupted."""
    import asyncio

    from acnet_proto.adapters.sim.dpm import serve
    from acnet_proto.sim import DeviceModel, SettingsPolicy

    model = DeviceModel.load(args.devices) if args.devices else DeviceModel.default()
    policy = SettingsPolicy.load(args.policy) if args.policy else SettingsPolicy.default()
    jwt_key = args.jwt_key or os.environ.get("ACNET_JWT_KEY")

    def ready(server: Any) -> None:
        auth = f"settings with keytab {args.keytab}" if args.keytab else "no settings (no --keytab)"
        print(f"simulated DPM on {server.host}:{server.port} ({auth}); Ctrl-C stops it", flush=True)

    def grpc_ready(server: Any) -> None:
        auth = "JWT settings" if jwt_key else "no settings (no --jwt-key)"
        print(f"simulated DAQ gRPC on {server.host}:{server.port} ({auth})", flush=True)

    async def run() -> None:
        services = [
            serve(
                args.host,
                args.port,
                model,
                ready=ready,
                keytab=args.keytab,
                policy=policy,
                insecure_settings=args.insecure_settings,
            )
        ]
        if args.grpc_port is not None:
            from acnet_proto.adapters.sim import daq as grpc_sim

            grpc = grpc_sim.serve(
                args.host, args.grpc_port, model, jwt_key=jwt_key, policy=policy, ready=grpc_ready
            )
            services.append(grpc)
        if args.devdb_port is not None:
            from acnet_proto.adapters.sim import devdb as devdb_sim

            services.append(
                devdb_sim.serve(args.host, args.devdb_port, model, ready=_announce("DevDB gRPC"))
            )
        if args.acl_port is not None:
            from acnet_proto.adapters.sim import acl as acl_sim

            services.append(acl_sim.serve(args.host, args.acl_port, model, ready=_announce("ACL")))
        if args.dmq_url is not None:
            from acnet_proto.adapters.sim import dmq as dmq_sim

            dmq = dmq_sim.serve(args.dmq_url, model, keytab=args.keytab, policy=policy)
            services.append(dmq)
        await asyncio.gather(*services)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def _announce(what: str) -> Callable[[Any], None]:
    def ready(server: Any) -> None:
        where = getattr(server, "base_url", None) or f"{server.host}:{server.port}"
        print(f"simulated {what} on {where}", flush=True)

    return ready


def record(args: argparse.Namespace) -> int:
    """Proxy a DPM server and record each connection until interrupted."""
    import asyncio

    from acnet_proto.adapters.proxy.record import Recorder

    async def run() -> None:
        recorder = Recorder(
            (args.host, args.port), args.output, port=args.listen_port, redact=not args.no_redact
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

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acnet-proto", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dec = commands.add_parser("decode", help="print a JSONL transcript readably")
    dec.add_argument("file")
    dec.add_argument(
        "--check", action="store_true", help="report the first frame that breaks the state machine"
    )
    srv = commands.add_parser("sim", help="serve the simulated DPM")
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
    demo = commands.add_parser("demo", help="tour the library against an in-process simulator")
    demo.add_argument("--no-kerberos", action="store_true", help="skip the throwaway KDC")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``acnet-proto``: see ``acnet-proto --help``."""
    args = _parser().parse_args(argv)
    if args.command == "decode":
        return decode(args.file, args.check)
    if args.command == "sim":
        return sim(args)
    if args.command == "record":
        return record(args)
    from acnet_proto.adapters.cli.demo import run as run_demo

    return run_demo(kerberos=not args.no_kerberos)


if __name__ == "__main__":
    sys.exit(main())
