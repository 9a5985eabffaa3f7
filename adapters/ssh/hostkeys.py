"""Which host keys an :class:`~acnet_proto.adapters.ssh.SSHClient` trusts, decided without I/O.

The client reads files and talks to servers; everything it decides about a
host key is here, as pure functions of text, names and key bytes, so each
rule is testable without a socket:

* :func:`host_key_policy`: which known_hosts file applies and how strictly
  (``known_hosts=`` argument, and the user's own file if it exists);
* :func:`parse_known_hosts`: an OpenSSH known_hosts text as
  :class:`KnownHost` entries, each with its line number;
* :func:`judge`: the :class:`Verdict` on the key a host offered;
* :func:`preferred_algorithms`: the host key algorithms to ask for, the
  types the file lists for the host first, so a host known by one key type
  is not accepted on the strength of another.

Host patterns follow OpenSSH: ``host`` for port 22 and ``[host]:port``
otherwise, comma-separated, case-insensitive, ``*`` and ``?`` wildcards,
``!`` negation, and hashed names (``|1|salt|hash``, HMAC-SHA1, as
``HashKnownHosts`` writes them). ``@revoked`` lines refuse a key for the
hosts they match; ``@cert-authority`` lines are ignored (certificates are
not accepted as host keys here).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import os
import re
import shlex
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "ACCEPT_ANY",
    "Checking",
    "HostKeyCheck",
    "HostKeyPolicy",
    "KnownHost",
    "KnownHostsArg",
    "Verdict",
    "fingerprint",
    "host_key_policy",
    "host_pattern",
    "judge",
    "listed_types",
    "parse_known_hosts",
    "preferred_algorithms",
    "refusal_message",
]

#: ``SSHClient(..., known_hosts=ACCEPT_ANY)`` accepts any host key (pacsys's behaviour).
ACCEPT_ANY: Literal[False] = False

KnownHostsArg = str | os.PathLike[str] | Literal[False] | None


class Checking(enum.Enum):
    """How strictly host keys are checked."""

    STRICT = "strict"  # a file given explicitly: hosts it does not list are refused
    USER_FILE = "user-file"  # the user's own file: unlisted hosts accepted, with a warning
    OFF = "off"  # any key accepted


@dataclass(frozen=True)
class HostKeyPolicy:
    """The file host keys are checked against (None when ``checking`` is OFF)."""

    checking: Checking
    path: Path | None = None


def host_key_policy(known_hosts: object, user_file: Path | None) -> HostKeyPolicy:
    """The policy for an ``SSHClient(known_hosts=...)`` argument.

    ``known_hosts`` is what the caller passed (checked here, hence ``object``;
    :data:`KnownHostsArg` is what it may be). ``user_file`` is the user's
    OpenSSH file (``~/.ssh/known_hosts``) if it exists, else None.

    * ``None`` (the default): check against ``user_file``, accepting hosts it
      does not list with a warning (:attr:`Checking.USER_FILE`); check
      nothing when there is no such file.
    * a path: check against that file and refuse hosts it does not list
      (:attr:`Checking.STRICT`).
    * ``False`` (:data:`ACCEPT_ANY`): check nothing.

    Anything else is a ``TypeError``; an empty path a ``ValueError``.
    """
    if known_hosts is None:
        if user_file is None:
            return HostKeyPolicy(Checking.OFF)
        return HostKeyPolicy(Checking.USER_FILE, user_file)
    if known_hosts is False:
        return HostKeyPolicy(Checking.OFF)
    if not isinstance(known_hosts, str | os.PathLike):
        raise TypeError(
            "known_hosts must be a path, None (the user's ~/.ssh/known_hosts) or "
            f"False (accept any host key), got {known_hosts!r}"
        )
    if not os.fspath(known_hosts):
        raise ValueError("known_hosts is an empty path; give a file, None or False")
    return HostKeyPolicy(Checking.STRICT, Path(known_hosts).expanduser())


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class KnownHost:
    """One known_hosts line: its host patterns, key, and where it is.

    ``key`` is the decoded key blob, None if the line's base64 is broken (such
    a line still lists its hosts: a key cannot match it).
    """

    line: int
    patterns: tuple[str, ...]
    key_type: str
    key: bytes | None
    marker: str = ""  # "", "@revoked" or "@cert-authority"


def parse_known_hosts(text: str) -> list[KnownHost]:
    """The entries of an OpenSSH known_hosts text; blank, comment and short lines skipped."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else ""
        if len(fields) < 3:
            continue
        names, key_type, blob = fields[:3]
        entries.append(KnownHost(number, tuple(names.split(",")), key_type, _decode(blob), marker))
    return entries


def _decode(blob: str) -> bytes | None:
    try:
        return base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return None


def host_pattern(hostname: str, port: int) -> str:
    """How known_hosts names a host: ``host`` on port 22, ``[host]:port`` otherwise."""
    host = hostname.lower()
    return host if port == 22 else f"[{host}]:{port}"


def _matches(patterns: Sequence[str], name: str) -> bool:
    """OpenSSH's rule: any pattern matches and no negated (``!``) one does."""
    hit = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _match_one(pattern[1:] if negated else pattern, name):
            if negated:
                return False
            hit = True
    return hit


def _match_one(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        salt, _, digest = pattern[3:].partition("|")
        try:
            mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(mac, base64.b64decode(digest))
        except (binascii.Error, ValueError):
            return False
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower()
    )
    return re.fullmatch(regex, name, re.DOTALL) is not None


# --------------------------------------------------------------------------- the verdict


class Verdict(enum.Enum):
    """What to do with the key a host offered."""

    TRUSTED = "trusted"  # listed for this host: go on
    UNLISTED_ACCEPTED = "unlisted-accepted"  # host not in the user's file: go on, warn once
    UNLISTED_REFUSED = "unlisted-refused"  # host not in a file given explicitly: refuse
    CHANGED = "changed"  # the host is listed with other keys only: refuse
    REVOKED = "revoked"  # an @revoked line names this key: refuse

    @property
    def refused(self) -> bool:
        return self in (Verdict.UNLISTED_REFUSED, Verdict.CHANGED, Verdict.REVOKED)


@dataclass(frozen=True)
class HostKeyCheck:
    """A :class:`Verdict` and the lines behind it (the conflicting ones for a refusal)."""

    verdict: Verdict
    lines: tuple[KnownHost, ...] = ()


def judge(
    entries: Sequence[KnownHost], name: str, key_type: str, key: bytes, *, strict: bool
) -> HostKeyCheck:
    """The verdict on ``key`` (type ``key_type``, blob ``key``) offered by host ``name``.

    ``name`` is :func:`host_pattern`'s. A listed key of the host that equals
    the offered one trusts it; a host listed only with other keys (of any
    type) is CHANGED, so a host known by an ed25519 key cannot pass with an
    RSA one; a host not listed at all is refused if ``strict`` (a file given
    explicitly) and accepted otherwise (the user's own file, see
    :class:`Checking`). A matching ``@revoked`` line refuses first.
    """
    for_host = [e for e in entries if e.marker != "@cert-authority" and _matches(e.patterns, name)]
    revoked = tuple(e for e in for_host if e.marker == "@revoked" and _same(e, key_type, key))
    if revoked:
        return HostKeyCheck(Verdict.REVOKED, revoked)
    listed = tuple(e for e in for_host if e.marker == "")
    if any(_same(e, key_type, key) for e in listed):
        return HostKeyCheck(Verdict.TRUSTED)
    if listed:
        return HostKeyCheck(Verdict.CHANGED, listed)
    return HostKeyCheck(Verdict.UNLISTED_REFUSED if strict else Verdict.UNLISTED_ACCEPTED)


def _same(entry: KnownHost, key_type: str, key: bytes) -> bool:
    listed = entry.key
    return entry.key_type == key_type and listed is not None and hmac.compare_digest(listed, key)


def listed_types(entries: Sequence[KnownHost], name: str) -> set[str]:
    """The key types the file lists for host ``name`` (not revoked, not CA lines)."""
    return {e.key_type for e in entries if e.marker == "" and _matches(e.patterns, name)}


def preferred_algorithms(available: Sequence[str], known_types: Collection[str]) -> list[str]:
    """``available`` host key algorithms, those whose key type is in ``known_types`` first.

    ``rsa-sha2-256``/``-512`` sign with ``ssh-rsa`` keys, as known_hosts
    records them. Order within each group is kept.
    """

    def key_type(algorithm: str) -> str:
        return "ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm

    first = [a for a in available if key_type(a) in known_types]
    return first + [a for a in available if key_type(a) not in known_types]


def fingerprint(key: bytes | None) -> str:
    """OpenSSH's fingerprint of a key blob: ``SHA256:`` and unpadded base64."""
    if key is None:
        return "(unreadable key)"
    return "SHA256:" + base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")


def refusal_message(check: HostKeyCheck, name: str, key_type: str, key: bytes, path: Path) -> str:
    """Why a refused host key was refused, and what to do about it (OpenSSH's advice)."""
    offered = f"the {key_type} key {fingerprint(key)}"
    where = f"{path} line{'s' if len(check.lines) > 1 else ''} " + ", ".join(
        str(e.line) for e in check.lines
    )
    if check.verdict is Verdict.REVOKED:
        return (
            f"{name} offered {offered}, which {where} marks @revoked; refused before "
            "any credential was sent. Ask the host's administrators for its current key."
        )
    if check.verdict is Verdict.CHANGED:
        listed = "; ".join(f"{e.key_type} {fingerprint(e.key)}" for e in check.lines)
        return (
            f"REMOTE HOST IDENTIFICATION HAS CHANGED for {name}: it offered {offered}, "
            f"but {where} lists {listed}. Someone may be intercepting the connection, or "
            "the host's key was replaced; it was refused before any credential was sent. "
            "If the host's administrators confirm the new fingerprint, remove the old "
            f"entry with `ssh-keygen -R {shlex.quote(name)} -f {shlex.quote(str(path))}` "
            "and add the new key (connect once with OpenSSH's ssh)."
        )
    return (
        f"{name} is not in {path} (it offered {offered}); refused before any credential "
        "was sent. If that fingerprint is the host's (ask its administrators), add the "
        f"host's key to {path}, e.g. by connecting once with OpenSSH's ssh."
    )
