"""A private RabbitMQ node on loopback ports, for the simulated DMQ (``acnet-proto sim --dmq``)
and the tests.

:func:`start_rabbitmq` starts one in a fresh temporary directory, with its
own Erlang port mapper (``epmd``), node name and cookie, listening on free
loopback ports only, so it never meets a system-wide broker; ``guest/guest``
may connect (from loopback). :meth:`RabbitMQ.stop` stops it and removes the
directory. If the program that starts it dies without stopping it, the
broker is told to stop too.

The broker is ``$ACNET_PROTO_RABBITMQ_SERVER`` if set, else Debian's real
server script (the ``/usr/sbin`` one is a wrapper that switches to the
``rabbitmq`` user and hides the output), else ``rabbitmq-server`` on the
``PATH``. :class:`ServerUnavailable` if it, or ``epmd``, is not installed;
:class:`ServerStartFailed` if it is but does not start.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acnet_proto.adapters.sim._processes import (
    ServerStartFailed,
    ServerUnavailable,
    die_with_parent,
    find_program,
    free_port,
    stop_process_group,
    wait_ready,
)

__all__ = [
    "SERVER_VARIABLE",
    "RabbitMQ",
    "ServerStartFailed",
    "ServerUnavailable",
    "server_program",
    "start_rabbitmq",
]

START_TIMEOUT = 60.0
#: the environment variable naming the rabbitmq-server program to run, when set
SERVER_VARIABLE = "ACNET_PROTO_RABBITMQ_SERVER"
DEBIAN_SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server"

CONFIG = """\
listeners.tcp.1 = 127.0.0.1:{port}
loopback_users.guest = true
log.console = true
log.console.level = info
log.file.level = info
"""


@dataclass
class RabbitMQ:
    """A running private broker: where it listens, its node name and its directory."""

    host: str
    port: int
    node: str
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    epmd: subprocess.Popen[bytes] | None = None
    username: str = "guest"
    password: str = "guest"

    @property
    def url(self) -> str:
        """The AMQP URL to reach it: guest's credentials, the default virtual host."""
        return f"amqp://{self.username}:{self.password}@{self.host}:{self.port}/%2F"

    def connection_parameters(self, **kwargs: Any) -> Any:
        """pika.ConnectionParameters for this broker; kwargs override the defaults."""
        import pika  # deferred: this module must import without the dmq extra

        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "credentials": pika.PlainCredentials(self.username, self.password),
            "connection_attempts": 1,
            "socket_timeout": 5,
            "blocked_connection_timeout": 10,
        }
        options.update(kwargs)
        return pika.ConnectionParameters(**options)

    def stop(self) -> None:
        """Stop the broker and its port mapper, and remove its directory; idempotent."""
        for proc in (self.proc, self.epmd):
            if proc is not None:
                stop_process_group(proc)
        self.proc = self.epmd = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RabbitMQ:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def server_program() -> str:
    """The rabbitmq-server program to run (see the module); :class:`ServerUnavailable` if none."""
    chosen = os.environ.get(SERVER_VARIABLE)
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise ServerUnavailable(
                f"${SERVER_VARIABLE} names {chosen}, which is not an executable file; "
                "install rabbitmq-server, or point the variable at it"
            )
        return chosen
    if os.path.exists(DEBIAN_SCRIPT):
        return DEBIAN_SCRIPT
    return find_program("rabbitmq-server")


def start_rabbitmq() -> RabbitMQ:
    """Start a private broker and return once it accepts AMQP connections.

    :class:`ServerUnavailable` if rabbitmq-server or epmd is not installed;
    :class:`ServerStartFailed` if the broker exits or does not answer within
    :data:`START_TIMEOUT` seconds (with the tail of its log).
    """
    server = server_program()
    epmd = find_program("epmd")
    user = _run_as()
    # Not a directory private to root: the broker may run as `rabbitmq`.
    workdir = Path(tempfile.mkdtemp(prefix="acnetproto-rabbitmq-"))
    amqp_port, dist_port, epmd_port = free_port(), free_port(), free_port()
    node = f"acnetproto-{secrets.token_hex(4)}@localhost"
    rmq = RabbitMQ(host="127.0.0.1", port=amqp_port, node=node, dir=workdir)
    try:
        _write_config(workdir, amqp_port, user)
        env = _environment(workdir, node, amqp_port, dist_port, epmd_port)
        creds: dict[str, Any] = {"user": user.pw_uid, "group": user.pw_gid} if user else {}
        # Started by us, in the foreground, so stop() can end it; erl then finds it
        # already listening and does not spawn a daemonized epmd no one could track.
        rmq.epmd = _spawn(
            [epmd, "-port", str(epmd_port), "-address", "127.0.0.1"], env, None, creds
        )
        log = workdir / "server.out"
        rmq.proc = _spawn([server], env, log, creds)
        wait_ready(rmq.proc, _answers(rmq), [log], "rabbitmq-server", START_TIMEOUT)
    except BaseException:
        rmq.stop()
        raise
    return rmq


def _write_config(workdir: Path, amqp_port: int, user: pwd.struct_passwd | None) -> None:
    for sub in ("mnesia", "log"):
        (workdir / sub).mkdir()
    (workdir / "rabbitmq.conf").write_text(CONFIG.format(port=amqp_port))
    (workdir / "enabled_plugins").write_text("[].\n")
    (workdir / "rabbitmq-env.conf").write_text("")
    if user is not None:
        for path in [workdir, *workdir.rglob("*")]:
            shutil.chown(path, user.pw_uid, user.pw_gid)


def _environment(
    workdir: Path, node: str, amqp_port: int, dist_port: int, epmd_port: int
) -> dict[str, str]:
    env = {
        **os.environ,
        # its own epmd port, so it never touches (or is confused by) a system-wide epmd
        "ERL_EPMD_PORT": str(epmd_port),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        # Erlang keeps its cookie in $HOME; a private one avoids /var/lib/rabbitmq
        "HOME": str(workdir),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(workdir / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(workdir / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }
    env.pop("RABBITMQ_ALLOW_INPUT", None)
    return env


def _spawn(
    command: list[str], env: dict[str, str], log: Path | None, creds: dict[str, Any]
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a process group of its own, its output to ``log`` (None: nowhere);
    :class:`ServerStartFailed` if it cannot be run (as the user the broker runs as)."""
    with open(log if log is not None else os.devnull, "wb") as out:
        try:
            return subprocess.Popen(
                command,
                cwd=env["HOME"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
                **creds,
            )
        except OSError as exc:
            raise ServerStartFailed(f"cannot run {command[0]}: {exc}") from exc


def _run_as() -> pwd.struct_passwd | None:
    """As root, drop to the `rabbitmq` user like Debian's wrapper does."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("rabbitmq")
    except KeyError:
        return None


def _answers(rmq: RabbitMQ) -> Callable[[], str | None]:
    """A probe for :func:`wait_ready`: None once ``rmq`` takes an AMQP connection."""
    import pika
    import pika.exceptions

    def probe() -> str | None:
        try:
            pika.BlockingConnection(rmq.connection_parameters(socket_timeout=2)).close()
        except pika.exceptions.AMQPError as exc:
            return repr(exc)
        return None

    return probe
