"""Every Python block in docs/ runs, and prints what the page says it prints.

A page's blocks run in order in one namespace. A ```text block right after a
```python block is that block's expected output. A page names the server its
examples need with an HTML comment the reader never sees:

    <!-- docs-test: transcript=read-one-shot -->   a scripted server replaying
                                                   ../shared/transcripts/<name>.jsonl
The server's address reaches the examples as ACNET_DPM_HOST / ACNET_DPM_PORT,
the same variables users set.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from acnet_proto.transcript import load
from tests.servers.scripted import ScriptedServer
from tests.vectors import SHARED

DOCS = Path(__file__).resolve().parents[1] / "docs"
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


@contextlib.contextmanager
def _server_for(text: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    options = dict(
        item.split("=", 1)
        for match in DIRECTIVE.finditer(text)
        for item in match.group(1).split()
    )
    if "transcript" not in options:
        yield None
        return
    lines = load(SHARED / "transcripts" / f"{options['transcript']}.jsonl")
    with ScriptedServer(lines) as server:
        monkeypatch.setenv("ACNET_DPM_HOST", server.host)
        monkeypatch.setenv("ACNET_DPM_PORT", str(server.port))
        yield server


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = page.read_text()
    examples = _examples(text)
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    with _server_for(text, monkeypatch) as server:
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
