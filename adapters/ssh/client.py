"""The SSH client: :class:`SSHHop`, :class:`SSHClient` and what it returns.

A client is a chain of hops. The first is reached over TCP; each later one
through a ``direct-tcpip`` channel of the hop before it, so jump hosts never
see the inner sessions' plaintext. Each hop logs in on its own: GSSAPI
(Kerberos, the default), a private key, or a password. The chain is built on
first use and rebuilt by the next call after it breaks; :meth:`SSHClient.close`
ends it and everything opened through it.

Host keys are checked before any credential is sent, against the user's
OpenSSH known_hosts (``~/.ssh/known_hosts``, under ``$HOME``) when it exists,
or against a file given as ``known_hosts``; ``known_hosts=False`` accepts any
key, as pacsys does. The rules are in :mod:`~acnet_proto.adapters.ssh.hostkeys`.

Needs the ``ssh`` extra (paramiko); GSSAPI hops also need the ``krb`` extra
(gssapi). An :class:`SSHClient` may be shared between threads (each call uses
its own channel); a :class:`RemoteProcess` or :class:`ACLSession` may not.
The client creates tunnels and processes, so it imports their modules;
they do not import it.
"""

from __future__ import annotations

import codecs
import contextlib
import getpass
import logging
import os
import shlex
import socket
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import paramiko
from paramiko.pkey import UnknownKeyType  # paramiko exports it, but its stubs do not
from paramiko.ssh_gss import GSS_EXCEPTIONS

from acnet_proto.adapters.ssh.channel import (
    JOIN_TIMEOUT,
    Tail,
    close_channel,
    deadline_after,
    exit_status,
    feed,
    next_chunk,
    request,
    start_command,
    time_left,
)
from acnet_proto.adapters.ssh.errors import (
    STDERR_TAIL,
    SSHAuthenticationError,
    SSHCommandError,
    SSHConnectionError,
    SSHError,
    SSHHostKeyError,
    SSHTimeoutError,
)
from acnet_proto.adapters.ssh.hostkeys import (
    Checking,
    HostKeyPolicy,
    KnownHost,
    KnownHostsArg,
    Verdict,
    fingerprint,
    host_key_policy,
    host_pattern,
    judge,
    listed_types,
    parse_known_hosts,
    preferred_algorithms,
    refusal_message,
)
from acnet_proto.adapters.ssh.process import ACLSession, RemoteProcess
from acnet_proto.adapters.ssh.tunnel import Tunnel
from acnet_proto.errors import ACLError, AuthenticationError, ConfigurationError

__all__ = ["CommandResult", "SFTPSession", "SSHClient", "SSHHop"]

log = logging.getLogger(__name__)

AuthMethod = Literal["gssapi", "key", "password"]
_AUTH_METHODS = ("gssapi", "key", "password")
KEEPALIVE_INTERVAL = 30  # seconds; keeps idle sessions through stateful firewalls
ACL_TIMEOUT = 30.0
# Written to a private temp file (mktemp: 0600, O_EXCL) rather than a guessable name, and
# on one line with no newlines inside quotes, so a csh login shell can start it too.
_ACL_RUNNER = "sh -c " + shlex.quote(
    "f=$(mktemp --suffix=.acl /tmp/acnet_proto_acl_XXXXXXXX) || exit 125; "
    'cat > "$f" && acl "$f"; status=$?; rm -f "$f"; exit $status'
)

SFTPSession = paramiko.SFTPClient
"""What :meth:`SSHClient.sftp` returns: paramiko's client (``get``, ``put``,
``open``, ``listdir``, ``stat``, ``remove``...; a context manager)."""


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class SSHHop:
    """One SSH server in the chain, and how to log in to it.

    ``username`` defaults to the Kerberos principal's name for GSSAPI hops and
    to the local user otherwise. ``key_filename`` (an unencrypted RSA, ECDSA or
    Ed25519 private key) is required for ``auth_method="key"``, ``password``
    for ``"password"``; the password never appears in a repr.
    ``delegate_credentials`` forwards the Kerberos ticket to a GSSAPI hop, so
    commands run there (``acl`` settings, say) can use it. GSSAPI asks for
    the service ``host/<hostname>``, so name a GSSAPI hop as its Kerberos
    principal does (a name, not an address).
    """

    hostname: str
    port: int = 22
    username: str | None = None
    auth_method: AuthMethod = "gssapi"
    key_filename: str | None = None
    password: str | None = field(default=None, repr=False)
    delegate_credentials: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.hostname, str) or not self.hostname.strip():
            raise ValueError(f"SSHHop hostname must be a non-empty str, got {self.hostname!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise TypeError(f"SSHHop port must be an int, got {type(self.port).__name__}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"SSHHop port must be 1-65535, got {self.port}")
        if self.username is not None and (not isinstance(self.username, str) or not self.username):
            raise ValueError(
                f"SSHHop username must be a non-empty str or None, got {self.username!r}"
            )
        if self.auth_method not in _AUTH_METHODS:
            raise ValueError(
                f"SSHHop auth_method must be one of {', '.join(_AUTH_METHODS)}, "
                f"got {self.auth_method!r}"
            )
        if self.auth_method == "key" and not self.key_filename:
            raise ValueError("SSHHop auth_method='key' needs key_filename")
        if self.auth_method == "password" and not self.password:
            raise ValueError("SSHHop auth_method='password' needs a password")

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{user}{self.hostname}:{self.port}"


HopSpec = str | SSHHop


@dataclass(frozen=True)
class CommandResult:
    """What a remote command printed and how it exited (-1: killed by a signal)."""

    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


# --------------------------------------------------------------------------- client


def _as_hops(hops: HopSpec | Sequence[HopSpec]) -> list[SSHHop]:
    if isinstance(hops, str | SSHHop):
        hops = [hops]
    if not isinstance(hops, Sequence):
        raise TypeError(f"hops must be a hostname, an SSHHop or a list of them, got {hops!r}")
    result = []
    for hop in hops:
        if isinstance(hop, str):
            result.append(SSHHop(hop))
        elif isinstance(hop, SSHHop):
            result.append(hop)
        else:
            raise TypeError(f"each hop must be a hostname or an SSHHop, got {hop!r}")
    if not result:
        raise ValueError("hops is empty: name at least one host")
    return result


def _check_command(command: object) -> None:
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"command must be a non-empty str, got {command!r}")


def _load_key(hop: SSHHop) -> paramiko.PKey:
    assert hop.key_filename is not None  # SSHHop checks it
    path = Path(hop.key_filename).expanduser()
    try:
        return paramiko.PKey.from_path(path)
    except OSError as exc:
        raise SSHAuthenticationError(f"cannot read key file {path}: {exc}", hop) from exc
    except (TypeError, ValueError, paramiko.SSHException, UnknownKeyType) as exc:
        # cryptography raises TypeError for an encrypted key given no passphrase.
        raise SSHAuthenticationError(
            f"{path} is not an unencrypted RSA, ECDSA or Ed25519 private key ({exc})", hop
        ) from exc


def _close_transport(transport: paramiko.Transport, sock: socket.socket | paramiko.Channel) -> None:
    transport.close()
    sock.close()  # Transport.close() skips this if the handshake never started
    # Transport.close() does not wait for its thread, which notices within 0.1 s.
    if transport.is_alive() and transport is not threading.current_thread():
        transport.join(JOIN_TIMEOUT)


def _user_known_hosts() -> Path | None:
    """OpenSSH's per-user file under ``$HOME``, if it exists (even if unreadable)."""
    path = Path(os.path.expanduser("~")) / ".ssh" / "known_hosts"
    return path if path.exists() else None


def _read_known_hosts(policy: HostKeyPolicy) -> list[KnownHost]:
    if policy.path is None:
        return []
    try:
        return parse_known_hosts(policy.path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the known_hosts file {policy.path}: {exc.strerror or exc}; fix it, "
            "name another with known_hosts=PATH, or pass known_hosts=False to accept any host key"
        ) from exc


_warned_unlisted: set[tuple[str, bytes]] = set()
_warned_lock = threading.Lock()


def _warn_unlisted(name: str, key_type: str, key: bytes, path: Path) -> None:
    """Log once per process per host and key that an unlisted host was let through."""
    with _warned_lock:
        if (name, key) in _warned_unlisted:
            return
        _warned_unlisted.add((name, key))
    log.warning(
        "%s is not in %s: its %s key %s was accepted unchecked (not written there); "
        "add the host's key to that file to have it checked",
        name,
        path,
        key_type,
        fingerprint(key),
    )


class SSHClient:
    """SSH to a host through zero or more jump hosts.

    ``hops`` is a hostname, an :class:`SSHHop`, or a list of them (the last is
    the target). ``auth`` is an optional
    :class:`~acnet_proto.adapters.kerberos.KerberosAuth` for GSSAPI hops;
    paramiko can only use the default credential cache, so ``auth`` must be
    for the principal in it. If any hop uses GSSAPI, a ticket is required
    now (:class:`~acnet_proto.errors.AuthenticationError` otherwise).
    ``connect_timeout`` bounds each step of reaching and logging in to each
    hop.

    Every hop's host key is checked before any credential is sent to it.
    ``known_hosts`` says against what:

    * ``None`` (default): the user's ``~/.ssh/known_hosts`` (``$HOME``), if
      it exists. A listed host must offer a listed key; a changed (or
      ``@revoked``) key raises :class:`SSHHostKeyError`. A host the file
      does not list is let through with a warning logged once per process
      (the file is never written): refusing would break every upgrade where
      a hop is reached by a name the user's ssh never recorded, and there
      is no one to ask, as OpenSSH's ``StrictHostKeyChecking=ask`` would.
      Without the file, any key is accepted.
    * a path: that file, strictly: a host it does not list is refused too,
      since naming a file says "these are the hosts I trust".
    * ``False`` (:data:`~acnet_proto.adapters.ssh.hostkeys.ACCEPT_ANY`):
      any key, as pacsys does; for throw-away test hosts only.

    The file is read here: one that exists but cannot be read raises
    :class:`~acnet_proto.errors.ConfigurationError`.
    """

    def __init__(
        self,
        hops: HopSpec | Sequence[HopSpec],
        auth: object | None = None,
        connect_timeout: float = 10.0,
        *,
        known_hosts: KnownHostsArg = None,
    ) -> None:
        self._hops = _as_hops(hops)
        deadline_after(connect_timeout, "connect_timeout")
        self._connect_timeout = float(connect_timeout)
        self._host_key_policy = host_key_policy(
            known_hosts, _user_known_hosts() if known_hosts is None else None
        )
        self._known_hosts = _read_known_hosts(self._host_key_policy)
        self._principal = (
            _kerberos_principal(auth)
            if any(h.auth_method == "gssapi" for h in self._hops)
            else None
        )
        self._lock = threading.Lock()
        self._chain: list[tuple[paramiko.Transport, socket.socket | paramiko.Channel]] = []
        self._tunnels: list[Tunnel] = []
        self._channels: weakref.WeakSet[paramiko.Channel] = weakref.WeakSet()

    @property
    def hops(self) -> list[SSHHop]:
        return list(self._hops)

    @property
    def connected(self) -> bool:
        return bool(self._chain) and self._chain[-1][0].is_active()

    def __enter__(self) -> SSHClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        route = " -> ".join(str(h) for h in self._hops)
        return f"SSHClient({route}, {'connected' if self.connected else 'not connected'})"

    def connect(self) -> SSHClient:
        """Build the chain now rather than at first use; returns ``self``."""
        self._transport()
        return self

    def close(self) -> None:
        """Stop the tunnels, close channels opened here, and end every hop.

        A later call connects again.
        """
        for tunnel in self._tunnels:
            tunnel.stop()
        self._tunnels.clear()
        for chan in list(self._channels):
            close_channel(chan)
        with self._lock:
            self._disconnect()

    # ----------------------------------------------------------------- connection

    def _transport(self) -> paramiko.Transport:
        """The target's transport, connecting (or reconnecting) first if needed."""
        with self._lock:
            if self.connected:
                return self._chain[-1][0]
            self._disconnect()
            try:
                for hop in self._hops:
                    self._chain.append(self._open_hop(hop))
            except BaseException:
                self._disconnect()
                raise
            return self._chain[-1][0]

    def _disconnect(self) -> None:
        # Innermost first: each transport rides on a channel of the one before it.
        while self._chain:
            _close_transport(*self._chain.pop())

    def _open_hop(self, hop: SSHHop) -> tuple[paramiko.Transport, socket.socket | paramiko.Channel]:
        sock: socket.socket | paramiko.Channel
        try:
            if not self._chain:
                sock = socket.create_connection((hop.hostname, hop.port), self._connect_timeout)
                # ACL sessions are many small round trips; Nagle would delay each.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            else:
                sock = self._chain[-1][0].open_channel(
                    "direct-tcpip",
                    (hop.hostname, hop.port),
                    ("127.0.0.1", 0),
                    timeout=self._connect_timeout,
                )
        except (OSError, paramiko.SSHException, EOFError) as exc:
            via = f" through {self._hops[len(self._chain) - 1]}" if self._chain else ""
            raise SSHConnectionError(f"cannot reach {hop}{via}: {exc}", hop) from exc

        try:
            transport = paramiko.Transport(sock)
        except BaseException:
            sock.close()
            raise
        transport.banner_timeout = self._connect_timeout
        transport.auth_timeout = self._connect_timeout
        # Ask for a key type the file lists first, as OpenSSH does: a host known by
        # one type must not be judged on another it happens to prefer.
        options = transport.get_security_options()
        known = listed_types(self._known_hosts, host_pattern(hop.hostname, hop.port))
        options.key_types = preferred_algorithms(options.key_types, known)
        try:
            transport.start_client(timeout=self._connect_timeout)
            self._check_host_key(transport, hop)
            self._log_in(transport, hop)
        except BaseException as exc:
            _close_transport(transport, sock)
            if isinstance(exc, (paramiko.SSHException, EOFError, OSError)):
                raise SSHConnectionError(f"SSH handshake with {hop} failed: {exc}", hop) from exc
            raise
        transport.set_keepalive(KEEPALIVE_INTERVAL)
        return transport, sock

    def _check_host_key(self, transport: paramiko.Transport, hop: SSHHop) -> None:
        """Raise :class:`SSHHostKeyError` unless the policy lets the hop's key through."""
        policy = self._host_key_policy
        if policy.checking is Checking.OFF:
            return
        assert policy.path is not None  # only OFF has no file
        offered = transport.get_remote_server_key()
        key_type, key = offered.get_name(), offered.asbytes()
        name = host_pattern(hop.hostname, hop.port)
        strict = policy.checking is Checking.STRICT
        check = judge(self._known_hosts, name, key_type, key, strict=strict)
        if check.verdict is Verdict.UNLISTED_ACCEPTED:
            _warn_unlisted(name, key_type, key, policy.path)
        if not check.verdict.refused:
            return
        raise SSHHostKeyError(
            refusal_message(check, name, key_type, key, policy.path),
            hop,
            host=name,
            key_type=key_type,
            fingerprint=fingerprint(key),
            known_hosts=policy.path,
            lines=tuple(e.line for e in check.lines),
            reason={Verdict.CHANGED: "changed", Verdict.REVOKED: "revoked"}.get(
                check.verdict, "unlisted"
            ),
        )

    def _log_in(self, transport: paramiko.Transport, hop: SSHHop) -> None:
        if hop.auth_method == "gssapi":
            assert self._principal is not None  # set in __init__ when any hop uses GSSAPI
            user = hop.username or self._principal.split("@")[0].split("/")[0]
        else:
            user = hop.username or getpass.getuser()
        try:
            if hop.auth_method == "gssapi":
                still_needed = transport.auth_gssapi_with_mic(
                    user, hop.hostname, hop.delegate_credentials
                )
            elif hop.auth_method == "key":
                still_needed = transport.auth_publickey(user, _load_key(hop))
            else:
                assert hop.password is not None  # SSHHop checks it
                still_needed = transport.auth_password(user, hop.password)
        except paramiko.BadAuthenticationType as exc:
            raise SSHAuthenticationError(
                f"{hop} does not take {hop.auth_method} logins "
                f"(it offers: {', '.join(exc.allowed_types) or 'nothing'})",
                hop,
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise SSHAuthenticationError(
                f"{hop} refused the {hop.auth_method} login as {user!r}: {exc}", hop
            ) from exc
        except GSS_EXCEPTIONS as exc:
            raise SSHAuthenticationError(
                f"Kerberos login as {user!r} to {hop} failed: {exc}", hop
            ) from exc
        if still_needed or not transport.is_authenticated():
            raise SSHAuthenticationError(
                f"{hop} accepted the {hop.auth_method} login but also wants "
                f"{', '.join(still_needed)}; multi-step logins are not supported",
                hop,
            )

    def _open_channel(
        self,
        kind: str,
        deadline: float | None,
        dest: tuple[str, int] | None = None,
        origin: tuple[str, int] | None = None,
    ) -> paramiko.Channel:
        transport = self._transport()
        try:
            return transport.open_channel(kind, dest, origin, timeout=time_left(deadline))
        except paramiko.ChannelException as exc:
            raise SSHError(f"the server refused a {kind} channel: {exc}") from exc
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if deadline is not None and time.monotonic() >= deadline:
                raise SSHTimeoutError(f"the server did not open a {kind} channel in time") from exc
            raise SSHConnectionError(
                f"the connection broke opening a {kind} channel: {exc}"
            ) from exc

    @contextlib.contextmanager
    def _running(self, command: str, deadline: float | None) -> Iterator[paramiko.Channel]:
        """A channel running ``command``, closed on exit; paramiko errors become SSH errors."""
        chan = self._open_channel("session", deadline)
        try:
            start_command(chan, command, deadline)
            yield chan
        except TimeoutError as exc:  # a send outlasted the channel timeout
            raise SSHTimeoutError(f"{command!r} did not finish in time") from exc
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise SSHConnectionError(
                f"the connection broke while running {command!r}: {exc}"
            ) from exc
        finally:
            close_channel(chan)

    # ----------------------------------------------------------------- commands

    def exec(
        self,
        command: str,
        timeout: float | None = None,
        input: str | bytes | None = None,
        *,
        check: bool = False,
    ) -> CommandResult:
        """Run ``command`` through the login shell and wait for it.

        ``input`` goes to its stdin, which is then closed (all of it is sent
        before output is read; use :meth:`remote_process` for dialogues).
        ``timeout`` bounds the command from opening its channel to its exit
        (connecting first, if needed, is bounded by ``connect_timeout``).
        Output is decoded as UTF-8.

        Raises :class:`SSHTimeoutError` past the timeout, :class:`SSHCommandError`
        for a non-zero exit if ``check``, :class:`SSHConnectionError` if a hop
        cannot be reached or the connection breaks.
        """
        _check_command(command)
        deadline = deadline_after(timeout)
        stdout, stderr = bytearray(), bytearray()
        with self._running(command, deadline) as chan:
            if input is not None:
                feed(chan, input.encode() if isinstance(input, str) else input, deadline)
            chan.shutdown_write()
            while (chunk := next_chunk(chan, deadline)) != (False, b""):
                if chunk is None:
                    raise SSHTimeoutError(f"{command!r} did not finish within {timeout} s")
                (stderr if chunk[0] else stdout).extend(chunk[1])
            exit_code = exit_status(chan, deadline, command)
        result = CommandResult(
            command, exit_code, stdout.decode(errors="replace"), stderr.decode(errors="replace")
        )
        if check and not result.ok:
            raise SSHCommandError(command, exit_code, result.stderr, result.stdout)
        return result

    def exec_stream(self, command: str, timeout: float | None = None) -> Iterator[str]:
        """Run ``command`` and yield its stdout lines (without newlines) as they arrive.

        Nothing runs until the first ``next()``; ``timeout`` counts from there
        and bounds the whole command. After the last line, a non-zero exit
        raises :class:`SSHCommandError` carrying the end of stderr. Closing
        the iterator early closes the channel.
        """
        _check_command(command)
        deadline = deadline_after(timeout)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stderr = Tail()
        pending = ""
        with self._running(command, deadline) as chan:
            chan.shutdown_write()
            while (chunk := next_chunk(chan, deadline)) != (False, b""):
                if chunk is None:
                    raise SSHTimeoutError(f"{command!r} did not finish within {timeout} s")
                if chunk[0]:
                    stderr.add(chunk[1])
                    continue
                *lines, pending = (pending + decoder.decode(chunk[1])).split("\n")
                yield from lines
            pending += decoder.decode(b"", final=True)
            if pending:
                yield pending
            exit_code = exit_status(chan, deadline, command)
        if exit_code != 0:
            raise SSHCommandError(command, exit_code, stderr.text())

    def exec_many(
        self, commands: Sequence[str], timeout: float | None = None, *, check: bool = False
    ) -> list[CommandResult]:
        """Run ``commands`` one after another; results in input order.

        ``timeout`` applies to each. With ``check``, the first failure raises
        :class:`SSHCommandError` and the rest do not run.
        """
        if isinstance(commands, str):
            raise TypeError("exec_many takes a list of commands; use exec() for one")
        for command in commands:
            _check_command(command)
        return [self.exec(command, timeout, check=check) for command in commands]

    def open_channel(self, command: str, timeout: float | None = None) -> paramiko.Channel:
        """A channel running ``command`` with stdin left open, for dialogues.

        ``timeout`` bounds starting the command and then each read and write
        on the channel. The caller closes the channel (:meth:`close` also
        does).
        """
        _check_command(command)
        deadline = deadline_after(timeout)
        chan = self._open_channel("session", deadline)
        try:
            start_command(chan, command, deadline)
        except BaseException:
            close_channel(chan)
            raise
        chan.settimeout(timeout)
        self._channels.add(chan)
        return chan

    def remote_process(self, command: str, *, timeout: float = 30.0) -> RemoteProcess:
        """Start ``command`` as a :class:`RemoteProcess` (``timeout``: default for reads)."""
        return RemoteProcess(self, command, timeout=timeout)

    # ----------------------------------------------------------------- ACL

    def acl(self, command: str | Sequence[str], timeout: float | None = None) -> str:
        """Run ACL command(s) as one script with the remote ``acl``; return its output.

        A list gives one script line per item; ``;`` separates commands on a
        line. The script goes to a private temporary file on the remote host,
        removed afterwards. Prompt lines are dropped from the output.
        ``timeout`` (default 30 s) bounds the whole run.

        Raises :class:`~acnet_proto.errors.ACLError` if ``acl`` exits with a
        non-zero status (as it does when a command fails; the message carries
        its output), ``ValueError`` for no commands.
        """
        lines = [command] if isinstance(command, str) else list(command)
        if not lines or not all(isinstance(line, str) and line.strip() for line in lines):
            raise ValueError(f"acl needs one or more non-empty command strings, got {command!r}")
        result = self.exec(
            _ACL_RUNNER,
            timeout=ACL_TIMEOUT if timeout is None else timeout,
            input="\n".join(lines) + "\n",
        )
        output = _strip_prompts(result.stdout)
        if not result.ok:
            detail = "; ".join(p for p in (result.stderr.strip(), output) if p)
            raise ACLError(
                f"acl exited with status {result.exit_code} running {lines!r}"
                + (f": {detail[-STDERR_TAIL:]}" if detail else "")
            )
        return output

    def acl_session(self, *, timeout: float = 30.0) -> ACLSession:
        """Start a persistent :class:`ACLSession` (``timeout``: default per command)."""
        return ACLSession(self, timeout=timeout)

    # ----------------------------------------------------------------- tunnels, files

    def forward(self, local_port: int, remote_host: str, remote_port: int) -> Tunnel:
        """Listen on 127.0.0.1:``local_port`` (0: any free port) and carry each
        connection to ``remote_host``:``remote_port`` as seen from the target.

        Returns the running :class:`Tunnel`; :meth:`close` stops it too.
        """
        for name, port, low in (("local_port", local_port, 0), ("remote_port", remote_port, 1)):
            if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
                raise ValueError(f"{name} must be an int in {low}-65535, got {port!r}")
        if not isinstance(remote_host, str) or not remote_host:
            raise ValueError(f"remote_host must be a non-empty str, got {remote_host!r}")
        self._transport()  # fail now, not at the first connection, if the hops are unreachable

        def open_channel(origin: tuple[str, int]) -> paramiko.Channel:
            deadline = time.monotonic() + self._connect_timeout
            return self._open_channel("direct-tcpip", deadline, (remote_host, remote_port), origin)

        tunnel = Tunnel(local_port, remote_host, remote_port, open_channel)
        self._tunnels.append(tunnel)
        return tunnel

    def sftp(self, timeout: float | None = None) -> SFTPSession:
        """An SFTP session on the target (a context manager; or call ``close()``).

        ``timeout`` bounds each SFTP request's wait for an answer.
        """
        deadline = deadline_after(timeout)
        chan = self._open_channel("session", deadline)
        try:
            request(chan, lambda: chan.invoke_subsystem("sftp"), "SFTP", deadline)
            chan.settimeout(timeout)
            return paramiko.SFTPClient(chan)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            close_channel(chan)
            raise SSHError(f"could not start SFTP on {self._hops[-1]}: {exc}") from exc


def _kerberos_principal(auth: object | None) -> str:
    """The principal GSSAPI hops log in as: the default credential cache's."""
    try:
        from acnet_proto.adapters.kerberos import KerberosAuth
    except ImportError as exc:
        raise ImportError(
            f"GSSAPI hops need the gssapi package: pip install 'acnet-proto[krb]' ({exc})"
        ) from exc
    if auth is not None and not isinstance(auth, KerberosAuth):
        raise TypeError(f"auth for GSSAPI hops must be a KerberosAuth, got {type(auth).__name__}")
    default = KerberosAuth().principal  # raises AuthenticationError with no valid ticket
    if auth is not None and auth.principal != default:
        raise AuthenticationError(
            f"SSH GSSAPI logins use the default credential cache, which holds {default}, "
            f"not {auth.principal}; kinit or kswitch to {auth.principal} first"
        )
    return default


def _strip_prompts(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("ACL>")).strip()
