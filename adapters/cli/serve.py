"""``acnet-proto sim`` (the simulators, on one device model) and ``acnet-proto record`` (a proxy).

Both serve until interrupted. Their files are read before anything
listens: a missing or unreadable file, or one that is not a valid model or
policy, is a usage error (exit 2) naming the file. A port that cannot be
listened on (in use, not allowed) is exit 3, like any other network
failure, naming the address; so is a DMQ broker that cannot be reached.
``--dmq`` without ``--dmq-url`` starts a private RabbitMQ broker before
anything listens and stops it on the way out; with rabbitmq-server not
installed, that is a usage error (exit 2) saying what to do.

Ctrl-C (SIGINT, or SIGTERM; heard even by a background job started with
SIGINT ignored) always ends the process within :data:`STOP_WITHIN`
seconds (and the private broker's stop), however many clients are
connected: each server is told to stop and drop its clients, and one that
has not stopped by then (stuck on a peer, a broker, a handler) is left
behind, named in a line on stderr, rather than waited for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from acnet_proto.adapters._tls import tls_context
from acnet_proto.adapters.cli.exits import NO_CONNECTION, CLIError, usage
from acnet_proto.errors import ConfigurationError, ConnectionLost

__all__ = ["STOP_WITHIN", "record", "serve_options", "serving", "sim"]

_T = TypeVar("_T")

#: Seconds Ctrl-C gives the servers to stop before the process ends without them.
STOP_WITHIN = 5.0
#: Seconds between the main thread's looks for a signal (see :func:`serving`).
_SIGNAL_POLL = 0.2


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
    srv.add_argument("--devdb-cert", help="PEM certificate (chain): serve DevDB over TLS only")
    srv.add_argument("--devdb-key", help="the --devdb-cert's PEM private key (default: in it)")
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


def serving(coroutine: Coroutine[Any, Any, None], stop_within: float = STOP_WITHIN) -> list[str]:
    """Run ``coroutine`` until Ctrl-C (or its end); a port it cannot listen on is exit 3.

    It runs on an event loop in a thread of its own, so that Ctrl-C is
    heard however busy or stuck the loop is: Ctrl-C (SIGINT, or SIGTERM)
    cancels it and waits at most ``stop_within`` seconds for it, and for
    the threads it started, to end. Returns the names of those that did not
    (empty: a clean stop); :func:`leave` ends the process without them.
    """
    with _stopped_by_signals():
        return _serve_until_stopped(coroutine, stop_within)


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """In the block, SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, even if
    SIGINT was inherited ignored: a script's background job (``acnet-proto sim &``) starts so,
    and would not stop when its harness sends it SIGINT."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread hears signals; its caller's handlers stand
        return
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, signal.default_int_handler) for signum in stops}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _serve_until_stopped(coroutine: Coroutine[Any, Any, None], stop_within: float) -> list[str]:
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = Future()
    ended = threading.Event()
    outcome: list[BaseException] = []
    threading.Thread(
        target=_run_loop, args=(coroutine, started, ended, outcome), name="serving", daemon=True
    ).start()
    # Event.wait, not Thread.join: in Python 3.11 a Ctrl-C inside join() marks the thread as
    # ended while it runs on (bpo-45274). In short waits: CPython runs a signal's handler in
    # the main thread only, and a signal the kernel gives another thread (grpc's, pika's) does
    # not end a wait of the main thread (the loop's epoll_wait, once, for as long as it slept).
    try:
        while not ended.wait(_SIGNAL_POLL):
            pass
    except KeyboardInterrupt:
        loop, task = started.result(stop_within)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it is over
            loop.call_soon_threadsafe(task.cancel)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C again: stop waiting
            ended.wait(stop_within)
    deadline = time.monotonic() + stop_within
    if not ended.is_set():
        return ["the event loop", *_stragglers(time.monotonic())]
    for error in outcome:
        if isinstance(error, OSError):
            raise CLIError(
                NO_CONNECTION,
                f"cannot listen: {error}; stop what holds the port, or choose another "
                "(0: a free one)",
            ) from error
        raise error
    return _stragglers(deadline)


def _run_loop(
    coroutine: Coroutine[Any, Any, None],
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]],
    ended: threading.Event,
    outcome: list[BaseException],
) -> None:
    """:func:`serving`'s thread: ``coroutine`` to its end; what it raised into ``outcome``."""

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None  # a coroutine run by asyncio.run is a task
        started.set_result((asyncio.get_running_loop(), task))
        await coroutine

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        pass  # Ctrl-C
    except BaseException as exc:  # for the main thread to raise
        outcome.append(exc)
    finally:
        if not started.done():  # it failed before it ran: nothing to cancel
            started.set_exception(RuntimeError("the event loop did not start"))
        ended.set()


def _stragglers(deadline: float) -> list[str]:
    """The threads that would hold the process at its exit and are still running at
    ``deadline`` (each is waited for until then; all of them, if Ctrl-C comes again)."""
    current = threading.current_thread()
    others = [t for t in threading.enumerate() if t is not current and not t.daemon]
    try:
        for thread in others:
            thread.join(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        return [f"thread {t.name!r}" for t in others]
    return [f"thread {t.name!r}" for t in others if t.is_alive()]


def leave(stragglers: list[str], stop_within: float = STOP_WITHIN) -> None:
    """If :func:`serving` left ``stragglers``, say so on stderr and end the process now
    (exit 0: it was asked to stop); waiting for them at exit could take forever."""
    if not stragglers:
        return
    print(
        f"acnet-proto: stopped, leaving {', '.join(stragglers)}, which did not stop within "
        f"{stop_within:g} s of Ctrl-C",
        file=sys.stderr,
        flush=True,
    )
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)


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
    # the certificates are checked before anything listens
    args.acl_tls = _tls(args, "acl", "the ACL CGI", tls_context)
    args.devdb_tls = _tls(args, "devdb", "the DevDB service", _devdb_credentials)
    with _private_broker(args) as broker:
        stragglers = serving(_services(args, model, policy, broker))
    leave(stragglers)  # after the broker's stop: it must not outlive the simulator
    return 0


@contextlib.contextmanager
def _private_broker(args: argparse.Namespace) -> Iterator[str | None]:
    """For ``--dmq`` without ``--dmq-url``: a private RabbitMQ broker for the block (its URL),
    started before anything listens and stopped after; otherwise None. Not installed is exit
    2, installed but not started exit 3 (``simulators.helper_server`` decides)."""
    if not args.dmq or args.dmq_url is not None:
        yield None
        return
    from acnet_proto.adapters.cli.simulators import helper_server
    from acnet_proto.adapters.sim.rabbitmq import start_rabbitmq

    broker = helper_server(
        start_rabbitmq,
        "--dmq needs rabbitmq-server to start a private broker",
        "rabbitmq-server (apt install rabbitmq-server)",
        "give --dmq-url amqp://HOST of a broker that runs",
    )
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

        devdb_ready = _announce("DevDB gRPC")
        services.append(
            devdb.serve(
                args.host, args.devdb_port, model, ready=devdb_ready, credentials=args.devdb_tls
            )
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
    except (pika.exceptions.AMQPError, ConnectionLost) as exc:
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


def _tls(
    args: argparse.Namespace, service: str, what: str, make: Callable[[str, str | None], _T]
) -> _T | None:
    """``--SERVICE-cert``/``--SERVICE-key`` as ``make(cert, key)`` (None: no TLS); half a
    configuration, or a file that cannot serve TLS, is a usage error naming it."""
    cert, key = getattr(args, f"{service}_cert"), getattr(args, f"{service}_key")
    if cert is None:
        if key is not None:
            usage(f"--{service}-key needs --{service}-cert, the certificate it belongs to")
        return None
    if getattr(args, f"{service}_port") is None:
        usage(f"--{service}-cert needs --{service}-port: it is the certificate of {what}")
    try:
        return make(cert, key)
    except ConfigurationError as exc:
        usage(f"{exc}; give --{service}-cert a PEM certificate and --{service}-key its private key")


def _devdb_credentials(cert: str, key: str | None) -> Any:
    # grpc is imported only by a simulator that serves it
    from acnet_proto.adapters.grpc.server import tls_credentials

    return tls_credentials(cert, key)


def _announce(what: str) -> Callable[[Any], None]:
    def ready(server: Any) -> None:
        # a URL says https itself; an address needs to be told
        how = " (TLS)" if getattr(server, "tls", False) else ""
        where = getattr(server, "base_url", None) or f"{server.host}:{server.port}{how}"
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

    leave(serving(run()))
    return 0
