"""DevDB replies from a hostile server, as acnet_proto.services.devdb reads them.

The records themselves are tested against the simulated service in
tests/adapters/test_devdb.py.
"""

from __future__ import annotations

from acnet_proto._text import SHOWN_CHARS
from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
from acnet_proto.services.devdb import device_infos
from acnet_proto.status import Status


def test_a_lookup_failure_shows_the_servers_text_bounded_and_escaped() -> None:
    text = "\x1b]0;owned\x07" + "x" * 100_000
    reply = DevDB_pb2.DeviceInfoReply(set=[DevDB_pb2.InfoEntry(name="M:OUTTMP", errMsg=text)])
    found, failure = device_infos(reply)
    assert found == {} and failure is not None
    message = str(failure)
    lookup_failed = Status.from_name("DPM_LOOKUP_FAILED")
    assert (failure.drf, failure.facility_code, failure.error_code) == (
        "M:OUTTMP",
        lookup_failed.facility,
        lookup_failed.error,
    )
    assert "\\x1b]0;owned\\x07" in message and "\x1b" not in message
    assert len(message) < SHOWN_CHARS + 200
