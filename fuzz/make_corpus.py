"""Seed fuzz/corpus/{codec,engine} from the shared golden vectors and transcripts.

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


SEEDS = {"codec": seeds, "engine": engine_seeds}


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SHARED
    for name, make in SEEDS.items():
        corpus = ROOT / "corpus" / name
        corpus.mkdir(parents=True, exist_ok=True)
        for seed in make(shared):
            (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


if __name__ == "__main__":
    main()
