"""The core is sans-I/O: importing every core module pulls in no socket, thread or event loop.

Checked in a fresh interpreter, so nothing this test run imported earlier can hide or cause
a violation. numpy (a core dependency) is imported first: whatever it brings is recorded,
and only an ``import`` statement in our own code counts against us for those.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

FORBIDDEN = (
    "socket",
    "selectors",
    "asyncio",
    "trio",
    "threading",
    "pika",
    "grpc",
    "requests",
    "gssapi",
    "ssl",
)
# Where the I/O lives, and the command-line entry point that drives it.
NOT_CORE = ("acnet_proto.adapters", "acnet_proto.adapters.cli.main")

PROBE = r"""
import builtins, importlib, json, pkgutil, sys

FORBIDDEN = set(json.loads(sys.argv[1]))
NOT_CORE = tuple(json.loads(sys.argv[2]))
loaded_by = {}  # module -> the module whose import statement loaded it first
loaded_during = {}  # module -> the core module being imported when it was loaded
direct = []  # [our module, forbidden module] for each such import statement we execute
real_import = builtins.__import__


def spy(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__") or "?"
    if level == 0 and name.partition(".")[0] in FORBIDDEN and importer.startswith("acnet_proto"):
        direct.append([importer, name])
    before = set(sys.modules)
    try:
        return real_import(name, globals, locals, fromlist, level)
    finally:
        for new in set(sys.modules) - before:
            loaded_by.setdefault(new, importer)


def chain(module):
    # The module, what imported it, what imported that ..., up to our own code.
    links = [module]
    while links[-1] in loaded_by and not links[-1].startswith("acnet_proto"):
        links.append(loaded_by[links[-1]])
    return links + [f"(while importing {loaded_during.get(module, 'numpy')})"]


def is_core(name):
    return not any(name == n or name.startswith(n + ".") for n in NOT_CORE)


builtins.__import__ = spy
import numpy  # noqa: E402

numpy_brought = sorted(m for m in sys.modules if m.partition(".")[0] in FORBIDDEN)
baseline = set(sys.modules)
imported, errors = [], {}


def walk(package):
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if not is_core(info.name):
            continue
        before = set(sys.modules)
        try:
            module = importlib.import_module(info.name)
        except Exception as e:  # reported by the test, naming the module
            errors[info.name] = f"{type(e).__name__}: {e}"
            continue
        for new in set(sys.modules) - before:
            loaded_by.setdefault(new, "<walk>")
            loaded_during.setdefault(new, info.name)
        imported.append(info.name)
        if info.ispkg:
            walk(module)


before = set(sys.modules)
import acnet_proto  # noqa: E402

for new in set(sys.modules) - before:
    loaded_during.setdefault(new, "acnet_proto")
imported.append("acnet_proto")
walk(acnet_proto)
new_forbidden = sorted(
    m for m in set(sys.modules) - baseline if m.partition(".")[0] in FORBIDDEN
)
print(json.dumps({
    "numpy_brought": {m: chain(m) for m in numpy_brought},
    "imported": imported,
    "errors": errors,
    "new_forbidden": {m: chain(m) for m in new_forbidden},
    "direct": direct,
    "not_core": sorted(m for m in sys.modules if m.startswith("acnet_proto") and not is_core(m)),
}))
"""


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(FORBIDDEN), json.dumps(NOT_CORE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"the import probe failed:\n{result.stderr}"
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return report


def test_every_core_module_imports(probe: dict[str, Any]) -> None:
    assert probe["errors"] == {}, "core modules that fail to import: " + ", ".join(
        f"{name} ({error})" for name, error in probe["errors"].items()
    )
    # The walk found the engine itself, so the checks below are about something.
    assert {
        "acnet_proto",
        "acnet_proto.engine._state",
        "acnet_proto.engine.connection",
        "acnet_proto.engine.events",
        "acnet_proto.engine.framing",
        "acnet_proto.pc.dpm",
        "acnet_proto.engine.transcript",
    } <= set(probe["imported"])


def test_core_modules_bring_in_no_io_module(probe: dict[str, Any]) -> None:
    offenders = [
        f"{module} (imported by {' <- '.join(how[1:])})"
        for module, how in probe["new_forbidden"].items()
        if module != "threading"  # see the next test
    ]
    assert not offenders, "importing the core loaded I/O modules: " + "; ".join(offenders)


def test_threading_is_loaded_only_by_the_runtime_never_by_our_code(
    probe: dict[str, Any], record_property: Callable[[str, object], None]
) -> None:
    """The one exception, as for numpy: ``threading`` may be loaded on the core's behalf.

    On Python 3.11 reading a catalogue with ``importlib.resources`` imports
    ``zipfile``, which imports ``threading``; numpy may too. Neither starts a
    thread. What is recorded here is how it got loaded; what is forbidden is an
    ``import`` statement in our code naming any I/O module, loaded already or not.
    """
    how = probe["new_forbidden"].get("threading") or probe["numpy_brought"].get("threading")
    record_property("threading_loaded_by", " <- ".join(how) if how else "nothing")
    if how:
        assert not how[1].startswith("acnet_proto"), f"{how[1]} imports threading"
    offenders = sorted({f"{importer} imports {module}" for importer, module in probe["direct"]})
    assert not offenders, "; ".join(offenders)


def test_core_modules_do_not_load_the_adapters(probe: dict[str, Any]) -> None:
    assert probe["not_core"] == [], f"importing the core loaded I/O modules: {probe['not_core']}"
