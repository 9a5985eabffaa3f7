"""Recorded transcripts keep no Kerberos secrets, yet still decode and replay."""

from __future__ import annotations

import pytest

from acnet_proto.engine._state import Role
from acnet_proto.engine.transcript import Line, load, messages_of, redact, replay
from acnet_proto.pc import dpm
from tests.support.vectors import SHARED

WRITE = load(SHARED / "transcripts" / "write-kerberos.jsonl")


def _secrets(lines: list[Line]) -> list[bytes]:
    found = []
    for _, items in messages_of(lines):
        for item in items:
            if isinstance(item, dpm.AuthenticateRequest) and item.token:
                found.append(bytes(item.token))
            if isinstance(item, dpm.EnableSettingsRequest):
                found.append(bytes(item.mic))
    return found


def test_tokens_and_mics_are_zeroed_and_nothing_else_changes() -> None:
    clean = redact(WRITE)
    assert [len(line.data) for line in clean] == [len(line.data) for line in WRITE]
    assert all(not any(secret) for secret in _secrets(clean))
    assert len(_secrets(clean)) == len(_secrets(WRITE)) == 2
    changed = [i for i, (a, b) in enumerate(zip(WRITE, clean, strict=True)) if a != b]
    assert all(WRITE[i].direction == "c2s" for i in changed)
    for raw, red in zip(messages_of(WRITE), messages_of(clean), strict=True):
        kinds = [type(m) for m in raw[1]]
        assert kinds == [type(m) for m in red[1]]


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
def test_a_redacted_transcript_still_replays(role: Role) -> None:
    assert len(list(replay(redact(WRITE), role))) == len(WRITE)


def test_frames_split_across_lines_are_redacted_too() -> None:
    whole = b"".join(line.data for line in WRITE if line.direction == "c2s")
    # the client's bytes cut at every 7th byte: frames straddle lines
    pieces = [Line("c2s", whole[i : i + 7]) for i in range(0, len(whole), 7)]
    clean = b"".join(line.data for line in redact(pieces))
    assert len(clean) == len(whole)
    for secret in _secrets(WRITE):
        assert secret not in clean
    assert _secrets(redact(WRITE))[0] in clean  # the zeroed token is where the token was


def test_garbage_is_left_alone() -> None:
    junk = [Line("c2s", b"\x00\x00\x00\x03abc")]
    assert redact(junk) == junk
