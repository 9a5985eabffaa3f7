"""Remote commands kept running: :class:`RemoteProcess`, and :class:`ACLSession` on it.

Both start through an :class:`SSHClient` they are given but do not own; the
client's methods create them, so this module imports the client only for
type checking.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from acnet_proto.adapters.ssh.channel import Tail, close_channel, deadline_after, next_chunk
from acnet_proto.adapters.ssh.errors import SSHError, SSHTimeoutError
from acnet_proto.errors import ACLError

if TYPE_CHECKING:
    from acnet_proto.adapters.ssh.client import SSHClient

__all__ = ["ACLSession", "RemoteProcess"]

ACL_PROMPT = b"\nACL> "
_MAX_BUFFER = 16 * 1024 * 1024  # what a RemoteProcess may hold while looking for a marker


class RemoteProcess:
    """A remote command kept running, as a byte pipe: write lines, read to markers.

    Does not own the :class:`SSHClient`. Not thread-safe. ``timeout`` is the
    default for reads. The process's stderr is read and kept (its end
    appears in error messages) so it can never block the process.
    """

    def __init__(self, ssh: SSHClient, command: str, *, timeout: float = 30.0) -> None:
        deadline_after(timeout)
        self.command = command
        self._timeout = timeout
        self._chan = ssh.open_channel(command, timeout=timeout)
        self._buffer = bytearray()
        self._stderr = Tail()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    @property
    def alive(self) -> bool:
        """True until the process exits or the channel closes."""
        return not (self._closed or self._chan.closed or self._chan.exit_status_ready())

    @property
    def stderr_tail(self) -> str:
        """The last few KiB the process wrote to stderr."""
        return self._stderr.text()

    def __enter__(self) -> RemoteProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteProcess({self.command!r}, {'alive' if self.alive else 'ended'})"

    def send_line(self, line: str) -> None:
        """Send ``line`` and a newline."""
        self.send_bytes(f"{line}\n".encode())

    def send_bytes(self, data: bytes) -> None:
        """Send raw bytes to the process's stdin."""
        if self._closed:
            raise SSHError(f"the remote process {self.command!r} is closed")
        try:
            self._chan.sendall(data)
        except TimeoutError as exc:
            raise SSHTimeoutError(f"{self.command!r} stopped reading its input") from exc
        except OSError as exc:  # paramiko: "Socket is closed" once the channel has gone
            raise SSHError(f"cannot write to {self.command!r}: it has ended ({exc})") from exc

    def read_until(self, marker: bytes, timeout: float | None = None) -> bytes:
        """Everything before the next ``marker`` in stdout; the marker is consumed.

        Raises :class:`SSHTimeoutError` if it does not appear within
        ``timeout`` (default: the process's), :class:`SSHError` if the process
        ends first.
        """
        if not isinstance(marker, bytes) or not marker:
            raise ValueError(f"marker must be non-empty bytes, got {marker!r}")
        deadline = deadline_after(self._timeout if timeout is None else timeout)
        searched = 0
        while (at := self._buffer.find(marker, searched)) < 0:
            searched = max(0, len(self._buffer) - len(marker) + 1)
            if len(self._buffer) > _MAX_BUFFER:
                raise SSHError(f"{_MAX_BUFFER} bytes from {self.command!r} and no {marker!r}")
            if not self._fill(deadline):
                raise SSHError(
                    f"{self.command!r} ended before printing {marker!r} "
                    f"(output ends {bytes(self._buffer[-200:])!r}; stderr: {self.stderr_tail!r})"
                )
        output = bytes(self._buffer[:at])
        del self._buffer[: at + len(marker)]
        return output

    def read_for(self, seconds: float) -> bytes:
        """All stdout arriving within ``seconds`` (less if the process ends), plus any unread."""
        deadline = deadline_after(seconds, "seconds")
        with contextlib.suppress(SSHTimeoutError):
            while self._fill(deadline):
                pass
        output = bytes(self._buffer)
        self._buffer.clear()
        return output

    def _fill(self, deadline: float | None) -> bool:
        """Read one chunk into the buffer; False once the process's output has ended."""
        if self._closed:
            raise SSHError(f"the remote process {self.command!r} is closed")
        while True:
            chunk = next_chunk(self._chan, deadline)
            if chunk is None:
                raise SSHTimeoutError(
                    f"no expected output from {self.command!r} in time "
                    f"(output ends {bytes(self._buffer[-200:])!r})"
                )
            from_stderr, data = chunk
            if not from_stderr:
                self._buffer += data
                return bool(data)
            self._stderr.add(data)

    def close(self) -> None:
        """Close the channel, which ends the process's input (idempotent)."""
        self._closed = True
        close_channel(self._chan)


class ACLSession:
    """A remote ``acl`` interpreter kept running, so commands skip its start-up.

    Each :meth:`send` is its own script: ACL state (variables, symbols) does
    not carry over, so join dependent commands with ``;`` in one send.
    Sessions on one :class:`SSHClient` share its connection; a session is
    not thread-safe (open one per thread). ``timeout`` is the default wait
    for ACL's prompt.
    """

    def __init__(self, ssh: SSHClient, *, timeout: float = 30.0) -> None:
        self._proc = RemoteProcess(ssh, "acl", timeout=timeout)
        try:
            # The first prompt may open the output, so the leading newline is not required.
            self._proc.read_until(ACL_PROMPT.lstrip())
        except SSHError as exc:
            self._proc.close()
            raise ACLError(f"acl did not start on the remote host: {exc}") from exc

    @property
    def closed(self) -> bool:
        return self._proc.closed

    def __enter__(self) -> ACLSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ACLSession({'closed' if self.closed else 'open'})"

    def send(self, command: str, timeout: float | None = None) -> str:
        """Run one line of ACL; return its output without the echo and prompt.

        Raises ``ValueError`` for a line break in ``command``, and
        :class:`~acnet_proto.errors.ACLError` if the session is closed, acl
        ends, or no prompt comes back within ``timeout`` (the session is then
        closed, as later output could not be told apart from this command's).
        """
        if not isinstance(command, str) or not command.strip():
            raise ValueError(f"command must be a non-empty str, got {command!r}")
        if "\n" in command or "\r" in command:
            raise ValueError("an ACL session command cannot contain a line break; use ';'")
        if self.closed:
            raise ACLError("the ACL session is closed")
        try:
            self._proc.send_line(command)
            raw = self._proc.read_until(ACL_PROMPT, timeout)
        except SSHError as exc:
            self.close()
            raise ACLError(f"ACL command {command!r} failed: {exc}") from exc
        lines = raw.decode(errors="replace").strip().splitlines()
        # acl echoes each line it reads.
        if lines and lines[0].strip() == command.strip():
            lines = lines[1:]
        return "\n".join(lines).strip()

    def close(self) -> None:
        """End acl by closing its channel; the :class:`SSHClient` stays open (idempotent)."""
        self._proc.close()
