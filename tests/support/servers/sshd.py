"""A throw-away OpenSSH server on a loopback port, with its own user and a fake ``acl``.

:func:`create_account` adds a local user (random name and password, a home in
a fresh temporary directory, an ed25519 client key in ``authorized_keys``, and
a fake ``acl`` in ``~/bin``). :func:`start_sshd` runs ``/usr/sbin/sshd -D -e``
with its own config and host key, letting only that user in, by key or
password, and by Kerberos (GSSAPI) too when given the test KDC. Both need
root: sshd must switch to the user, and useradd writes /etc/passwd.

The fake ``acl`` (:data:`FAKE_ACL`) stands in for ACNET's ACL interpreter.
It knows a few devices (:data:`DEVICES`) and three commands, ``;``-separated:

* ``read NAME`` prints ``NAME = VALUE UNITS`` (text devices: ``NAME = text``);
  an unknown device prints ``Invalid device name (NAME) in read command -
  DIO_NO_SUCH`` and abandons the rest of the script, as real ACL does;
* ``wait SECONDS`` sleeps (to test timeouts);
* anything else prints ``! Unknown command: ...`` and abandons the script.

``acl FILE`` runs a script file and exits 1 if a command failed, else 0.
Plain ``acl`` is interactive: it prints the prompt ``"\\nACL> "``, then, for
each line read, echoes it, runs it and prompts again; it exits at end of
input or on ``exit``/``quit``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import (
    ServerUnavailable,
    die_with_parent,
    find_program,
    free_port,
    log_tail,
    stop_process_group,
)
from .kdc import KDC

START_TIMEOUT = 15.0
CMD_TIMEOUT = 20.0
# The host principal sshd accepts GSSAPI logins for; clients name the host "localhost".
HOST_SERVICE = "host/localhost"

DEVICES = {
    "M:OUTTMP": "41.7 DegF",
    "G:AMANDA": "Hello from ACNET",
    "Z:ACLTST": "45.0 mm",
}

FAKE_ACL = '''\
#!{python}
"""Fake ACNET `acl` for the acnet-proto SSH tests (see tests/support/servers/sshd.py)."""
import sys
import time

DEVICES = {devices!r}


def run(line):
    """Run one line of ;-separated commands; False at the first failure."""
    for command in filter(None, (part.strip() for part in line.split(";"))):
        verb, _, arg = command.partition(" ")
        arg = arg.strip()
        if verb == "read" and arg in DEVICES:
            print(f"{{arg}} = {{DEVICES[arg]}}")
        elif verb == "read":
            print(f"Invalid device name ({{arg}}) in read command - DIO_NO_SUCH")
            return False
        elif verb == "wait":
            time.sleep(float(arg))
        else:
            print(f"! Unknown command: {{command}}")
            return False
    return True


def interactive():
    while True:
        sys.stdout.write("\\nACL> ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line or line.strip() in ("exit", "quit"):
            return 0
        print(line.rstrip("\\n"))
        run(line)


def script(path):
    with open(path) as f:
        for line in f:
            if not run(line):
                return 1
    return 0


sys.exit(script(sys.argv[1]) if len(sys.argv) > 1 else interactive())
'''

SSHD_CONFIG = """\
ListenAddress 127.0.0.1:{port}
HostKey {dir}/ssh_host_ed25519_key
PidFile {dir}/sshd.pid
UsePAM no
StrictModes no
AllowUsers {user}
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
GSSAPIAuthentication {gssapi}
GSSAPIStrictAcceptorCheck no
AllowTcpForwarding yes
MaxSessions 50
Subsystem sftp internal-sftp
# sshd gives sessions a fixed PATH; put the fake acl first.
SetEnv PATH={home}/bin:/usr/local/bin:/usr/bin:/bin
LogLevel VERBOSE
"""


def _run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
    res = subprocess.run(
        args,
        input=input,
        env=env,
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ServerUnavailable("the sshd fixture must run as root (useradd, sshd)")


@dataclass
class Account:
    """A local user that exists only for a test session."""

    name: str
    password: str
    uid: int
    root: Path  # temporary directory holding home and client key
    home: Path
    key_file: Path  # the client's private key (root's, mode 0600)

    def remove(self) -> None:
        _kill_processes_of(self.uid)
        # --force: a killed process may linger as a zombie until init reaps it, and
        # userdel counts zombies as the user's.
        _run(find_program("userdel"), "--force", self.name)
        shutil.rmtree(self.root, ignore_errors=True)


def _kill_processes_of(uid: int) -> None:
    """SIGKILL what this account still runs (e.g. a `sleep` whose channel timed out).

    Every process of the throw-away uid was started by these tests, through sshd.
    """
    for _ in range(50):
        pids = [pid for pid in _live_pids() if _owner(pid) == uid]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    raise RuntimeError(f"processes of uid {uid} would not die")


def _live_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # The state follows the parenthesised command name; Z is a zombie (already dead).
                if (entry / "stat").read_text().rpartition(")")[2].split()[0] != "Z":
                    pids.append(int(entry.name))
    return pids


def _owner(pid: int) -> int | None:
    try:
        return Path(f"/proc/{pid}").stat().st_uid
    except OSError:
        return None


def create_account() -> Account:
    """Add a user with a random password, a client key and the fake acl on its PATH."""
    _require_root()
    useradd, chpasswd, keygen = (find_program(p) for p in ("useradd", "chpasswd", "ssh-keygen"))
    find_program("userdel")
    name = f"acnt{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    # Not under pytest's tmp dir: that is root-only (0700), and the user must reach its home.
    root = Path(tempfile.mkdtemp(prefix="acnet-proto-ssh-"))
    root.chmod(0o711)
    home = root / "home"
    try:
        _run(
            useradd,
            "--home-dir",
            str(home),
            "--create-home",
            "--shell",
            "/bin/sh",
            "--user-group",
            name,
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    entry = pwd.getpwnam(name)
    account = Account(name, password, entry.pw_uid, root, home, root / "client_key")
    try:
        _run(chpasswd, input=f"{name}:{password}\n")
        _run(
            keygen,
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "acnet-proto-test",
            "-f",
            str(account.key_file),
        )
        ssh_dir, bin_dir = home / ".ssh", home / "bin"
        ssh_dir.mkdir()
        bin_dir.mkdir()
        shutil.copy(account.key_file.with_suffix(".pub"), ssh_dir / "authorized_keys")
        python = shutil.which("python3", path="/usr/bin:/bin")
        if python is None:
            raise ServerUnavailable("/usr/bin/python3 is needed for the fake acl")
        acl = bin_dir / "acl"
        acl.write_text(FAKE_ACL.format(python=python, devices=DEVICES))
        acl.chmod(0o755)
        for path in (home, ssh_dir, bin_dir, ssh_dir / "authorized_keys", acl):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    except BaseException:
        account.remove()
        raise
    return account


@dataclass
class SSHD:
    host: str
    port: int
    dir: Path
    account: Account
    known_hosts: Path  # an OpenSSH known_hosts file naming this server's host key
    gssapi: bool
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.dir / "sshd.log"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)
            self.proc = None


def start_sshd(workdir: Path, account: Account, kdc: KDC | None = None) -> SSHD:
    """Run sshd for ``account`` on a free loopback port; with ``kdc``, GSSAPI too.

    With a KDC, ``host/localhost`` gets a key in a keytab of sshd's own, and the
    account's ``~/.k5login`` lets the KDC's ``operator`` in.
    """
    _require_root()
    sshd, keygen = find_program("sshd"), find_program("ssh-keygen")
    # Debian's service unit creates this privilege-separation directory; sshd -D needs it.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    _run(keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / "ssh_host_ed25519_key"))
    host_key = (workdir / "ssh_host_ed25519_key.pub").read_text().split()
    port = free_port()
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")

    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if kdc is not None:
        keytab = workdir / "sshd.keytab"
        _add_host_principal(kdc, keytab)
        k5login = account.home / ".k5login"
        k5login.write_text(f"{kdc.principal('operator')}\n")
        os.chown(k5login, account.uid, -1)
        env.update(kdc.env_vars())
        env["KRB5_KTNAME"] = f"FILE:{keytab}"

    config = workdir / "sshd_config"
    config.write_text(
        SSHD_CONFIG.format(
            port=port,
            dir=workdir,
            user=account.name,
            home=account.home,
            gssapi="yes" if kdc is not None else "no",
        )
    )
    _run(sshd, "-t", "-f", str(config), env=env)

    server = SSHD("127.0.0.1", port, workdir, account, known_hosts, kdc is not None)
    with server.log.open("wb") as out:
        # sshd re-executes itself, so it must be started by absolute path.
        server.proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    try:
        _wait_listening(server)
    except BaseException:
        server.stop()
        raise
    return server


def _add_host_principal(kdc: KDC, keytab: Path) -> None:
    try:
        kdc.kadmin(f"addprinc -randkey {HOST_SERVICE}")
    except RuntimeError as exc:
        if "already exists" not in str(exc):
            raise
    # ktadd re-randomises the key, so a keytab written here is always current.
    kdc.kadmin(f"ktadd -k {keytab} {HOST_SERVICE}")


def _wait_listening(server: SSHD) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert server.proc is not None
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"sshd exited with {server.proc.returncode}:\n{log_tail(server.log)}"
            )
        # sshd logs this line once its socket listens.
        if f"Server listening on 127.0.0.1 port {server.port}" in server.log.read_text(
            errors="replace"
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd not listening after {START_TIMEOUT}s:\n{log_tail(server.log)}")
