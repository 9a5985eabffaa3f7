"""pacsys's own clients sending control commands and reading status through our simulators.

What pacsys's suite for the lab's servers (tests/real) expects of Z:ACLTST,
with real Kerberos (the session KDC): ON/OFF, POSITIVE/NEGATIVE and RAMP/DC
toggle their bit; ordinals 7..11 (LOCAL, REMOTE, TRIP, 10, 11) are the
device's TEST commands, accepted and changing nothing; ordinal 25 is
refused; the status has no remote bit. (pacsys's DevDB client, which cannot
share a process with our protobuf modules, is in tests/adapters/test_devdb.py.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from acnet_proto.status import Status
from tests.support.servers.kdc import KDC

pytest.importorskip("gssapi")
pytest.importorskip("pacsys")
import pacsys

from acnet_proto.adapters.sim.dpm import SimServer

pytestmark = pytest.mark.integration

STATUS = "Z|ACLTST"


@pytest.fixture(scope="module")
def sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    return start_sim(keytab=kdc.keytab)


@pytest.fixture(scope="module")
def theirs(sim: SimServer) -> Iterator[Any]:
    with pacsys.dpm(
        host=sim.host, port=sim.port, auth=pacsys.KerberosAuth(), role="testing"
    ) as backend:
        yield backend


def status_of(theirs: Any) -> dict[str, bool]:
    reading = theirs.get(STATUS, timeout=10)
    assert reading.ok, reading.message
    return reading.value


@pytest.mark.parametrize(
    ("on", "off", "field"),
    [
        (pacsys.BasicControl.ON, pacsys.BasicControl.OFF, "on"),
        (pacsys.BasicControl.POSITIVE, pacsys.BasicControl.NEGATIVE, "positive"),
        (pacsys.BasicControl.RAMP, pacsys.BasicControl.DC, "ramp"),
    ],
)
def test_control_pairs_toggle_their_bit(theirs: Any, on: Any, off: Any, field: str) -> None:
    assert theirs.write(STATUS, off, timeout=10).success
    assert status_of(theirs)[field] is False
    assert theirs.write(STATUS, on, timeout=10).success
    assert status_of(theirs)[field] is True


@pytest.mark.parametrize(
    "ordinal",
    [pacsys.BasicControl.LOCAL, pacsys.BasicControl.REMOTE, pacsys.BasicControl.TRIP, 10, 11],
)
def test_the_unpaired_ordinals_succeed_and_change_nothing(theirs: Any, ordinal: Any) -> None:
    before = status_of(theirs)
    result = theirs.write(STATUS, ordinal, timeout=10)
    assert result.success, f"{ordinal}: {result.error_code} {result.message}"
    assert status_of(theirs) == before


def test_an_ordinal_beyond_the_table_is_rejected(theirs: Any) -> None:
    result = theirs.write(STATUS, 25, timeout=10)
    assert not result.success
    assert Status(result.facility_code, result.error_code).name == "DIO_SCALEFAIL"


def test_the_status_has_no_remote_bit(theirs: Any) -> None:
    assert set(status_of(theirs)) == {"on", "ready", "positive", "ramp"}
