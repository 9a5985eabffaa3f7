"""A private RabbitMQ node (Debian's rabbitmq-server) on loopback ports."""

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import die_with_parent, find_program, free_port, log_tail, stop_process_group

START_TIMEOUT = 60.0
# Debian's /usr/sbin/rabbitmq-server is a wrapper that su's to `rabbitmq` and hides
# stdout; the real script lets us own the process group and see its output.
SERVER_SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server"

CONFIG = """\
listeners.tcp.1 = 127.0.0.1:{port}
loopback_users.guest = true
log.console = true
log.console.level = info
log.file.level = info
"""


@dataclass
class RabbitMQ:
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
        return f"amqp://{self.username}:{self.password}@{self.host}:{self.port}/%2F"

    def connection_parameters(self, **kwargs: Any) -> Any:
        """pika.ConnectionParameters for this broker; kwargs override the defaults."""
        import pika  # deferred: the fixture module must import without the dmq extra

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
        for proc in (self.proc, self.epmd):
            if proc is not None:
                stop_process_group(proc)
        self.proc = self.epmd = None
        shutil.rmtree(self.dir, ignore_errors=True)


def start_rabbitmq() -> RabbitMQ:
    find_program("rabbitmq-server")
    epmd_bin = find_program("epmd")
    if not os.path.exists(SERVER_SCRIPT):
        raise RuntimeError(f"{SERVER_SCRIPT} missing; is rabbitmq-server from Debian installed?")
    user = _run_as()

    # Not pytest's tmp_path: that is 0700 root and the broker runs as `rabbitmq`.
    workdir = Path(tempfile.mkdtemp(prefix="acnetproto-rabbitmq-"))
    amqp_port, dist_port, epmd_port = free_port(), free_port(), free_port()
    node = f"acnetproto-{secrets.token_hex(4)}@localhost"
    rmq = RabbitMQ(host="127.0.0.1", port=amqp_port, node=node, dir=workdir)
    try:
        for sub in ("mnesia", "log"):
            (workdir / sub).mkdir()
        (workdir / "rabbitmq.conf").write_text(CONFIG.format(port=amqp_port))
        (workdir / "enabled_plugins").write_text("[].\n")
        (workdir / "rabbitmq-env.conf").write_text("")
        if user is not None:
            for path in [workdir, *workdir.rglob("*")]:
                shutil.chown(path, user.pw_uid, user.pw_gid)

        env = {
            **os.environ,
            # Own epmd port so we never touch (or get confused by) a system-wide epmd.
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            # Erlang keeps its cookie in $HOME; a private one avoids /var/lib/rabbitmq.
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
        creds: dict[str, Any] = {"user": user.pw_uid, "group": user.pw_gid} if user else {}

        # Started by us, in the foreground, so teardown can kill it; erl then finds
        # it already listening and does not spawn a daemonized epmd we cannot track.
        rmq.epmd = subprocess.Popen(
            [epmd_bin, "-port", str(epmd_port), "-address", "127.0.0.1"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
            **creds,
        )
        log = workdir / "server.out"
        with log.open("wb") as out:
            rmq.proc = subprocess.Popen(
                [SERVER_SCRIPT],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
                **creds,
            )
        _wait_ready(rmq, log)
    except BaseException:
        rmq.stop()
        raise
    return rmq


def _run_as() -> pwd.struct_passwd | None:
    """As root, drop to the `rabbitmq` user like Debian's wrapper does."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("rabbitmq")
    except KeyError:
        return None


def _wait_ready(rmq: RabbitMQ, log: Path) -> None:
    import pika

    deadline = time.monotonic() + START_TIMEOUT
    error = ""
    while time.monotonic() < deadline:
        assert rmq.proc is not None
        if rmq.proc.poll() is not None:
            code = rmq.proc.returncode
            raise RuntimeError(f"rabbitmq-server exited with {code}:\n{log_tail(log)}")
        try:
            pika.BlockingConnection(rmq.connection_parameters(socket_timeout=2)).close()
            return
        except pika.exceptions.AMQPError as exc:
            error = repr(exc)
            time.sleep(0.5)
    raise RuntimeError(f"RabbitMQ not ready after {START_TIMEOUT}s: {error}\n{log_tail(log)}")
