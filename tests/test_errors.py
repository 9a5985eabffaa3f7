"""One error hierarchy: every error the project raises on purpose is an AcnetProtoError.

The classes are found by walking every module of the package (core and
adapters), so a new error class cannot stand apart unnoticed; the tree on
``docs/errors.md`` is checked against them.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import acnet_proto
from acnet_proto.errors import AcnetProtoError
from tests.support import ROOT

# the adapters of extras this venv may lack are skipped, not failed: test_wheel checks them
_OPTIONAL = ("grpc", "pika", "gssapi", "paramiko", "trio", "requests", "jwt", "google")


def _modules() -> list[str]:
    names = []
    for root in ("acnet_proto", "acnet_proto.adapters"):
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, root + "."):
            if ".protos" not in info.name and not info.name.startswith(
                "acnet_proto.adapters.grpc.stubs"
            ):
                names.append(info.name)
    return names


def _error_classes() -> dict[type[BaseException], str]:
    """Every exception class defined in the project, public or not, and its module."""
    found: dict[type[BaseException], str] = {}
    for name in ["acnet_proto", *_modules()]:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if exc.name and exc.name.partition(".")[0] in _OPTIONAL:
                continue
            raise
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[value] = module.__name__
    return found


ERRORS = _error_classes()
PUBLIC = {cls: module for cls, module in ERRORS.items() if not cls.__name__.startswith("_")}


def test_the_walk_finds_the_errors_of_every_layer() -> None:
    modules = set(PUBLIC.values())
    assert {"acnet_proto.errors", "acnet_proto.drf.request", "acnet_proto.sim.loader"} <= modules
    assert any(m.startswith("acnet_proto.adapters.") for m in modules)


@pytest.mark.parametrize(
    "cls", sorted(PUBLIC, key=lambda c: c.__qualname__), ids=lambda c: c.__name__
)
def test_every_public_error_is_an_acnet_proto_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, AcnetProtoError), (
        f"{PUBLIC[cls]}.{cls.__name__} does not derive from acnet_proto.errors.AcnetProtoError"
    )


def test_private_errors_are_control_flow_that_never_leaves_its_module() -> None:
    """A private exception class is caught where it is raised; its name says so."""
    for cls, module in ERRORS.items():
        if cls.__name__.startswith("_"):
            source = inspect.getsource(importlib.import_module(module))
            assert f"except {cls.__name__}" in source, f"{module}.{cls.__name__} is never caught"


def render_tree() -> str:
    """The hierarchy as the errors page draws it: each class under its first project base,
    with its module and any other base."""
    children: dict[type[BaseException], list[type[BaseException]]] = {}
    for cls in PUBLIC:
        if cls is AcnetProtoError:
            continue
        parent = next(b for b in cls.__mro__[1:] if b in PUBLIC)
        children.setdefault(parent, []).append(cls)

    def label(cls: type[BaseException]) -> str:
        parent = next((b for b in cls.__mro__[1:] if b in PUBLIC), None)
        others = [b.__name__ for b in cls.__bases__ if b is not parent and b is not Exception]
        also = f"; also {', '.join(others)}" if others else ""
        return f"{cls.__name__} ({PUBLIC[cls]}{also})"

    lines = [label(AcnetProtoError)]

    def walk(cls: type[BaseException], prefix: str) -> None:
        kids = sorted(children.get(cls, []), key=lambda c: c.__name__)
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{label(kid)}")
            walk(kid, prefix + ("    " if last else "│   "))

    walk(AcnetProtoError, "")
    return "\n".join(lines)


def test_the_errors_page_draws_the_tree_as_it_is() -> None:
    page = (ROOT / "docs" / "errors.md").read_text()
    match = re.search(r"<!-- error-tree -->\n```text\n(.*?)```", page, re.DOTALL)
    assert match, "docs/errors.md has no ```text block after <!-- error-tree -->"
    assert match.group(1).strip() == render_tree(), (
        "docs/errors.md's tree is out of date; it should be:\n" + render_tree()
    )


def test_the_top_level_exports_the_base() -> None:
    assert acnet_proto.AcnetProtoError is AcnetProtoError
