"""The errors the SSH adapter raises.

They live apart from the client so the channel helpers, tunnels and
processes can raise them without importing the client. :class:`SSHError`
derives from :class:`~acnet_proto.errors.AcnetProtoError`, so
``except AcnetProtoError`` catches SSH failures too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acnet_proto.errors import AcnetProtoError, AuthenticationError

if TYPE_CHECKING:
    from pathlib import Path

    from acnet_proto.adapters.ssh.client import SSHHop

__all__ = [
    "SSHAuthenticationError",
    "SSHCommandError",
    "SSHConnectionError",
    "SSHError",
    "SSHHostKeyError",
    "SSHTimeoutError",
]

STDERR_TAIL = 4096  # how much stderr an error message quotes


class SSHError(AcnetProtoError):
    """Base of every SSH failure raised here."""


class SSHConnectionError(SSHError):
    """A hop could not be reached or logged in to, or the connection broke.

    ``hop`` is the :class:`SSHHop` concerned, if the failure belongs to one.
    """

    def __init__(self, message: str, hop: SSHHop | None = None) -> None:
        super().__init__(message)
        self.hop = hop


class SSHAuthenticationError(SSHConnectionError, AuthenticationError):
    """A hop refused the credentials offered, or they could not be used."""


class SSHHostKeyError(SSHConnectionError):
    """A hop's host key was refused: changed, revoked, or not in a known_hosts file given.

    Raised before any credential is sent to the hop. ``host`` is the name
    known_hosts uses (``host`` or ``[host]:port``); ``key_type`` and
    ``fingerprint`` (``SHA256:...``) describe the key offered;
    ``known_hosts`` is the file checked and ``lines`` the line numbers it
    conflicts with (empty for a host the file does not list); ``reason`` is
    ``"changed"``, ``"revoked"`` or ``"unlisted"``.
    """

    def __init__(
        self,
        message: str,
        hop: SSHHop | None,
        *,
        host: str,
        key_type: str,
        fingerprint: str,
        known_hosts: Path,
        lines: tuple[int, ...],
        reason: str,
    ) -> None:
        super().__init__(message, hop)
        self.host = host
        self.key_type = key_type
        self.fingerprint = fingerprint
        self.known_hosts = known_hosts
        self.lines = lines
        self.reason = reason


class SSHCommandError(SSHError):
    """A remote command exited with a non-zero status.

    ``exit_code`` is -1 if the command ended without one (killed by a signal).
    """

    def __init__(self, command: str, exit_code: int, stderr: str, stdout: str = "") -> None:
        self.command = command
        self.exit_code = exit_code
        self.stderr = stderr
        self.stdout = stdout
        detail = stderr.strip() or stdout.strip()
        super().__init__(
            f"remote command {command!r} exited with status {exit_code}"
            + (f": {detail[-STDERR_TAIL:]}" if detail else "")
        )


class SSHTimeoutError(SSHError):
    """An operation did not finish within its timeout."""
