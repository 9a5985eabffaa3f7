"""The host-key decisions of acnet_proto.adapters.ssh.hostkeys, without a socket.

Hashed names and fingerprints are checked against OpenSSH's own ssh-keygen
when it is installed, so the rules are OpenSSH's and not only this module's.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from acnet_proto.adapters.ssh.hostkeys import (
    ACCEPT_ANY,
    Checking,
    HostKeyPolicy,
    KnownHost,
    Verdict,
    fingerprint,
    host_key_policy,
    host_pattern,
    judge,
    listed_types,
    parse_known_hosts,
    preferred_algorithms,
    refusal_message,
)

ED = "ssh-ed25519"
RSA = "ssh-rsa"


def blob() -> bytes:
    return secrets.token_bytes(51)


def line(names: str, key: bytes, key_type: str = ED, marker: str = "") -> str:
    return f"{marker} {names} {key_type} {base64.b64encode(key).decode()}".strip()


def entries(*lines: str) -> list[KnownHost]:
    return parse_known_hosts("\n".join(lines) + "\n")


def keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        pytest.skip("OpenSSH's ssh-keygen is not installed")
    return found


# --------------------------------------------------------------------------- which file


def test_default_uses_the_user_file_leniently_and_nothing_without_it(tmp_path: Path) -> None:
    user = tmp_path / "known_hosts"
    assert host_key_policy(None, user) == HostKeyPolicy(Checking.USER_FILE, user)
    assert host_key_policy(None, None) == HostKeyPolicy(Checking.OFF)


def test_an_explicit_file_is_strict_and_wins_over_the_user_file(tmp_path: Path) -> None:
    given = tmp_path / "mine"
    assert host_key_policy(given, tmp_path / "user") == HostKeyPolicy(Checking.STRICT, given)
    assert host_key_policy(str(given), None) == HostKeyPolicy(Checking.STRICT, given)
    home_relative = host_key_policy("~/kh", None)
    assert home_relative.path is not None and "~" not in str(home_relative.path)


def test_false_accepts_any_key_even_with_a_user_file(tmp_path: Path) -> None:
    assert ACCEPT_ANY is False
    assert host_key_policy(ACCEPT_ANY, tmp_path / "user") == HostKeyPolicy(Checking.OFF)


def test_other_spellings_are_refused_by_name() -> None:
    for wrong in (True, 0, b"/etc/ssh/known_hosts", ["known_hosts"]):
        with pytest.raises(TypeError, match="known_hosts"):
            host_key_policy(wrong, None)
    with pytest.raises(ValueError, match="empty"):
        host_key_policy("", None)


# --------------------------------------------------------------------------- the file


def test_parse_keeps_line_numbers_markers_and_broken_keys() -> None:
    good, revoked = blob(), blob()
    text = "\n".join(
        [
            "# a comment",
            "",
            line("a.example,10.0.0.1", good),
            "short line",
            line("*", revoked, marker="@revoked"),
            f"b.example {ED} not*base64",
            line("*.example", blob(), marker="@cert-authority"),
        ]
    )
    parsed = parse_known_hosts(text)
    assert [(e.line, e.patterns, e.marker) for e in parsed] == [
        (3, ("a.example", "10.0.0.1"), ""),
        (5, ("*",), "@revoked"),
        (6, ("b.example",), ""),
        (7, ("*.example",), "@cert-authority"),
    ]
    assert parsed[0].key == good and parsed[1].key == revoked
    assert parsed[2].key is None


def test_host_pattern_brackets_non_standard_ports() -> None:
    assert host_pattern("Outland.FNAL.gov", 22) == "outland.fnal.gov"
    assert host_pattern("127.0.0.1", 2222) == "[127.0.0.1]:2222"


# --------------------------------------------------------------------------- the verdict


def test_listed_key_is_trusted_and_another_is_a_change() -> None:
    key, other = blob(), blob()
    known = entries("# header", line("[10.0.0.1]:2222", other))
    assert judge(known, "[10.0.0.1]:2222", ED, other, strict=True).verdict is Verdict.TRUSTED
    check = judge(known, "[10.0.0.1]:2222", ED, key, strict=False)
    assert check.verdict is Verdict.CHANGED and check.verdict.refused
    assert [e.line for e in check.lines] == [2]


def test_port_is_part_of_the_name() -> None:
    key = blob()
    known = entries(line("10.0.0.1", key))
    assert judge(known, "10.0.0.1", ED, key, strict=True).verdict is Verdict.TRUSTED
    assert judge(known, "[10.0.0.1]:2222", ED, key, strict=True).verdict is Verdict.UNLISTED_REFUSED


def test_a_host_listed_by_another_key_type_cannot_pass_with_a_new_one() -> None:
    known = entries(line("h", blob(), RSA))
    check = judge(known, "h", ED, blob(), strict=False)
    assert check.verdict is Verdict.CHANGED


def test_any_listed_key_of_the_type_will_do() -> None:
    old, new = blob(), blob()
    known = entries(line("h", old), line("h,g", new))
    assert judge(known, "h", ED, new, strict=True).verdict is Verdict.TRUSTED
    assert judge(known, "h", ED, old, strict=True).verdict is Verdict.TRUSTED


def test_unlisted_hosts_depend_on_strictness() -> None:
    known = entries(line("elsewhere", blob()))
    assert judge(known, "h", ED, blob(), strict=True).verdict is Verdict.UNLISTED_REFUSED
    lenient = judge(known, "h", ED, blob(), strict=False).verdict
    assert lenient is Verdict.UNLISTED_ACCEPTED and not lenient.refused
    assert judge([], "h", ED, blob(), strict=False).verdict is Verdict.UNLISTED_ACCEPTED


def test_a_broken_line_still_lists_its_host() -> None:
    known = parse_known_hosts(f"h {ED} ***\n")
    assert judge(known, "h", ED, blob(), strict=False).verdict is Verdict.CHANGED


def test_revoked_keys_are_refused_even_when_listed() -> None:
    key = blob()
    known = entries(line("h", key), line("*", key, marker="@revoked"))
    check = judge(known, "h", ED, key, strict=False)
    assert check.verdict is Verdict.REVOKED and [e.line for e in check.lines] == [2]


def test_cert_authority_lines_list_nothing() -> None:
    known = entries(line("*", blob(), marker="@cert-authority"))
    assert judge(known, "h", ED, blob(), strict=False).verdict is Verdict.UNLISTED_ACCEPTED


def test_wildcards_negation_and_case_follow_openssh() -> None:
    key = blob()
    known = entries(line("*.FNAL.gov,!bad.fnal.gov,[10.0.0.?]:2222", key))
    for name in ("clx01.fnal.gov", "[10.0.0.7]:2222"):
        assert judge(known, name, ED, key, strict=True).verdict is Verdict.TRUSTED
    for name in ("bad.fnal.gov", "fnal.gov.evil", "[10.0.0.17]:2222", "[10.0.0.7]:22"):
        assert judge(known, name, ED, key, strict=True).verdict is Verdict.UNLISTED_REFUSED
    assert listed_types(known, "x.fnal.gov") == {ED}
    assert listed_types(known, "bad.fnal.gov") == set()


def test_hashed_names_as_ssh_keygen_writes_them(tmp_path: Path) -> None:
    key, other = blob(), blob()
    plain = tmp_path / "known_hosts"
    plain.write_text(line("[127.0.0.1]:2222", key) + "\n" + line("outland.fnal.gov", other) + "\n")
    subprocess.run([keygen(), "-H", "-f", str(plain)], check=True, capture_output=True, timeout=20)
    hashed = parse_known_hosts(plain.read_text())
    assert all(p.startswith("|1|") for e in hashed for p in e.patterns)
    assert judge(hashed, "[127.0.0.1]:2222", ED, key, strict=True).verdict is Verdict.TRUSTED
    assert judge(hashed, "outland.fnal.gov", ED, key, strict=True).verdict is Verdict.CHANGED
    assert judge(hashed, "127.0.0.1", ED, key, strict=True).verdict is Verdict.UNLISTED_REFUSED


# --------------------------------------------------------------------------- the rest


def test_preferred_algorithms_put_listed_types_first() -> None:
    available = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    assert preferred_algorithms(available, {RSA}) == [
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
    ]
    assert preferred_algorithms(available, set()) == available


def test_fingerprint_is_openssh_s(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    subprocess.run(
        [keygen(), "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True, timeout=20
    )
    public = key_file.with_suffix(".pub")
    shown = subprocess.run(
        [keygen(), "-l", "-E", "sha256", "-f", str(public)],
        check=True,
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout.split()[1]
    assert fingerprint(base64.b64decode(public.read_text().split()[1])) == shown


def test_refusal_messages_say_what_happened_and_what_to_do(tmp_path: Path) -> None:
    key, old = blob(), blob()
    path = tmp_path / "known hosts"
    known = entries("#", line("[h]:2222", old))
    changed = refusal_message(
        judge(known, "[h]:2222", ED, key, strict=True), "[h]:2222", ED, key, path
    )
    for part in ("CHANGED", "[h]:2222", ED, fingerprint(key), fingerprint(old), "line 2"):
        assert part in changed
    assert f"ssh-keygen -R '[h]:2222' -f '{path}'" in changed
    unlisted = judge(known, "g", ED, key, strict=True)
    assert "is not in" in refusal_message(unlisted, "g", ED, key, path)
    revoked = judge(entries(line("*", key, marker="@revoked")), "g", ED, key, strict=True)
    assert "@revoked" in refusal_message(revoked, "g", ED, key, path)
