"""``acnet-proto sim``'s failures: one line, exit 2 for its files, 3 for a port in use; and the
DMQ it serves on a broker of its own (``--dmq``) or a given one (``--dmq-url``)."""

from __future__ import annotations

import contextlib
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.cli.installed import BIN, one_error_line, run
from tests.support.servers import skip_or_fail
from tests.support.servers.kdc import KDC
from tests.support.servers.rabbitmq import RabbitMQ


def test_a_port_in_use_is_exit_3_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_error_line(run("acnet-proto", "sim", "--port", str(port)), "acnet-proto", 3)
    assert str(port) in line and "address already in use" in line and "choose another" in line


def test_a_grpc_port_in_use_is_one_line_too() -> None:
    pytest.importorskip("grpc")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("acnet-proto", "sim", "--port", "0", "--grpc-port", str(port))
    assert f"127.0.0.1:{port}" in one_error_line(result, "acnet-proto", 3)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("not [valid toml\n", "not valid TOML"), ('[[device]]\nname = "bad"\n', "'bad'")],
)
def test_a_bad_device_model_is_exit_2_naming_the_file(
    tmp_path: Path, text: str, problem: str
) -> None:
    model = tmp_path / "devices.toml"
    model.write_text(text)
    line = one_error_line(run("acnet-proto", "sim", "--devices", str(model)), "acnet-proto", 2)
    assert str(model) in line and problem in line and "fix the file" in line


@pytest.mark.parametrize("option", ["--devices", "--policy", "--keytab"])
def test_a_missing_file_is_exit_2_naming_it(tmp_path: Path, option: str) -> None:
    missing = tmp_path / "missing"
    line = one_error_line(run("acnet-proto", "sim", option, str(missing)), "acnet-proto", 2)
    assert f"{option} {missing}" in line


# ------------------------------------------------------------- --dmq: a private broker


def test_dmq_without_rabbitmq_installed_is_exit_2_saying_what_to_do(tmp_path: Path) -> None:
    absent = {"ACNET_PROTO_RABBITMQ_SERVER": str(tmp_path / "rabbitmq-server")}
    result = run("acnet-proto", "sim", "--port", "0", "--dmq", env=absent)
    line = one_error_line(result, "acnet-proto", 2)
    assert "install rabbitmq-server" in line and "--dmq-url" in line


@pytest.mark.parametrize(
    "command",
    [["acnet-proto", "sim", "--port", "0", "--dmq"], ["acget", "-b", "dmq", "--sim", "M:OUTTMP"]],
)
def test_a_broker_that_does_not_start_is_exit_3_with_its_log(command: list[str]) -> None:
    from acnet_proto.adapters.sim._processes import ServerUnavailable, find_program

    try:
        find_program("epmd")  # started before the broker: without it, the broker is not tried
    except ServerUnavailable as exc:
        skip_or_fail(exc)
    # not in tmp_path: as root, the broker runs as the rabbitmq user, who cannot enter it
    with tempfile.TemporaryDirectory() as where:
        Path(where).chmod(0o755)
        broken = Path(where) / "rabbitmq-server"
        broken.write_text("#!/bin/sh\necho 'cannot open the mnesia directory'\nexit 7\n")
        broken.chmod(0o755)
        result = run(*command, env={"ACNET_PROTO_RABBITMQ_SERVER": str(broken)})
    line = one_error_line(result, command[0], 3)
    assert "did not start" in line and "exited with 7" in line
    assert "cannot open the mnesia directory" in line and "--dmq-url" in line


# the lines each process has printed, read by a thread of its own: select() on the pipe
# misses lines that a readline() already pulled into the pipe object's buffer
_PRINTED: dict[int, queue.Queue[str]] = {}


def _printed(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    lines = _PRINTED.get(proc.pid)
    if lines is None:
        lines = _PRINTED[proc.pid] = queue.Queue()
        threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    return lines


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def _line_with(proc: subprocess.Popen[str], words: str, within: float = 90.0) -> str:
    """The first line ``proc`` prints that holds ``words``; fails after ``within`` seconds."""
    lines = _printed(proc)
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=min(left, 0.5))
        except queue.Empty:
            assert proc.poll() is None, f"acnet-proto sim exited {proc.returncode}"
            continue
        if words in line:
            return line
    raise AssertionError(f"no line with {words!r} within {within} s")


@pytest.mark.integration
def test_dmq_starts_a_private_broker_serves_on_it_and_stops_it(kdc: KDC) -> None:
    pytest.importorskip("pika")
    pytest.importorskip("gssapi")
    from acnet_proto.adapters.dmq import DMQBackend
    from acnet_proto.adapters.kerberos import KerberosAuth
    from acnet_proto.adapters.sim.rabbitmq import ServerUnavailable, server_program

    try:
        server_program()
    except ServerUnavailable as exc:
        skip_or_fail(exc)
    proc = subprocess.Popen(
        [str(BIN / "acnet-proto"), "sim", "--port", "0", "--dmq", "--keytab", str(kdc.keytab)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = _line_with(proc, "simulated DMQ on").split()[3]
        where = urllib.parse.urlsplit(url)
        assert (where.scheme, where.hostname, where.username) == ("amqp", "127.0.0.1", "guest")
        assert where.hostname is not None and where.port is not None
        service = "daeset/bd/dmq.fnal.gov@FNAL.GOV"
        with DMQBackend(where.hostname, where.port, auth=KerberosAuth(), service=service) as dmq:
            assert isinstance(dmq.read("M:OUTTMP"), float)
            assert dmq.write("Z:ACLTST", 44.0).ok
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(60) == 0
    with pytest.raises(OSError), socket.create_connection((where.hostname, where.port), 2):
        pass  # the broker stopped with the simulator


@pytest.mark.integration
def test_dmq_url_serves_on_that_broker_and_shows_no_password(rabbitmq: RabbitMQ) -> None:
    assert rabbitmq.password in rabbitmq.url
    proc = subprocess.Popen(
        [str(BIN / "acnet-proto"), "sim", "--port", "0", "--dmq-url", rabbitmq.url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = _line_with(proc, "simulated DMQ on")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    assert f"amqp://guest:***@127.0.0.1:{rabbitmq.port}/" in line and "--dmq-url" in line


@pytest.mark.integration
def test_sim_runs_dmq_on_a_private_broker_for_one_command() -> None:
    from acnet_proto.adapters.sim.rabbitmq import ServerUnavailable, server_program

    try:
        server_program()
    except ServerUnavailable as exc:
        skip_or_fail(exc)
    result = run("acput", "-b", "dmq", "--sim", "Z:ACLTST", "12.5", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("New : Z:ACLTST 12.5")


# ------------------------------------------------------------- Ctrl-C always stops it


def _first_reading(stream: Any) -> None:
    """Wait for ``stream``'s first reading: it is open on the server."""
    for _reading in stream.readings(timeout=30):
        return
    raise AssertionError("no reading within 30 s")


def _ready_ports(proc: subprocess.Popen[str], services: list[str]) -> dict[str, int]:
    """The port of each service, from its ready line (``simulated SERVICE on ADDRESS...``)."""
    ports: dict[str, int] = {}
    while len(ports) < len(services):
        line = _line_with(proc, "simulated ")
        service, _, rest = line.removeprefix("simulated ").partition(" on ")
        address = rest.split()[0]
        parts = urllib.parse.urlsplit(address if "://" in address else f"//{address}")
        if service in services and parts.port is not None:
            ports[service] = parts.port
    return ports


@pytest.mark.integration
def test_ctrl_c_stops_every_service_promptly_with_streams_open(
    kdc: KDC, rabbitmq: RabbitMQ, tmp_path: Path
) -> None:
    pytest.importorskip("grpc")
    pytest.importorskip("gssapi")
    import acnet_proto
    from acnet_proto.adapters.cli.serve import STOP_WITHIN
    from acnet_proto.adapters.dmq import DMQBackend
    from acnet_proto.adapters.grpc.threaded import grpc_backend
    from acnet_proto.adapters.kerberos import KerberosAuth

    proc = subprocess.Popen(
        [str(BIN / "acnet-proto"), "sim", "--port", "0", "--grpc-port", "0", "--devdb-port", "0",
         "--acl-port", "0", "--keytab", str(kdc.keytab), "--dmq-url", rabbitmq.url],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr").open("w"),  # a file: a full pipe would stall its logging
        text=True,
    )  # fmt: skip
    with contextlib.ExitStack() as clients:
        try:
            port = _ready_ports(proc, ["DPM", "DAQ gRPC", "DevDB gRPC", "ACL", "DMQ"])
            for backend in (
                clients.enter_context(acnet_proto.dpm("127.0.0.1", port["DPM"])),
                clients.enter_context(grpc_backend("127.0.0.1", port["DAQ gRPC"])),
                clients.enter_context(
                    DMQBackend("127.0.0.1", rabbitmq.port, auth=KerberosAuth(),
                               service="daeset/bd/dmq.fnal.gov@FNAL.GOV")
                ),
            ):  # fmt: skip
                stream = backend.subscribe(["M:OUTTMP@p,100"], reconnect=False)
                _first_reading(clients.enter_context(stream))
            devdb = clients.enter_context(acnet_proto.devdb("127.0.0.1", port["DevDB gRPC"]))
            assert devdb.get_device_info(["M:OUTTMP"])
            acl = clients.enter_context(socket.create_connection(("127.0.0.1", port["ACL"])))
            acl.sendall(b"GET /cgi-bin/acl.pl?acl=read+M:OUTTMP HTTP/1.1\r\nHost: sim\r\n")
        finally:
            asked = time.monotonic()
            proc.send_signal(signal.SIGINT)  # with every client still connected
            code = proc.wait(STOP_WITHIN + 30)  # slack for a loaded machine; timed below
            took = time.monotonic() - asked
    errors = (tmp_path / "stderr").read_text()
    assert code == 0, errors
    assert took < STOP_WITHIN + 3, (took, errors)
    assert "leaving" not in errors  # every server stopped: none was left behind


STUCK_STOP = r"""
import asyncio, sys, threading
from acnet_proto.adapters.cli.serve import leave, serving

async def server():
    try:
        print("serving", flush=True)
        await asyncio.Event().wait()
    finally:  # a stop that never ends, in a thread the interpreter would wait for at exit
        await asyncio.to_thread(threading.Event().wait)

leave(serving(server(), stop_within=1.0), stop_within=1.0)
"""


def test_a_server_that_does_not_stop_is_left_behind_and_named() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_STOP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _line_with(proc, "serving", within=30)
    finally:
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
        took = time.monotonic() - asked
    _, errors = proc.communicate()
    assert code == 0, errors
    assert 1.0 <= took < 1.0 + 5, took  # the bound, not forever; slack for a loaded machine
    assert "leaving the event loop" in errors and "within 1 s of Ctrl-C" in errors


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a script's background job starts


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_background_job_stops_on_sigint_or_sigterm(stop: signal.Signals) -> None:
    proc = subprocess.Popen(
        [str(BIN / "acnet-proto"), "sim", "--port", "0", "--grpc-port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,
    )
    try:
        assert _line_with(proc, "simulated DPM on", within=30)
    finally:
        proc.send_signal(stop)
        assert proc.wait(30) == 0  # a clean stop, not killed by the signal
