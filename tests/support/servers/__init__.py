"""Real servers (MIT Kerberos KDC, RabbitMQ, sshd) started by pytest fixtures.

The machinery lives here (and, for what the demo needs too, in
``acnet_proto.adapters``) so conftest.py stays a list of thin fixtures.
"""

import os
from typing import NoReturn

import pytest

from acnet_proto.adapters.sim._processes import (
    ServerUnavailable,
    die_with_parent,
    find_program,
    free_port,
    log_tail,
    stop_process_group,
)

__all__ = [
    "ServerUnavailable",
    "die_with_parent",
    "find_program",
    "free_port",
    "log_tail",
    "skip_or_fail",
    "stop_process_group",
]


def skip_or_fail(exc: ServerUnavailable) -> NoReturn:
    """CI must never silently skip integration tests; a developer laptop may."""
    if os.environ.get("CI"):
        pytest.fail(str(exc), pytrace=False)
    pytest.skip(str(exc))
