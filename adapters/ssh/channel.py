"""Low-level helpers for one paramiko channel: deadlines, reads, requests, closing.

The client, tunnels and remote processes all drive channels, so the code
that does it lives here, once. paramiko waits for some answers with no
limit, and closing a channel can race its transport thread; these helpers
bound every wait by a deadline and close channels without that race.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable

import paramiko

from acnet_proto.adapters.ssh.errors import (
    STDERR_TAIL,
    SSHConnectionError,
    SSHError,
    SSHTimeoutError,
)

__all__ = [
    "CHUNK",
    "JOIN_TIMEOUT",
    "Tail",
    "close_channel",
    "deadline_after",
    "exit_status",
    "feed",
    "next_chunk",
    "request",
    "start_command",
    "time_left",
]

CHUNK = 65536
JOIN_TIMEOUT = 5.0


def deadline_after(timeout: float | None, name: str = "timeout") -> float | None:
    """The monotonic time ``timeout`` seconds from now; None for no timeout.

    A bad ``timeout`` is a ValueError that calls it ``name``.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {timeout!r}")
    return time.monotonic() + timeout


def time_left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (never negative); None for no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def next_chunk(chan: paramiko.Channel, deadline: float | None) -> tuple[bool, bytes] | None:
    """The next output as ``(from_stderr, data)``; ``(False, b"")`` once output has ended.

    None if the deadline passes first. Waits in select() on the channel, whose
    pipe paramiko sets on data, EOF and close alike.
    """
    while True:
        if chan.recv_ready():
            return False, chan.recv(CHUNK)
        if chan.recv_stderr_ready():
            return True, chan.recv_stderr(CHUNK)
        if chan.eof_received or chan.closed:
            return False, b""
        ready, _, _ = select.select([chan], [], [], time_left(deadline))
        if not ready:
            return None


def close_channel(chan: paramiko.Channel) -> None:
    """Close ``chan`` without racing paramiko's transport thread.

    ``Channel.close()`` closes the pipe that ``fileno()`` (hence select())
    made, while the transport thread may be feeding data that writes to it;
    that write then hits a closed, or reused, descriptor and kills the whole
    connection. Swapping the buffers' event under their locks first means no
    feed is writing to the pipe when it closes.
    """
    for buffer in (chan.in_buffer, chan.in_stderr_buffer):
        buffer.set_event(threading.Event())
    chan.close()


class Tail:
    """The last few KiB of a stream, for error messages."""

    def __init__(self) -> None:
        self._data = bytearray()

    def add(self, data: bytes) -> None:
        self._data += data
        del self._data[:-STDERR_TAIL]

    def text(self) -> str:
        return self._data.decode(errors="replace")


def request(
    chan: paramiko.Channel, call: Callable[[], None], what: str, deadline: float | None
) -> None:
    """Make a channel request (exec, subsystem) bounded by the deadline.

    paramiko waits for the server's answer to a channel request with no limit;
    past the deadline a helper thread sets the channel's event, which ends that
    wait with an SSHException.
    """
    if deadline is None:
        call()
        return
    done = threading.Event()

    def wake() -> None:
        if done.wait(time_left(deadline)):
            return
        # paramiko clears the event just before it sends, so set it until the call returns.
        while True:
            chan.event.set()
            if done.wait(0.05):
                return

    watchdog = threading.Thread(target=wake, name="ssh-request-deadline", daemon=True)
    watchdog.start()
    try:
        call()
    except paramiko.SSHException as exc:
        if time.monotonic() >= deadline:
            raise SSHTimeoutError(f"the server did not start {what} in time") from exc
        raise SSHError(f"the server refused to start {what}: {exc}") from exc
    finally:
        done.set()
        watchdog.join()


def start_command(chan: paramiko.Channel, command: str, deadline: float | None) -> None:
    request(chan, lambda: chan.exec_command(command), repr(command), deadline)


def feed(chan: paramiko.Channel, data: bytes, deadline: float | None) -> None:
    """Send ``data`` to the command's stdin; it may exit without reading it all."""
    chan.settimeout(time_left(deadline))
    try:
        chan.sendall(data)
    except TimeoutError:
        raise
    except OSError:
        # Like EPIPE to a local pipe: the command's exit status says whether that mattered.
        # A broken connection also closes the channel, and exit_status() reports it.
        if not chan.closed:
            raise


def exit_status(chan: paramiko.Channel, deadline: float | None, command: str) -> int:
    """The command's exit status (-1: killed by a signal), waiting for it until the deadline."""
    if not chan.status_event.wait(time_left(deadline)):
        raise SSHTimeoutError(f"{command!r} sent no exit status in time")
    transport = chan.get_transport()
    if chan.exit_status == -1 and (transport is None or not transport.is_active()):
        raise SSHConnectionError(f"the connection broke while running {command!r}")
    return int(chan.recv_exit_status())
