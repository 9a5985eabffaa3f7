"""atheris harness: the SDD decoders and the framer raise only ProtocolError.

Run a long session with (see fuzz/README.md):

    python fuzz/fuzz_codec.py fuzz/corpus/codec -max_total_time=3600

The first input byte picks the target; the rest is the data. Any exception
other than :class:`acnet_proto.ProtocolError` is a bug and stops the run.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from acnet_proto import ProtocolError
    from acnet_proto.engine.framing import FrameSplitter, HandshakeReader
    from acnet_proto.pc import daqdata, dpm

DECODERS = (dpm.decode_request, dpm.decode_reply, daqdata.decode_request, daqdata.decode_reply)


def _split(data: bytes, seed: int) -> None:
    splitter = FrameSplitter(max_frame_size=1 << 16, detect_http_refusal=bool(seed & 1))
    step = (seed >> 1) % 7 + 1
    for i in range(0, len(data), step):
        for frame in splitter.feed(data[i : i + step]):
            dpm.decode_reply(frame)
    splitter.close()


def _handshake(data: bytes) -> None:
    HandshakeReader().feed(data)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    selector, body = data[0], data[1:]
    try:
        if selector < 0xC0:
            DECODERS[selector % len(DECODERS)](body)
        elif selector < 0xF0:
            _split(body, selector)
        else:
            _handshake(body)
    except ProtocolError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
