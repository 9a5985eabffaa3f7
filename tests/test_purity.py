"""The core is sans-I/O: importing every core module pulls in no socket, thread or event loop.

This is the fast check, on the checkout as the dev venv has it installed (editable): the
probe (tests/support/purity_probe.py) imports every core module in a fresh interpreter, so
nothing this test run imported earlier can hide or cause a violation. numpy (a core
dependency) is imported first: whatever it brings is recorded, and only an ``import``
statement in our own code counts against us for those. The walk covers every core package,
those pyproject maps from other folders (``acnet_proto.protos``) too.

The core's source is also read (``ast``): no import of an I/O module anywhere in it (inside
functions too), and no sleeping. tests/test_wheel.py checks the same rules against the built
wheel installed in fresh venvs, with and without each extra.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT
from tests.support.purity import (
    FORBIDDEN,
    RUNTIME_MAY_LOAD,
    core_loads,
    is_adapter,
    own_imports,
    package_dirs,
    run_probe,
    shown,
    source_modules,
)

CORE_SOURCES = source_modules(core=True)


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    roots = {name: folder for name, folder in package_dirs().items() if name != "acnet_proto"}
    return run_probe(sys.executable, roots=roots, core_only=True)


def test_every_core_module_imports(probe: dict[str, Any]) -> None:
    errors = {n: m["error"] for n, m in probe["modules"].items() if m["error"]}
    assert errors == {}, "core modules that fail to import: " + "; ".join(
        f"{name} ({error['type']}: {error['message']})" for name, error in errors.items()
    )


def test_the_walk_covers_every_core_module(probe: dict[str, Any]) -> None:
    walked = set(probe["modules"])
    assert not {n for n in walked if is_adapter(n)}, "the core-only walk imported adapters"
    missing = sorted(set(CORE_SOURCES) - walked)
    assert not missing, f"core modules the walk never imported: {missing}"
    # so the checks below are about something: the engine and the mapped wire contracts
    assert {
        "acnet_proto",
        "acnet_proto.engine.connection",
        "acnet_proto.engine.framing",
        "acnet_proto.pc.dpm",
        "acnet_proto.protos",
        "acnet_proto.protos.controls.service.DAQ.v1.DAQ_pb2",
        "acnet_proto.services.daq",
    } <= walked


def test_core_modules_bring_in_no_io_module(probe: dict[str, Any]) -> None:
    by_us, by_runtime = core_loads(probe)
    offenders = by_us + [load for load in by_runtime if load[1] not in RUNTIME_MAY_LOAD]
    assert not offenders, f"importing the core loaded I/O modules: {shown(offenders)}"


def test_threading_is_loaded_only_by_the_runtime_never_by_our_code(
    probe: dict[str, Any], record_property: Callable[[str, object], None]
) -> None:
    """The one exception, as for numpy: ``threading`` may be loaded on the core's behalf.

    On Python 3.11 reading a catalogue with ``importlib.resources`` imports
    ``zipfile``, which imports ``threading``; numpy may too. Neither starts a
    thread. What is recorded here is how it got loaded; what is forbidden is an
    ``import`` statement in our code naming any I/O module, loaded already or not.
    """
    _, by_runtime = core_loads(probe)
    how = [load for load in by_runtime if load[1] == "threading"]
    how += [["numpy", *chain] for m, chain in probe["numpy_brought"].items() if m == "threading"]
    record_property("threading_loaded_by", shown(how) or "nothing")
    offenders = own_imports(probe)
    assert not offenders, "; ".join(offenders)


def test_core_modules_do_not_load_the_adapters(probe: dict[str, Any]) -> None:
    loaded = probe["adapters_after_core"]
    assert loaded == [], f"importing the core loaded adapter modules: {loaded}"


# --- the source --------------------------------------------------------------------------------


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_no_core_source_imports_an_io_module() -> None:
    """Anywhere in the core's code, inside functions too (the probe only runs module bodies)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in CORE_SOURCES.values()
        for line, module in _imports(ast.parse(path.read_text(), str(path)))
        if module.partition(".")[0] in FORBIDDEN
    ]
    assert not offenders, "; ".join(offenders)


def sleeping(tree: ast.AST) -> list[str]:
    """Where a module sleeps, or takes a sleep function as a default.

    Flagged: any ``x.sleep(...)`` call; ``time.sleep`` (``asyncio.sleep``, ...) used at all,
    as a default argument value or otherwise, on a name bound by ``import``; ``from ...
    import sleep`` and that name's use; a ``.sleep`` default. Calling a ``sleep`` that a
    caller passed in (``def confirm(..., sleep)``) is the caller's choice, and allowed.
    """
    modules = {
        (alias.asname or alias.name).partition(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "sleep":
                    imported.add(alias.asname or alias.name)
                    found.append(f"{node.lineno}: imports sleep from {node.module}")
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "sleep":
                found.append(f"{line}: calls {ast.unparse(node.func)}()")
        elif isinstance(node, ast.Attribute) and node.attr == "sleep":
            if isinstance(node.value, ast.Name) and node.value.id in modules:
                found.append(f"{line}: uses {ast.unparse(node)}")
        elif isinstance(node, ast.Name) and node.id in imported:
            found.append(f"{line}: uses {node.id}")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if isinstance(default, ast.Attribute) and default.attr == "sleep":
                    found.append(f"{default.lineno}: defaults to {ast.unparse(default)}")
    return sorted(set(found), key=lambda text: int(text.partition(":")[0]))


@pytest.mark.parametrize(
    "path", sorted(CORE_SOURCES.values()), ids=lambda path: str(path.relative_to(ROOT))
)
def test_no_core_source_sleeps(path: Path) -> None:
    where = sleeping(ast.parse(path.read_text(), str(path)))
    assert not where, f"{path.relative_to(ROOT)} sleeps: " + "; ".join(where)


def test_the_sleep_check_catches_what_it_should() -> None:
    source = """
import time
import asyncio as aio
from time import sleep as nap

def f(wait=time.sleep, *, other=aio.sleep):
    time.sleep(1)
    clock.sleep(2)
    nap(3)

def g(sleep):
    sleep(4)
"""
    found = sleeping(ast.parse(source))
    assert {text.partition(":")[0] for text in found} == {"4", "6", "7", "8", "9"}
    assert "6: defaults to time.sleep" in found and "6: defaults to aio.sleep" in found
