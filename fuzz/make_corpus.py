"""Seed fuzz/corpus/codec from the shared golden vectors and transcripts.

    python fuzz/make_corpus.py [SHARED_DIR]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_SHARED = ROOT.parent.parent / "shared"
SELECTORS = {"dpm": {"request": 0, "reply": 1}, "daqdata": {"request": 2, "reply": 3}}


def seeds(shared: Path) -> list[bytes]:
    out = []
    for protocol, kinds in SELECTORS.items():
        for vector in json.loads((shared / "vectors" / f"{protocol}.json").read_text())["vectors"]:
            out.append(bytes([kinds[vector["kind"]]]) + bytes.fromhex(vector["hex"]))
    for transcript in sorted((shared / "transcripts").glob("*.jsonl")):
        lines = [json.loads(line) for line in transcript.read_text().splitlines() if line.strip()]
        s2c = b"".join(bytes.fromhex(x["hex"]) for x in lines if x["dir"] == "s2c")
        c2s = b"".join(bytes.fromhex(x["hex"]) for x in lines if x["dir"] == "c2s")
        out.append(bytes([0xC1]) + s2c)
        out.append(bytes([0xF0]) + c2s)
    return out


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SHARED
    corpus = ROOT / "corpus" / "codec"
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in seeds(shared):
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


if __name__ == "__main__":
    main()
