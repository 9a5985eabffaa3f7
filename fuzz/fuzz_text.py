"""atheris harness: every parser of what a peer sends, beside the PC codec, raises only our errors.

    python fuzz/fuzz_text.py fuzz/corpus/text -max_total_time=3600

Byte 0 picks the target (``data[0] % len(TARGETS)``); the rest is its input.
Each target names what it may raise: an :class:`~acnet_proto.errors.AcnetProtoError`
of the kind listed is the parser refusing the input; anything else escaping
(ValueError, KeyError, TypeError, UnicodeError, RecursionError, OverflowError,
...) is a bug and stops the run. Peer text is made from the bytes as the
adapters make it (UTF-8 with U+FFFD for what does not decode; pika's
properties and routing keys stay bytes when they are not UTF-8).

Inventory, parser -> what it may raise:

* ``refusal``: the proxy's HTTP status line (``engine.framing.FrameSplitter``
  with ``detect_http_refusal``, ``errors.ConnectionRefusedByProxy``):
  RemoteProtocolError (ConnectionRefusedByProxy, with ``status_code`` None or an int).
* ``acl``: the ACL CGI's answer, bytes and charset (``services.acl.decode_output``),
  its lines (``parse_line``, ``script_error``, ``status_of``) and a batch read
  over several answers (``ACLRead.receive``, ``value_of_line`` inside it):
  RemoteProtocolError from ``receive`` only; and the query a client sends the
  simulated CGI (``decode_query``): nothing.
* ``dmq``: deliveries to a read, stream or setting job (``services.dmq.ReadJob``,
  ``StreamJob``, ``SettingJob`` ``.receive``: routing key str or bytes,
  correlation id str, bytes or None, body raw or a DAQData sample with any
  time, status and value), and the signed layout of a delivery's properties
  (``mic_body``): nothing.
* ``jwt``: a token's text and its payload's JSON of any shape
  (``api.auth.JWTAuth``, ``.principal``, ``.claims``, ``repr``):
  ConfigurationError.
* ``daq``: gRPC DAQ replies, parsed from bytes or built with any status and
  timestamp (``services.daq.readings_of_reply``, ``GRPCReadBatch.feed``,
  ``GRPCStream.feed``, ``SettingBatch.results``, ``value_from_proto``,
  ``status_parts``, ``timestamp_of``): RemoteProtocolError.
* ``devdb``: DevDB replies parsed from bytes (``services.devdb.device_infos``,
  ``alarm_infos``, ``alarm_texts``): nothing (a failed lookup is returned).
* ``status``: a status name a peer printed (``status.Status.from_name``):
  UnknownStatusName.

Bytes that are no protobuf message are grpc's to refuse before these
parsers see them, so such inputs are skipped, not failures.
"""

from __future__ import annotations

import base64
import contextlib
import struct
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import atheris

# only the parsers under test: instrumenting protobuf and numpy too makes start-up 4x longer
with atheris.instrument_imports(include=["acnet_proto"]):
    from google.protobuf.message import DecodeError as ProtobufDecodeError
    from google.protobuf.message import Message as Protobuf

    from acnet_proto.api.auth import JWTAuth
    from acnet_proto.engine.framing import FrameSplitter
    from acnet_proto.errors import (
        ConfigurationError,
        ConnectionRefusedByProxy,
        LocalProtocolError,
        RemoteProtocolError,
    )
    from acnet_proto.pc import daqdata
    from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
    from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
    from acnet_proto.services import acl, daq, devdb, dmq
    from acnet_proto.status import Status, UnknownStatusName

#: what the ACL batch reads: a number, an array, raw bytes, text, and an event ACL waits for
ACL_DRFS = ("M:OUTTMP", "Z:ACLTS1[0:3]", "M:OUTTMP.RAW", "M:OUTTMP.DESCRIPTION", "G:AMANDA@e,02")
DMQ_DRFS = ("M:OUTTMP", "Z:ACLTS1[0:3]", "G:AMANDA@p,1000")
SETTING_DRF = "Z:ACLTST.SETTING@N"
INIT_ID = "init-1"
#: what separates the ACL CGI's answers (one per URL) in an ``acl`` input
ANSWER_END = b"\0"


class Input:
    """The fuzzer's bytes, taken a piece at a time; past the end every piece is empty or 0."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def more(self) -> bool:
        return self._at < len(self._data)

    def take(self, n: int) -> bytes:
        piece = self._data[self._at : self._at + n]
        self._at += n
        return piece

    def byte(self) -> int:
        return (self.take(1) or b"\0")[0]

    def signed(self, size: int) -> int:
        return int.from_bytes(self.take(size).ljust(size, b"\0"), "little", signed=True)

    def real(self) -> float:
        return float(struct.unpack("<d", self.take(8).ljust(8, b"\0"))[0])

    def chunk(self) -> bytes:
        """One length byte, then that many bytes."""
        return self.take(self.byte())

    def block(self) -> bytes:
        """Two length bytes (little-endian), then that many bytes."""
        return self.take(int.from_bytes(self.take(2).ljust(2, b"\0"), "little"))

    def text(self) -> str:
        return peer_text(self.chunk())

    def wire_text(self) -> str | bytes:
        """A chunk as pika hands over an AMQP short string: str if UTF-8, else the bytes."""
        raw = self.chunk()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw

    def rest(self) -> bytes:
        return self.take(len(self._data))


def peer_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# ----------------------------------------------------------------------------- refusal


def fuzz_refusal(data: Input) -> None:
    step = data.byte() % 7 + 1
    stream = b"HTTP" + data.rest()
    splitter = FrameSplitter(max_frame_size=1 << 16, detect_http_refusal=True)
    try:
        for at in range(0, len(stream), step):
            splitter.feed(stream[at : at + step])
        splitter.close()
    except ConnectionRefusedByProxy as refused:
        _check_refusal(refused)
    except RemoteProtocolError:
        pass
    _check_refusal(ConnectionRefusedByProxy(stream.decode("latin-1")))


def _check_refusal(refused: ConnectionRefusedByProxy) -> None:
    code = refused.status_code
    if code is not None and type(code) is not int:
        raise AssertionError(f"status_code {code!r} is not an int")
    str(refused)


# --------------------------------------------------------------------------------- ACL


def fuzz_acl(data: Input) -> None:
    charset = data.text()
    output = acl.decode_output(data.rest(), charset or None)
    if not isinstance(output, str):
        raise AssertionError("decode_output must give text")
    acl.script_error(output)
    acl.decode_query(output)
    for line in output.splitlines():
        parsed = acl.parse_line(line)
        if isinstance(parsed, acl.ErrorLine):
            acl.status_of(parsed.status_name)
    _acl_read(output.split(peer_text(ANSWER_END)))


def _acl_read(answers: list[str]) -> None:
    plan = acl.ACLRead(list(ACL_DRFS), acl.DEFAULT_BASE_URL)
    for answer in answers:
        if plan.next_url() is None:
            break
        try:
            plan.receive(answer, now=0.0)
        except RemoteProtocolError as exc:
            plan.failed(exc)
            return
    if plan.done:
        plan.readings()


# --------------------------------------------------------------------------------- DMQ


class _Signer:
    def get_mic(self, message: bytes) -> bytes:
        return b"mic"


def _sample(data: Input) -> bytes:
    """A DAQData sample made of fuzzer values, encoded (or raw bytes if it cannot be)."""
    d = daqdata
    stamp: dict[str, Any] = {
        "time": data.signed(8),
        "cycle_time": data.signed(8),
        "ref_id": data.byte() % 5,
    }
    makers: tuple[Callable[[], object], ...] = (
        lambda: d.DoubleSampleReply(value=data.real(), **stamp),
        lambda: d.IntegerSampleReply(value=data.signed(4), **stamp),
        lambda: d.LongSampleReply(value=data.signed(8), **stamp),
        lambda: d.ShortSampleReply(value=data.signed(2), **stamp),
        lambda: d.BooleanSampleReply(value=bool(data.byte() & 1), **stamp),
        lambda: d.StringSampleReply(value=data.text(), **stamp),
        lambda: d.BinarySampleReply(value=data.chunk(), **stamp),
        lambda: d.DoubleArraySampleReply(
            value=[data.real() for _ in range(data.byte() % 4)], **stamp
        ),
        lambda: d.StringArraySampleReply(
            value=[data.text() for _ in range(data.byte() % 4)], **stamp
        ),
        lambda: d.BasicControlSampleReply(value=list(d.BasicControl)[data.byte() % 7], **stamp),
        lambda: d.ErrorSampleReply(
            facility_code=data.signed(4), error_number=data.signed(4), message=data.text(), **stamp
        ),
    )
    try:
        return d.encode(makers[data.byte() % len(makers)]())  # type: ignore[arg-type]
    except LocalProtocolError:
        return data.chunk()


def _routing_key(data: Input, drfs: list[str]) -> str | bytes:
    kind = data.byte() % 6
    if kind == 0:
        return dmq.reading_key(drfs[data.byte() % len(drfs)])
    fixed = (dmq.SERVER_HEARTBEAT_KEY, "R", "R.null")
    if kind <= len(fixed):
        return fixed[kind - 1]
    if kind == 4:
        return "R." + data.text()
    return data.wire_text()


def _correlation_id(data: Input) -> str | bytes | None:
    kind = data.byte() % 3
    return None if kind == 0 else INIT_ID if kind == 1 else data.wire_text()


def fuzz_dmq(data: Input) -> None:
    kind = data.byte() % 3
    job: dmq.ReadJob | dmq.StreamJob | dmq.SettingJob
    if kind == 2:
        job = dmq.SettingJob(SETTING_DRF)
        job.submit(SETTING_DRF, daqdata.encode(dmq.setting_sample(SETTING_DRF, 1.0, 0)))
        keys = [SETTING_DRF]
    else:
        job = dmq.ReadJob(list(DMQ_DRFS)) if kind == 0 else dmq.StreamJob(list(DMQ_DRFS))
        keys = job.wire
    job.init_message_id = INIT_ID
    while data.more():
        key, correlation = _routing_key(data, keys), _correlation_id(data)
        body = _sample(data) if data.byte() & 1 else data.chunk()
        job.receive(key, body, correlation, now=0.0)
        if isinstance(job, dmq.SettingJob):
            job.take_outgoing("x", b"\x7f\0\0\1", _Signer(), lambda: "m")
        dmq.mic_body(body, correlation, key, data.wire_text(), data.wire_text(), data.chunk())
    if isinstance(job, dmq.ReadJob) and job.done:
        job.readings()


# --------------------------------------------------------------------------------- JWT


def fuzz_jwt(data: Input) -> None:
    if data.byte() & 1:
        token = peer_text(data.rest())
    else:
        payload = base64.urlsafe_b64encode(data.rest()).rstrip(b"=").decode("ascii")
        token = f"eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln"
    try:
        auth = JWTAuth(token)
    except ConfigurationError:
        return
    repr(auth)
    auth.claims  # noqa: B018 - the property is the parser under test
    with contextlib.suppress(ConfigurationError):
        auth.principal  # noqa: B018


# --------------------------------------------------------------------------------- DAQ


def _status(data: Input, into: object) -> None:
    into.facility_code = data.signed(4)  # type: ignore[attr-defined]
    into.status_code = data.signed(4)  # type: ignore[attr-defined]
    into.message = data.text()  # type: ignore[attr-defined]


def _built_reply(data: Input) -> DAQ_pb2.ReadingReply:
    reply = DAQ_pb2.ReadingReply(index=data.byte() % 3)
    if data.byte() & 1:
        _status(data, reply.status)
        return reply
    for _ in range(data.byte() % 4):
        entry = reply.readings.reading.add()
        entry.timestamp.seconds = data.signed(8)
        entry.timestamp.nanos = data.signed(4)
        _status(data, entry.status)
        if data.byte() & 1:
            entry.data.scalar = data.real()
        else:
            entry.data.text = data.text()
    return reply


_M = TypeVar("_M", bound=Protobuf)


def _parsed(kind: type[_M], raw: bytes) -> _M | None:
    try:
        return kind.FromString(raw)
    except ProtobufDecodeError:
        return None  # grpc refuses it before any parser here sees it


def fuzz_daq(data: Input) -> None:
    drfs = ["M:OUTTMP", "Z:ACLTS1[0:3]", "G:AMANDA"]
    reply = _built_reply(data) if data.byte() & 1 else _parsed(DAQ_pb2.ReadingReply, data.block())
    if reply is not None:
        with contextlib.suppress(RemoteProtocolError):
            daq.GRPCReadBatch(drfs).feed(reply)
        with contextlib.suppress(RemoteProtocolError):
            daq.GRPCStream(drfs, None).feed(reply, datetime(2024, 1, 1, tzinfo=UTC))
    settings = _parsed(DAQ_pb2.SettingReply, data.rest())
    if settings is not None:
        with contextlib.suppress(RemoteProtocolError):
            daq.SettingBatch([("Z:ACLTST", 1.0), ("Z:ACLTS1", "x")]).results(settings)


# ------------------------------------------------------------------------------- DevDB


def fuzz_devdb(data: Input) -> None:
    kind, raw = data.byte() % 3, data.rest()
    readers = (
        (DevDB_pb2.DeviceInfoReply, devdb.device_infos),
        (DevDB_pb2.AlarmInfoReply, devdb.alarm_infos),
        (DevDB_pb2.DeviceAlarmTextList, devdb.alarm_texts),
    )
    message, convert = readers[kind]
    try:
        reply = message.FromString(raw)
    except ProtobufDecodeError:
        return
    convert(reply)


# ------------------------------------------------------------------------------ status


def fuzz_status(data: Input) -> None:
    name = peer_text(data.rest())
    with contextlib.suppress(UnknownStatusName):
        Status.from_name(name)
    acl.status_of(name)


TARGETS: tuple[Callable[[Input], None], ...] = (
    fuzz_refusal,
    fuzz_acl,
    fuzz_dmq,
    fuzz_jwt,
    fuzz_daq,
    fuzz_devdb,
    fuzz_status,
)
#: target name (``fuzz_<name>``) -> its selector byte, for seeds and tests
SELECTORS = {target.__name__.removeprefix("fuzz_"): i for i, target in enumerate(TARGETS)}


def test_one_input(data: bytes) -> None:
    if data:
        TARGETS[data[0] % len(TARGETS)](Input(data[1:]))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
