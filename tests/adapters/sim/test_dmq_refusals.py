"""The simulated DMQ logs each refused job once, with its reason, escaped and bounded.

Jobs are driven by hand (tests/adapters/dmq/test_dmq.py's :class:`RawJob`) on the
session broker, with real tickets from the session KDC, to send what a
client never would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from acnet_proto.pc import daqdata
from tests.support.servers.kdc import KDC
from tests.support.servers.rabbitmq import RabbitMQ

pytest.importorskip("pika")
pytest.importorskip("gssapi")
from acnet_proto.adapters.sim.dmq import DMQSimServer
from tests.adapters.dmq.test_dmq import RawJob, flip, status_of

pytestmark = pytest.mark.integration

LOGGER = "acnet_proto.adapters.sim.dmq"
SETTING = "Z:ACLTST.SETTING@N"


@pytest.fixture
def sim(rabbitmq: RabbitMQ, kdc: KDC) -> Iterator[DMQSimServer]:
    # a long quiet period: every burst lasts the whole test, until stop() reports it
    with DMQSimServer(rabbitmq.url, keytab=kdc.keytab, quiet_period=600.0) as server:
        yield server


@pytest.fixture
def jobs(rabbitmq: RabbitMQ, kdc: KDC) -> Iterator[list[RawJob]]:
    made: list[RawJob] = []
    yield made
    for job in made:
        job.close()


def raw(jobs: list[RawJob], rabbitmq: RabbitMQ, *drfs: str, setting: bool = False) -> RawJob:
    kind = daqdata.SettingRequestRequest if setting else daqdata.ReadingRequestRequest
    jobs.append(RawJob(rabbitmq, kind(data_request=list(drfs))))
    return jobs[-1]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def refused_with_a_bad_signature(job: RawJob) -> Any:
    headers = dict(job.init.headers or {})
    tampered = {**headers, "signature": flip(headers["signature"])}
    job.publish(replace(job.init, headers=tampered))
    return job.next()[1]


def test_each_refused_job_is_logged_once_with_its_reason(
    sim: DMQSimServer, rabbitmq: RabbitMQ, jobs: list[RawJob], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert status_of(refused_with_a_bad_signature(raw(jobs, rabbitmq, "M:OUTTMP@I"))).error == -99
    unsigned = raw(jobs, rabbitmq, "M:OUTTMP@I")
    no_token = {k: v for k, v in (unsigned.init.headers or {}).items() if k != "gss-token"}
    unsigned.publish(replace(unsigned.init, headers=no_token))
    assert status_of(unsigned.next()[1]).name == "DMQ_LOGIN_REQUIRED"
    unknown = raw(jobs, rabbitmq, "Z:NOTFND@I")
    unknown.publish(unknown.init)
    unknown.next()  # PENDING
    unknown.next()  # the model's answer for a device it does not have
    lines = warnings(caplog)
    expected = [
        ("bad INIT signature (DMQ_SECURITY_VIOLATION -99)", "does not verify"),
        ("no gss-token (DMQ_LOGIN_REQUIRED -97)", "has no gss-token"),
        ("DRF refused", "Z:NOTFND"),
    ]
    assert len(lines) == len(expected), lines
    for line, (kind, why) in zip(lines, expected, strict=True):
        assert line.startswith(f"simulated DMQ: {kind}") and why in line, line
        assert "raw-test on " in line  # the job: the client's app id and exchange


def test_a_routing_key_mismatch_is_logged_with_the_key_escaped(
    sim: DMQSimServer, rabbitmq: RabbitMQ, jobs: list[RawJob], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    job = raw(jobs, rabbitmq, SETTING, setting=True)
    job.publish(job.init)
    job.next()  # PENDING
    hostile = f"S.{SETTING}\x1b[2J\x07" + "x" * 200  # a terminal escape, a bell, and length
    job.publish(replace(job.setting(SETTING, 5.0), routing_key=hostile))
    assert status_of(job.next()[1]).error == -98
    [line] = warnings(caplog)
    assert "setting routing key mismatch (DMQ_INVALID_REQUEST -98)" in line
    assert "x1b[2J" in line and "x07" in line  # written as escapes...
    assert "\x1b" not in line and "\x07" not in line  # ...never as the characters
    assert "more)" in line and len(line) < 600  # the reason is cut short, saying so


def test_a_burst_of_one_kind_is_one_line_then_its_count(
    sim: DMQSimServer, rabbitmq: RabbitMQ, jobs: list[RawJob], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for _ in range(3):
        assert status_of(refused_with_a_bad_signature(raw(jobs, rabbitmq, "M:OUTTMP@I"))).error
    assert len(warnings(caplog)) == 1
    sim.stop()
    first, total = warnings(caplog)
    assert "more like it are counted" in first
    assert (
        total
        == "simulated DMQ: bad INIT signature (DMQ_SECURITY_VIOLATION -99): 3 in the last burst"
    )
