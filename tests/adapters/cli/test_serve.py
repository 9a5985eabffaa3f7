"""``acnet-proto sim``'s failures: one line, exit 2 for its files, 3 for a port in use; and the
DMQ it serves on a broker of its own (``--dmq``) or a given one (``--dmq-url``)."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

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


def _line_with(proc: subprocess.Popen[str], words: str, within: float = 90.0) -> str:
    """The first line ``proc`` prints that holds ``words``; fails after ``within`` seconds."""
    assert proc.stdout is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        line = proc.stdout.readline() if ready else ""
        if words in line:
            return line
        assert proc.poll() is None, f"acnet-proto sim exited {proc.returncode}"
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
