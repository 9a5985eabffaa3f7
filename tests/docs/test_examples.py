"""Every Python block in docs/ runs, and prints what the page says it prints.

A page's blocks run in order in one namespace. A ```text block right after a
```python block is that block's expected output. A page names the server its
examples need with an HTML comment the reader never sees:

    <!-- docs-test: transcript=read-one-shot -->   a scripted server replaying
                                                   tests/shared/transcripts/<name>.jsonl
    <!-- docs-test: sim -->                        the simulated DPM
    <!-- docs-test: sim-kdc -->                    the simulated DPM taking settings, with
                                                   the session KDC's keytab; KerberosAuth()
                                                   finds the KDC's ticket for operator
    <!-- docs-test: transcript-file=<name> -->     no server: <name>.jsonl is copied to
                                                   session.jsonl in the examples' directory
    <!-- docs-test: grpc -->                       the simulated DAQ gRPC service taking JWT
                                                   settings: ACNET_GRPC_HOST/_PORT, ACNET_JWT_KEY
    <!-- docs-test: acl -->                        the simulated ACL CGI: ACNET_ACL_URL
    <!-- docs-test: devdb -->                      the simulated DevDB: ACNET_DEVDB_HOST/_PORT
    <!-- docs-test: dmq -->                        the session RabbitMQ and KDC, and the
                                                   simulated DMQ: ACNET_DMQ_HOST/_PORT
    <!-- docs-test: qt -->                         PySide6 (the qt extra), with no display:
                                                   QT_QPA_PLATFORM=offscreen (combine: sim qt)

The server's address reaches the examples as ACNET_DPM_HOST / ACNET_DPM_PORT,
the same variables users set. Examples run in a fresh temporary directory.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from acnet_proto.engine.transcript import load
from tests.support import ROOT
from tests.support.servers.scripted import ScriptedServer
from tests.support.vectors import SHARED

DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->")


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "```python" in p.read_text())


def _examples(text: str) -> list[tuple[str, str | None]]:
    """(code, expected output or None) for each python block."""
    blocks = [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]
    out = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "python":
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        out.append((body, following[1] if following and following[0] == "text" else None))
    return out


def _directives(text: str) -> dict[str, str]:
    """The page's ``docs-test`` options: ``key=value`` items, and flags (value ``""``)."""
    items = (item for match in DIRECTIVE.finditer(text) for item in match.group(1).split())
    return {key: value for key, _, value in (item.partition("=") for item in items)}


@contextlib.contextmanager
def _server_for(
    text: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    options = _directives(text)
    known = {"transcript", "transcript-file", "sim", "sim-kdc", "grpc", "acl", "devdb", "dmq", "qt"}
    unknown = set(options) - known
    assert not unknown, f"unknown docs-test directive(s) {sorted(unknown)}"
    if "qt" in options:
        pytest.importorskip("PySide6")
        monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    if "transcript-file" in options:
        source = SHARED / "transcripts" / f"{options['transcript-file']}.jsonl"
        shutil.copy(source, Path.cwd() / "session.jsonl")
    with contextlib.ExitStack() as stack:
        server: object = None
        if "transcript" in options:
            lines = load(SHARED / "transcripts" / f"{options['transcript']}.jsonl")
            server = stack.enter_context(ScriptedServer(lines))
        elif "sim" in options or "sim-kdc" in options:
            from acnet_proto.adapters.sim.dpm import SimServer

            settings: dict[str, object] = {}
            if "sim-kdc" in options:
                pytest.importorskip("gssapi")
                settings["keytab"] = request.getfixturevalue("kdc").keytab
            server = stack.enter_context(SimServer.in_thread(**settings))
        if server is not None:
            monkeypatch.setenv("ACNET_DPM_HOST", server.host)
            monkeypatch.setenv("ACNET_DPM_PORT", str(server.port))
        for name in ("grpc", "acl", "devdb", "dmq"):
            if name in options:
                for variable, value in _OTHER_SERVERS[name](stack, request).items():
                    monkeypatch.setenv(variable, value)
        yield server
        from acnet_proto.adapters.default import shutdown

        shutdown()  # a page's global backend must not outlive its server


JWT_KEY = "docs-test-signing-key-of-at-least-32-bytes"


def _grpc(stack: contextlib.ExitStack, request: pytest.FixtureRequest) -> dict[str, str]:
    pytest.importorskip("grpc")
    from acnet_proto.adapters.sim.daq import DAQSimServer

    server = stack.enter_context(DAQSimServer(jwt_key=JWT_KEY))
    return {"ACNET_GRPC_HOST": server.host, "ACNET_GRPC_PORT": str(server.port),
            "ACNET_JWT_KEY": JWT_KEY}  # fmt: skip


def _acl(stack: contextlib.ExitStack, request: pytest.FixtureRequest) -> dict[str, str]:
    from acnet_proto.adapters.sim.acl import ACLSimServer

    return {"ACNET_ACL_URL": stack.enter_context(ACLSimServer()).base_url}


def _devdb(stack: contextlib.ExitStack, request: pytest.FixtureRequest) -> dict[str, str]:
    pytest.importorskip("grpc")
    from acnet_proto.adapters.sim.devdb import DevDBSimServer

    server = stack.enter_context(DevDBSimServer())
    return {"ACNET_DEVDB_HOST": server.host, "ACNET_DEVDB_PORT": str(server.port)}


def _dmq(stack: contextlib.ExitStack, request: pytest.FixtureRequest) -> dict[str, str]:
    pytest.importorskip("pika")
    pytest.importorskip("gssapi")
    from acnet_proto.adapters.sim.dmq import DMQSimServer

    broker = request.getfixturevalue("rabbitmq")
    keytab = request.getfixturevalue("kdc").keytab
    stack.enter_context(DMQSimServer(broker.url, keytab=keytab))
    return {"ACNET_DMQ_HOST": broker.host, "ACNET_DMQ_PORT": str(broker.port)}


_OTHER_SERVERS = {"grpc": _grpc, "acl": _acl, "devdb": _devdb, "dmq": _dmq}


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(
    page: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    text = page.read_text()
    examples = _examples(text)
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    monkeypatch.chdir(tmp_path)
    with _server_for(text, request, monkeypatch) as server:
        for number, (code, expected) in enumerate(examples, 1):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{page.name}[block {number}]", "exec"), namespace)
            if expected is not None:
                assert printed.getvalue().strip() == expected.strip(), (
                    f"{page.name} block {number} printed something other than the page shows"
                )
        errors = getattr(server, "errors", [])
    assert not errors, f"{page.name}: the server saw bytes the transcript does not have: {errors}"
