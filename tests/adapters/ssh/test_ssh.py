"""SSHClient against a real OpenSSH server, and the test KDC for its GSSAPI hops.

The servers (tests/support/servers/sshd.py) run as root with a throw-away account
whose PATH holds a fake ``acl``; every test talks to them over loopback.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acnet_proto.adapters.ssh import (
    ACCEPT_ANY,
    ACLSession,
    CommandResult,
    SSHAuthenticationError,
    SSHClient,
    SSHCommandError,
    SSHConnectionError,
    SSHError,
    SSHHop,
    SSHHostKeyError,
    SSHTimeoutError,
)
from acnet_proto.adapters.ssh import client as ssh_client
from acnet_proto.adapters.ssh.hostkeys import fingerprint
from acnet_proto.errors import ACLError, AuthenticationError, ConfigurationError
from tests.support.servers import ServerUnavailable, free_port, skip_or_fail
from tests.support.servers.kdc import KDC
from tests.support.servers.sshd import DEVICES, SSHD, Account, create_account, start_sshd

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $HOME: no test depends on the real ~/.ssh/known_hosts of whoever runs it."""
    path = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(path))
    return path


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    try:
        acct = create_account()
    except ServerUnavailable as exc:
        skip_or_fail(exc)
    try:
        yield acct
    finally:
        acct.remove()


@pytest.fixture(scope="module")
def sshd(account: Account, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHD]:
    """sshd letting ``account`` in by key or password."""
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"), account)
    except ServerUnavailable as exc:
        skip_or_fail(exc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sshd_krb(
    account: Account, kdc: KDC, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SSHD]:
    """sshd that also takes GSSAPI logins from the KDC's ``operator`` (host/localhost key)."""
    pytest.importorskip("gssapi")
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd-krb"), account, kdc)
    except ServerUnavailable as exc:
        skip_or_fail(exc)
    try:
        yield server
    finally:
        server.stop()


def key_hop(server: SSHD, **changes: Any) -> SSHHop:
    hop = SSHHop(
        server.host,
        server.port,
        server.account.name,
        "key",
        key_filename=str(server.account.key_file),
    )
    return dataclasses.replace(hop, **changes)


def password_hop(server: SSHD, **changes: Any) -> SSHHop:
    hop = SSHHop(
        server.host,
        server.port,
        server.account.name,
        "password",
        password=server.account.password,
    )
    return dataclasses.replace(hop, **changes)


def gssapi_hop(server: SSHD) -> SSHHop:
    # The Kerberos service is host/<hostname>, so name the host as its principal does.
    return SSHHop("localhost", server.port, username=server.account.name)


@pytest.fixture
def ssh(sshd: SSHD) -> Iterator[SSHClient]:
    # Connected up front, so the timeouts under test never include the handshake.
    with SSHClient(key_hop(sshd), known_hosts=sshd.known_hosts).connect() as client:
        yield client


ECHO_SERVER = """
import socketserver, sys

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)

server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server on loopback; it closes its side after the client's EOF.

    A separate process, so its threads and sockets never count as this one's.
    """
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def echo_through(port: int, payload: bytes) -> bytes:
    """Send ``payload``, half-close, and read until the far side closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


def tcp_ports_of_this_process() -> set[int]:
    """Local ports of this process's TCP sockets (from /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def open_fds() -> dict[str, str]:
    result = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            result[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return result


# --------------------------------------------------------------------------- values, no server


def test_hop_rejects_bad_fields_by_name() -> None:
    with pytest.raises(ValueError, match="hostname"):
        SSHHop("")
    with pytest.raises(ValueError, match="port"):
        SSHHop("h", 0)
    with pytest.raises(ValueError, match="port"):
        SSHHop("h", 65536)
    with pytest.raises(TypeError, match="port"):
        SSHHop("h", "22")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="port"):
        SSHHop("h", True)
    with pytest.raises(ValueError, match="auth_method"):
        SSHHop("h", auth_method="kerberos")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key_filename"):
        SSHHop("h", auth_method="key")
    with pytest.raises(ValueError, match="password"):
        SSHHop("h", auth_method="password")
    with pytest.raises(ValueError, match="username"):
        SSHHop("h", username="")


def test_hop_repr_hides_the_password() -> None:
    hop = SSHHop("h", 2222, "me", "password", password="s3cret-Pa55")
    assert "s3cret-Pa55" not in repr(hop)
    assert "s3cret-Pa55" not in str(hop)
    assert str(hop) == "me@h:2222"


def test_client_rejects_bad_arguments_before_any_io() -> None:
    with pytest.raises(ValueError, match="empty"):
        SSHClient([])
    with pytest.raises(TypeError, match="hop"):
        SSHClient([42])  # type: ignore[list-item]
    hop = SSHHop("127.0.0.1", 1, auth_method="password", password="x")
    with pytest.raises(ValueError, match="connect_timeout"):
        SSHClient(hop, connect_timeout=0)
    client = SSHClient(hop)
    with pytest.raises(ValueError, match="command"):
        client.exec("")
    with pytest.raises(ValueError, match="timeout"):
        client.exec("true", timeout=-1)
    with pytest.raises(TypeError, match="list"):
        client.exec_many("true")
    with pytest.raises(ValueError, match="local_port"):
        client.forward(-1, "localhost", 80)
    with pytest.raises(ValueError, match="acl"):
        client.acl([])
    assert not client.connected


# --------------------------------------------------------------------------- exec


def test_exec_returns_stdout_stderr_and_exit_code(ssh: SSHClient) -> None:
    result = ssh.exec("echo out; echo err >&2; exit 3")
    assert result == CommandResult("echo out; echo err >&2; exit 3", 3, "out\n", "err\n")
    assert not result.ok
    assert ssh.exec("whoami").stdout.strip() == ssh.hops[-1].username


def test_exec_check_raises_command_error(ssh: SSHClient) -> None:
    with pytest.raises(SSHCommandError) as info:
        ssh.exec("echo partial; echo broken >&2; exit 7", check=True)
    assert info.value.exit_code == 7
    assert info.value.stderr == "broken\n"
    assert info.value.stdout == "partial\n"
    assert "broken" in str(info.value)
    assert ssh.exec("true", check=True).ok


def test_exec_feeds_input_and_decodes_utf8(ssh: SSHClient) -> None:
    assert ssh.exec("tr a-z A-Z", input="hello\n").stdout == "HELLO\n"
    assert ssh.exec("printf 'caf\\303\\251'").stdout == "café"
    payload = secrets.token_bytes(1_000_000)
    digest = ssh.exec("sha256sum", input=payload, timeout=30).stdout.split()[0]
    assert digest == hashlib.sha256(payload).hexdigest()


def test_exec_input_the_command_does_not_read(ssh: SSHClient) -> None:
    # More than the channel window, to a command that exits at once.
    result = ssh.exec("echo done", input=secrets.token_bytes(5_000_000), timeout=30)
    assert result == CommandResult("echo done", 0, "done\n", "")


def test_exec_reports_death_by_signal_as_minus_one(ssh: SSHClient) -> None:
    assert ssh.exec("kill -9 $$").exit_code == -1


def test_exec_reads_output_larger_than_the_channel_window(ssh: SSHClient) -> None:
    result = ssh.exec("head -c 5000000 /dev/zero | tr '\\0' x; head -c 300000 /dev/zero >&2")
    assert result.stdout == "x" * 5_000_000
    assert len(result.stderr) == 300_000


def test_exec_timeout_raises_and_client_stays_usable(ssh: SSHClient) -> None:
    with pytest.raises(SSHTimeoutError, match="sleep 30"):
        ssh.exec("sleep 30", timeout=0.5)
    assert ssh.exec("echo still here", timeout=10).stdout == "still here\n"


def test_exec_many_runs_in_order(ssh: SSHClient, sshd: SSHD) -> None:
    results = ssh.exec_many(["echo one", "exit 2", "echo three"], timeout=10)
    assert [(r.stdout, r.exit_code) for r in results] == [("one\n", 0), ("", 2), ("three\n", 0)]
    marker = f"exec-many-{secrets.token_hex(4)}"
    with pytest.raises(SSHCommandError) as info:
        ssh.exec_many(["false", f"touch {marker}"], check=True)
    assert info.value.command == "false"
    assert not (sshd.account.home / marker).exists()


# --------------------------------------------------------------------------- exec_stream


def test_exec_stream_yields_lines_as_they_arrive(ssh: SSHClient, sshd: SSHD) -> None:
    flag = f"stream-flag-{secrets.token_hex(4)}"
    lines = ssh.exec_stream(f"echo first; while [ ! -e {flag} ]; do sleep 0.02; done; echo second")
    assert next(lines) == "first"
    # The command is still waiting: the second line cannot exist until the flag does.
    ssh.exec(f"touch {flag}", check=True)
    assert list(lines) == ["second"]
    assert (sshd.account.home / flag).exists()


def test_exec_stream_keeps_a_last_line_without_newline(ssh: SSHClient) -> None:
    assert list(ssh.exec_stream("printf 'a\\nb\\n\\nc'")) == ["a", "b", "", "c"]


def test_exec_stream_raises_after_output_on_failure(ssh: SSHClient) -> None:
    seen = []
    with pytest.raises(SSHCommandError) as info:
        for line in ssh.exec_stream("echo a; echo b; echo oops >&2; exit 4"):
            seen.append(line)
    assert seen == ["a", "b"]
    assert info.value.exit_code == 4
    assert info.value.stderr == "oops\n"


def test_exec_stream_timeout_and_early_close(ssh: SSHClient) -> None:
    lines = ssh.exec_stream("echo ready; sleep 30", timeout=1)
    assert next(lines) == "ready"
    with pytest.raises(SSHTimeoutError):
        next(lines)
    endless = ssh.exec_stream("yes")
    assert next(endless) == "y"
    endless.close()
    assert ssh.exec("echo after").stdout == "after\n"


def test_closing_streams_mid_output_keeps_the_connection(sshd: SSHD) -> None:
    # Closing a channel while data poured in raced paramiko's own thread,
    # which wrote to the channel's select() pipe after close had freed it and
    # killed the transport, most often on a young connection.
    for _ in range(25):
        with SSHClient(key_hop(sshd), known_hosts=sshd.known_hosts) as client:
            endless = client.exec_stream("yes")
            assert next(endless) == "y"
            endless.close()
            assert client.exec("echo after").stdout == "after\n"


# --------------------------------------------------------------------------- forward


def test_forward_carries_connections_and_half_closes(ssh: SSHClient, echo_port: int) -> None:
    with ssh.forward(0, "127.0.0.1", echo_port) as tunnel:
        assert tunnel.active and tunnel.local_port > 0
        assert echo_through(tunnel.local_port, b"ping") == b"ping"
        payload = secrets.token_bytes(3_000_000)
        results: list[bytes] = []
        workers = [
            threading.Thread(
                target=lambda: results.append(echo_through(tunnel.local_port, payload))
            )
            for _ in range(3)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert results == [payload] * 3
    assert not tunnel.active
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", tunnel.local_port), timeout=5)


def test_forward_to_a_closed_port_drops_the_connection(ssh: SSHClient) -> None:
    with ssh.forward(0, "127.0.0.1", free_port()) as tunnel:
        with socket.create_connection(("127.0.0.1", tunnel.local_port), timeout=10) as sock:
            assert sock.recv(1) == b""  # the server refused the direct-tcpip channel
        # The tunnel still serves later connections.
        assert tunnel.active


# --------------------------------------------------------------------------- sftp


def test_sftp_put_and_get(ssh: SSHClient, tmp_path: Path) -> None:
    local = tmp_path / "up.bin"
    local.write_bytes(secrets.token_bytes(200_000))
    name = f"sftp-{secrets.token_hex(4)}.bin"
    with ssh.sftp(timeout=10) as sftp:
        sftp.put(str(local), name)
        assert name in sftp.listdir(".")
        assert sftp.stat(name).st_size == 200_000
        back = tmp_path / "down.bin"
        sftp.get(name, str(back))
        assert back.read_bytes() == local.read_bytes()
        # What SFTP wrote is what the shell sees.
        digest = ssh.exec(f"sha256sum {name}").stdout.split()[0]
        assert digest == hashlib.sha256(local.read_bytes()).hexdigest()
        sftp.remove(name)
        with pytest.raises(FileNotFoundError):
            sftp.stat(name)


# --------------------------------------------------------------------------- remote_process


def test_remote_process_round_trip(ssh: SSHClient) -> None:
    with ssh.remote_process("cat", timeout=10) as proc:
        assert proc.alive
        proc.send_line("hello")
        assert proc.read_until(b"\n") == b"hello"
        proc.send_bytes(b"one;two;three;")
        assert [proc.read_until(b";") for _ in range(3)] == [b"one", b"two", b"three"]
        with pytest.raises(SSHTimeoutError):
            proc.read_until(b"never", timeout=0.3)
    assert not proc.alive
    with pytest.raises(SSHError, match="closed"):
        proc.send_line("late")


def test_remote_process_end_before_marker(ssh: SSHClient) -> None:
    with ssh.remote_process("echo bye; echo gone >&2") as proc:
        with pytest.raises(SSHError, match="ended") as info:
            proc.read_until(b"never")
        assert "gone" in str(info.value)
    with ssh.remote_process("echo a; echo b") as proc:
        # read_for returns as soon as the output ends, with everything unread.
        assert proc.read_for(20) == b"a\nb\n"


# --------------------------------------------------------------------------- acl


def test_acl_session_reads_devices(ssh: SSHClient) -> None:
    with ssh.acl_session(timeout=10) as acl:
        assert isinstance(acl, ACLSession)
        assert acl.send("read M:OUTTMP") == f"M:OUTTMP = {DEVICES['M:OUTTMP']}"
        assert acl.send("read M:OUTTMP; read G:AMANDA").splitlines() == [
            f"M:OUTTMP = {DEVICES['M:OUTTMP']}",
            f"G:AMANDA = {DEVICES['G:AMANDA']}",
        ]
        error = acl.send("read Z:NOTFND")
        assert error == "Invalid device name (Z:NOTFND) in read command - DIO_NO_SUCH"
        with pytest.raises(ValueError, match="line break"):
            acl.send("read M:OUTTMP\nread G:AMANDA")
        assert acl.send("read Z:ACLTST") == f"Z:ACLTST = {DEVICES['Z:ACLTST']}"
    assert acl.closed
    with pytest.raises(ACLError, match="closed"):
        acl.send("read M:OUTTMP")


def test_acl_sessions_share_one_client(ssh: SSHClient) -> None:
    with ssh.acl_session() as first, ssh.acl_session() as second:
        assert first.send("read G:AMANDA") == f"G:AMANDA = {DEVICES['G:AMANDA']}"
        assert second.send("read M:OUTTMP") == f"M:OUTTMP = {DEVICES['M:OUTTMP']}"
        assert first.send("read Z:ACLTST") == f"Z:ACLTST = {DEVICES['Z:ACLTST']}"


def test_acl_session_timeout_closes_the_session(ssh: SSHClient) -> None:
    acl = ssh.acl_session(timeout=10)
    with pytest.raises(ACLError, match="wait 30"):
        acl.send("wait 30", timeout=0.5)
    assert acl.closed
    with pytest.raises(ACLError, match="closed"):
        acl.send("read M:OUTTMP")


def test_acl_one_shot_scripts(ssh: SSHClient) -> None:
    assert ssh.acl("read M:OUTTMP") == f"M:OUTTMP = {DEVICES['M:OUTTMP']}"
    assert ssh.acl(["read M:OUTTMP", "read G:AMANDA; read Z:ACLTST"]).splitlines() == [
        f"{name} = {DEVICES[name]}" for name in ("M:OUTTMP", "G:AMANDA", "Z:ACLTST")
    ]
    with pytest.raises(ACLError, match="DIO_NO_SUCH"):
        ssh.acl(["read M:OUTTMP", "read Z:NOTFND"])
    # The script files were private temporaries, and are gone.
    leftovers = ssh.exec("find /tmp -maxdepth 1 -name 'acnet_proto_acl_*' -user \"$(id -u)\"")
    assert leftovers.stdout == ""


# --------------------------------------------------------------------------- hops and logins


def test_password_login(sshd: SSHD) -> None:
    with SSHClient(password_hop(sshd), known_hosts=sshd.known_hosts) as client:
        assert client.exec("whoami").stdout.strip() == sshd.account.name
        assert client.connected
    assert not client.connected


def test_two_hops_reach_the_target_through_the_first(sshd: SSHD, echo_port: int) -> None:
    with SSHClient(key_hop(sshd)) as direct:
        client_port = int(direct.exec("echo $SSH_CONNECTION").stdout.split()[1])
        # Control: a one-hop session comes from one of this process's own sockets.
        assert client_port in tcp_ports_of_this_process()
    hops = [password_hop(sshd), key_hop(sshd)]
    with SSHClient(hops, known_hosts=sshd.known_hosts) as client:
        client_port = int(client.exec("echo $SSH_CONNECTION").stdout.split()[1])
        # The target saw a connection that sshd (hop 1) made, not this process.
        assert client_port not in tcp_ports_of_this_process()
        with client.forward(0, "127.0.0.1", echo_port) as tunnel:
            assert echo_through(tunnel.local_port, b"via two hops") == b"via two hops"
        with client.acl_session() as acl:
            assert acl.send("read M:OUTTMP") == f"M:OUTTMP = {DEVICES['M:OUTTMP']}"


def test_wrong_password_is_an_auth_error(sshd: SSHD) -> None:
    hop = password_hop(sshd, password="not-the-password")
    with pytest.raises(SSHAuthenticationError) as info:
        SSHClient(hop).exec("true")
    assert isinstance(info.value, SSHConnectionError)
    assert isinstance(info.value, AuthenticationError)
    assert info.value.hop == hop
    assert "not-the-password" not in str(info.value)


def test_unauthorised_or_missing_key_is_an_auth_error(sshd: SSHD, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
        check=True,
        timeout=20,
    )
    with pytest.raises(SSHAuthenticationError, match="refused"):
        SSHClient(key_hop(sshd, key_filename=str(stranger))).connect()
    missing = tmp_path / "no-such-key"
    with pytest.raises(SSHAuthenticationError, match="no-such-key"):
        SSHClient(key_hop(sshd, key_filename=str(missing))).connect()


def test_second_hop_failure_names_that_hop(sshd: SSHD) -> None:
    dead = key_hop(sshd, port=free_port())
    with pytest.raises(SSHConnectionError, match="through") as info:
        SSHClient([password_hop(sshd), dead]).connect()
    assert info.value.hop == dead
    with pytest.raises(SSHAuthenticationError) as auth_info:
        SSHClient([password_hop(sshd, password="wrong"), key_hop(sshd)]).connect()
    assert auth_info.value.hop is not None and auth_info.value.hop.password == "wrong"


def test_unreachable_hosts_are_connection_errors() -> None:
    closed = SSHHop("127.0.0.1", free_port(), auth_method="password", password="x")
    with pytest.raises(SSHConnectionError, match=f"127.0.0.1:{closed.port}") as info:
        SSHClient(closed, connect_timeout=5).exec("true")
    assert info.value.hop == closed
    unknown = SSHHop("no-such-host.invalid", auth_method="password", password="x")
    with pytest.raises(SSHConnectionError, match=r"no-such-host\.invalid"):
        SSHClient(unknown, connect_timeout=5).connect()


def test_silent_server_times_out_as_connection_error() -> None:
    # Accepts TCP (in the backlog) but never sends an SSH banner.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        hop = SSHHop("127.0.0.1", silent.getsockname()[1], auth_method="password", password="x")
        with pytest.raises(SSHConnectionError, match="handshake"):
            SSHClient(hop, connect_timeout=0.5).connect()


# --------------------------------------------------------------------------- host keys


def host_key(server: SSHD) -> tuple[str, str]:
    """The server's host key as known_hosts writes it: (type, base64)."""
    key_type, data = (server.dir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    return key_type, data


def new_public_key(tmp_path: Path, key_type: str = "ed25519") -> tuple[str, str]:
    """A fresh key that is not the server's: (type, base64)."""
    path = tmp_path / f"other-{key_type}-{secrets.token_hex(4)}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(path)], check=True, timeout=20
    )
    key_type, data = path.with_suffix(".pub").read_text().split()[:2]
    return key_type, data


def user_known_hosts(home: Path, *lines: str) -> Path:
    path = home / ".ssh" / "known_hosts"
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_a_changed_key_in_the_user_file_is_refused_before_logging_in(
    sshd: SSHD, home: Path, tmp_path: Path
) -> None:
    name = f"[127.0.0.1]:{sshd.port}"
    impostor = new_public_key(tmp_path)
    path = user_known_hosts(home, "# mine", f"{name} {impostor[0]} {impostor[1]}")
    # A wrong password: had it been tried first, this would be an authentication error.
    hop = password_hop(sshd, password="not-the-password")
    with pytest.raises(SSHHostKeyError) as info:
        SSHClient(hop).connect()
    error = info.value
    offered = fingerprint(base64.b64decode(host_key(sshd)[1]))
    assert (error.host, error.key_type, error.fingerprint) == (name, "ssh-ed25519", offered)
    assert (error.known_hosts, error.lines, error.reason, error.hop) == (path, (2,), "changed", hop)
    assert not isinstance(error, AuthenticationError)
    message = str(error)
    for part in ("REMOTE HOST IDENTIFICATION HAS CHANGED", name, offered, f"{path} line 2"):
        assert part in message
    assert "ssh-keygen -R" in message and "not-the-password" not in message


def test_a_host_known_by_another_key_type_is_refused(
    sshd: SSHD, home: Path, tmp_path: Path
) -> None:
    # The server has only an ed25519 key; the file knows it by an ECDSA one.
    ecdsa = new_public_key(tmp_path, "ecdsa")
    user_known_hosts(home, f"[127.0.0.1]:{sshd.port} {ecdsa[0]} {ecdsa[1]}")
    with pytest.raises(SSHHostKeyError, match="CHANGED") as info:
        SSHClient(password_hop(sshd)).connect()
    assert info.value.reason == "changed"


def test_the_listed_key_is_accepted_plain_or_hashed(sshd: SSHD, home: Path, tmp_path: Path) -> None:
    key_type, data = host_key(sshd)
    old = new_public_key(tmp_path)
    path = user_known_hosts(
        home,
        f"[127.0.0.1]:{sshd.port} {old[0]} {old[1]}",  # an older key of the same type
        f"[127.0.0.1]:{sshd.port} {key_type} {data}",
        f"127.0.0.1 {old[0]} {old[1]}",  # port 22's entry is another host's
    )
    with SSHClient(password_hop(sshd)) as client:
        assert client.exec("whoami").stdout.strip() == sshd.account.name
    subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True)
    assert f"127.0.0.1]:{sshd.port}" not in path.read_text()
    with SSHClient(password_hop(sshd)) as client:
        assert client.exec("whoami").stdout.strip() == sshd.account.name
    # Hashed, the changed key is still recognised as a change.
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(SSHHostKeyError, match="CHANGED"):
        SSHClient(password_hop(sshd)).connect()


def test_a_revoked_key_is_refused(sshd: SSHD, home: Path) -> None:
    key_type, data = host_key(sshd)
    user_known_hosts(
        home, f"[127.0.0.1]:{sshd.port} {key_type} {data}", f"@revoked * {key_type} {data}"
    )
    with pytest.raises(SSHHostKeyError, match="@revoked") as info:
        SSHClient(password_hop(sshd)).connect()
    assert (info.value.reason, info.value.lines) == ("revoked", (2,))


def test_without_a_user_file_any_key_is_accepted_quietly(
    sshd: SSHD, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert not (home / ".ssh" / "known_hosts").exists()
    with caplog.at_level(logging.WARNING), SSHClient(password_hop(sshd)) as client:
        assert client.exec("true").ok
    assert not [r for r in caplog.records if r.name == ssh_client.__name__]


def test_a_host_the_user_file_does_not_list_is_accepted_with_one_warning(
    sshd: SSHD,
    home: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ssh_client, "_warned_unlisted", set())
    other = new_public_key(tmp_path)
    path = user_known_hosts(home, f"elsewhere.example {other[0]} {other[1]}")
    before = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger=ssh_client.__name__):
        for _ in range(2):
            with SSHClient(password_hop(sshd)) as client:
                assert client.exec("true").ok
    warnings = [r.getMessage() for r in caplog.records if r.name == ssh_client.__name__]
    assert len(warnings) == 1
    offered = fingerprint(base64.b64decode(host_key(sshd)[1]))
    assert f"[127.0.0.1]:{sshd.port}" in warnings[0] and offered in warnings[0]
    assert path.read_bytes() == before  # never written


def test_an_explicit_file_also_refuses_hosts_it_does_not_list(sshd: SSHD, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(SSHHostKeyError, match="is not in") as info:
        SSHClient(password_hop(sshd), known_hosts=empty).connect()
    assert (info.value.reason, info.value.lines, info.value.known_hosts) == ("unlisted", (), empty)
    impostor = new_public_key(tmp_path)
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {impostor[0]} {impostor[1]}\n")
    with pytest.raises(SSHHostKeyError, match="CHANGED"):
        SSHClient(password_hop(sshd), known_hosts=wrong).connect()


def test_accept_any_connects_despite_a_changed_key(sshd: SSHD, home: Path, tmp_path: Path) -> None:
    impostor = new_public_key(tmp_path)
    user_known_hosts(home, f"[127.0.0.1]:{sshd.port} {impostor[0]} {impostor[1]}")
    with SSHClient(password_hop(sshd), known_hosts=ACCEPT_ANY) as client:
        assert client.exec("whoami").stdout.strip() == sshd.account.name


def test_a_known_hosts_file_that_cannot_be_read_is_a_configuration_error(
    home: Path, tmp_path: Path
) -> None:
    hop = SSHHop("127.0.0.1", free_port(), auth_method="password", password="x")
    missing = tmp_path / "no-such-file"
    with pytest.raises(ConfigurationError, match="no-such-file"):
        SSHClient(hop, known_hosts=missing)
    (home / ".ssh" / "known_hosts").mkdir(parents=True)  # there, but not a file
    with pytest.raises(ConfigurationError, match=r"\.ssh/known_hosts.*known_hosts=False"):
        SSHClient(hop)
    assert not SSHClient(hop, known_hosts=False).connected


def test_close_then_reuse_reconnects(ssh: SSHClient) -> None:
    assert ssh.exec("echo 1").stdout == "1\n"
    ssh.close()
    assert not ssh.connected
    assert ssh.exec("echo 2").stdout == "2\n"


def test_close_leaves_no_threads_or_descriptors(sshd: SSHD, echo_port: int, tmp_path: Path) -> None:
    def workout() -> None:
        client = SSHClient([password_hop(sshd), key_hop(sshd)], known_hosts=sshd.known_hosts)
        client.exec("echo hi", timeout=10)
        list(client.exec_stream("echo a; echo b", timeout=10))
        with pytest.raises(SSHTimeoutError):
            client.exec("sleep 30", timeout=0.3)
        tunnel = client.forward(0, "127.0.0.1", echo_port)
        assert echo_through(tunnel.local_port, b"x") == b"x"
        # A connection left open through the tunnel: close() must end it too.
        lingering = socket.create_connection(("127.0.0.1", tunnel.local_port), timeout=10)
        lingering.sendall(b"y")
        assert lingering.recv(1) == b"y"
        sftp = client.sftp()
        sftp.listdir(".")
        proc = client.remote_process("cat")  # left open: close() must end it
        proc.send_line("z")
        assert proc.read_until(b"\n") == b"z"
        acl = client.acl_session()
        acl.send("read M:OUTTMP")
        client.close()
        assert lingering.recv(1) == b""
        lingering.close()

    workout()  # first use loads modules and caches
    threads_before, fds_before = set(threading.enumerate()), open_fds()
    workout()
    assert set(threading.enumerate()) == threads_before
    assert open_fds() == fds_before


# --------------------------------------------------------------------------- GSSAPI


def test_gssapi_login_on_every_hop(sshd_krb: SSHD) -> None:
    with SSHClient(gssapi_hop(sshd_krb)) as client:
        assert client.exec("whoami").stdout.strip() == sshd_krb.account.name
    with SSHClient([gssapi_hop(sshd_krb), gssapi_hop(sshd_krb)]) as client:
        assert client.acl("read M:OUTTMP") == f"M:OUTTMP = {DEVICES['M:OUTTMP']}"
    log = sshd_krb.log.read_text(errors="replace")
    assert log.count(f"Accepted gssapi-with-mic for {sshd_krb.account.name}") >= 3


def test_gssapi_refuses_a_principal_the_account_does_not_list(
    sshd_krb: SSHD, kdc: KDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{kdc.kinit('outsider')}")
    with pytest.raises(SSHAuthenticationError, match="gssapi"):
        SSHClient(gssapi_hop(sshd_krb)).connect()


def test_gssapi_needs_a_ticket_up_front(
    sshd_krb: SSHD, kdc: KDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    from acnet_proto.adapters.kerberos import KerberosAuth

    outsider = KerberosAuth(ccache=kdc.kinit("outsider"))
    with pytest.raises(AuthenticationError, match="default credential cache"):
        SSHClient(gssapi_hop(sshd_krb), auth=outsider)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{kdc.dir / 'no-such-ccache'}")
    with pytest.raises(AuthenticationError, match="kinit"):
        SSHClient(gssapi_hop(sshd_krb))
