"""What the tests share: client faces, servers started by fixtures, fault proxies, vectors."""

from pathlib import Path

#: the checkout's top folder (pyproject.toml, docs/, fuzz/, protos/)
ROOT = Path(__file__).resolve().parents[2]
