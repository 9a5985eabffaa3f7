"""Seed fuzz/corpus/{codec,engine,text}: the shared golden vectors and transcripts, and
what peers print (status lines, ACL output, DMQ deliveries, tokens, gRPC replies).

python fuzz/make_corpus.py [SHARED_DIR]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_SHARED = ROOT.parent / "tests" / "shared"
SELECTORS = {"dpm": {"request": 0, "reply": 1}, "daqdata": {"request": 2, "reply": 3}}


def _transcripts(shared: Path) -> list[list[dict]]:
    return [
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for path in sorted((shared / "transcripts").glob("*.jsonl"))
    ]


def engine_seeds(shared: Path) -> list[bytes]:
    """Programs for fuzz_engine.py: each transcript's peer bytes, in either role."""
    out = []
    for lines in _transcripts(shared):
        for role, peer in ((0, "s2c"), (1, "c2s")):
            program = bytearray([role])
            for chunk in (bytes.fromhex(x["hex"]) for x in lines if x["dir"] == peer):
                for at in range(0, len(chunk), 255):
                    part = chunk[at : at + 255]
                    program += bytes([0, len(part)]) + part
            out.append(bytes(program))
    return out


def seeds(shared: Path) -> list[bytes]:
    out = []
    for protocol, kinds in SELECTORS.items():
        for vector in json.loads((shared / "vectors" / f"{protocol}.json").read_text())["vectors"]:
            out.append(bytes([kinds[vector["kind"]]]) + bytes.fromhex(vector["hex"]))
    for lines in _transcripts(shared):
        s2c = b"".join(bytes.fromhex(x["hex"]) for x in lines if x["dir"] == "s2c")
        c2s = b"".join(bytes.fromhex(x["hex"]) for x in lines if x["dir"] == "c2s")
        out.append(bytes([0xC1]) + s2c)
        out.append(bytes([0xF0]) + c2s)
    return out


def _chunk(data: bytes) -> bytes:
    """fuzz_text.py's ``Input.chunk``: one length byte, then the bytes."""
    return bytes([len(data)]) + data


def _block(data: bytes) -> bytes:
    """fuzz_text.py's ``Input.block``: two length bytes, little-endian, then the bytes."""
    return len(data).to_bytes(2, "little") + data


def _refusal_seeds() -> list[bytes]:
    lines = [
        b"/1.1 503 Service Unavailable\r\n\r\n",
        b"/1.1 \xc2\xb2\xc2\xb9 Unavailable\r\n",
        b"/1.0",
    ]
    return [bytes([step]) + line for step in (0, 3) for line in lines]


def _acl_seeds() -> list[bytes]:
    from acnet_proto.services import acl

    lines = [
        acl.format_value("M:OUTTMP", 41.7, "DegF"),
        acl.format_value("Z:ACLTS1", [1.0, 2.5, -3e-7]),
        acl.format_raw("M:OUTTMP", b"\x01\x02\xff\x00", 2),
        acl.format_value("M:OUTTMP", "Outdoor temperature"),
        acl.format_value("G:AMANDA", 1.0, "A"),
    ]
    error = acl.format_error("Invalid device name (Z:NOTFND) in read command", "DIO_NO_SUCH")
    whole = "\n".join(lines)
    stopped = "\n".join([*lines[:2], error]) + "\0" + error + "\0" + "\n".join(lines[3:])
    return [
        _chunk(charset) + output.encode("utf-8")
        for charset in (b"utf-8", b"", b"idna")
        for output in (whole, stopped, "! Syntax error - CLIB_SYNTAX")
    ]


def _dmq_seeds() -> list[bytes]:
    import struct

    stamp = (1_700_000_000_000).to_bytes(8, "little") + bytes(8) + b"\0"
    double = stamp + b"\0" + struct.pack("<d", 41.7)
    text = stamp + b"\5" + _chunk(b"text")
    pending = stamp + b"\x0a" + (35).to_bytes(4, "little") + (1).to_bytes(4, "little") + _chunk(b"")
    props = _chunk(b"app") + _chunk(b"\xff") + _chunk(b"\x7f\0\0\1")

    def delivery(key: bytes, sample: bytes) -> bytes:
        return key + b"\1" + b"\1" + sample + props

    reply = delivery(b"\0\0", double) + delivery(b"\0\1", text) + delivery(b"\0\2", double)
    return [
        b"\0" + reply,
        b"\1" + reply + delivery(b"\1", b"") + delivery(b"\5" + _chunk(b"R.\xff"), double),
        b"\2" + delivery(b"\2", pending) + delivery(b"\0\0", double),
    ]


def _jwt_seeds() -> list[bytes]:
    claims = [b'{"sub":"operator","exp":1700000000,"realm_access":{"roles":["ops"]}}', b"[" * 3]
    token = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcGVyYXRvciJ9.c2ln"
    return [b"\0" + payload for payload in claims] + [b"\1" + token]


def _daq_seeds() -> list[bytes]:
    import struct

    from acnet_proto.services import daq
    from acnet_proto.types import Reading, ValueType

    read = Reading("M:OUTTMP", ValueType.SCALAR, value=41.7)
    failed = Reading("G:AMANDA", facility_code=17, error_code=-17, message="no")
    replies = [daq.reading_reply(0, read), daq.reading_reply(2, failed)]
    settings = daq.setting_reply([0, -4334]).SerializeToString()
    entry = (1_700_000_000).to_bytes(8, "little") + bytes(4) + bytes(8) + _chunk(b"")
    built = b"\0\0\2" + (entry + b"\1" + struct.pack("<d", 1.5)) * 2
    return [b"\0" + _block(r.SerializeToString()) + settings for r in replies] + [b"\1" + built]


def _devdb_seeds() -> list[bytes]:
    from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
    from acnet_proto.sim import DeviceModel
    from acnet_proto.sim import devdb as sim_devdb

    model = DeviceModel.default()
    names = ["M:OUTTMP", "Z:ACLTST", "Z:NOTFND"]
    infos = DevDB_pb2.DeviceInfoReply(set=[sim_devdb.info_entry(model, n) for n in names])
    alarms = sim_devdb.alarm_info_reply(model, names[:2])
    texts = DevDB_pb2.DeviceAlarmTextList(
        device_alarm_text=[DevDB_pb2.DeviceAlarmText(alarm_text_id=1, text="hot", url="u")]
    )
    return [
        bytes([kind]) + reply.SerializeToString()
        for kind, reply in enumerate([infos, alarms, texts])
    ]


def _status_seeds() -> list[bytes]:
    return [b"DIO_NO_SUCH", b"dpm_priv", b"ACNET_\xc2\xb2"]


#: fuzz_text.py's targets, in the order of its selector bytes, and their seeds
TEXT_SEEDS = {
    "refusal": _refusal_seeds,
    "acl": _acl_seeds,
    "dmq": _dmq_seeds,
    "jwt": _jwt_seeds,
    "daq": _daq_seeds,
    "devdb": _devdb_seeds,
    "status": _status_seeds,
}


def text_seeds(shared: Path) -> list[bytes]:
    """Inputs for fuzz_text.py: each target's selector byte, then what a peer would send."""
    return [
        bytes([selector]) + seed
        for selector, make in enumerate(TEXT_SEEDS.values())
        for seed in make()
    ]


SEEDS = {"codec": seeds, "engine": engine_seeds, "text": text_seeds}


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SHARED
    for name, make in SEEDS.items():
        corpus = ROOT / "corpus" / name
        corpus.mkdir(parents=True, exist_ok=True)
        for seed in make(shared):
            (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


if __name__ == "__main__":
    main()
