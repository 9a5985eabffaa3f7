"""Import every module of an installed acnet_proto and report what each import did.

Run as a script by a venv's own python (tests/test_purity.py: the dev venv, core only;
tests/test_wheel.py: fresh venvs with the built wheel), so it imports nothing from tests/.
Its one argument is a JSON object::

    {"forbidden": ["socket", ...], "roots": {"acnet_proto.protos": "/dir", ...}, "core_only": false}

``roots`` names packages that live outside ``acnet_proto``'s own folder: an editable install
maps ``acnet_proto.adapters`` and ``acnet_proto.protos`` from elsewhere, so a walk of
``acnet_proto.__path__`` never sees them. A wheel needs none.

The module list is made first, without importing anything: it is
:func:`pkgutil.walk_packages` without the import it does to descend into a package, which
would hide the modules of a package that fails to import here (a venv without that extra)
and load adapter packages before the core is measured. Then numpy (a core dependency) is
imported, and every module in turn, the core first (``acnet_proto`` and all of it but
``acnet_proto.adapters``), then the adapters, in this one interpreter. Two hooks watch:

* ``builtins.__import__``: every ``import`` statement our own code executes that names a
  forbidden module or ``acnet_proto.adapters``, loaded already or not;
* a ``sys.meta_path`` finder: for every module loaded, which module's code asked for it
  (importlib's frames skipped), so a forbidden module is traced to an ``import`` statement
  of ours, or to the runtime (``zipfile`` loading ``threading`` for ``importlib.resources``).

Prints one JSON line: the ``report`` built at the end.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import importlib.util
import json
import os
import pkgutil
import sys
import traceback
from typing import Any

CONFIG = json.loads(sys.argv[1])
FORBIDDEN = frozenset(CONFIG["forbidden"])
ADAPTERS = "acnet_proto.adapters"
# frames that are the import machinery or this probe, not the code that asked for a module
MACHINERY = frozenset(
    {
        "__main__",
        "importlib",
        "importlib._bootstrap",
        "importlib._bootstrap_external",
        "_frozen_importlib",
        "_frozen_importlib_external",
    }
)


def ours(name: str) -> bool:
    return name == "acnet_proto" or name.startswith("acnet_proto.")


def is_adapter(name: str) -> bool:
    return name == ADAPTERS or name.startswith(ADAPTERS + ".")


def is_core(name: str) -> bool:
    return ours(name) and not is_adapter(name)


# --- the module list, made without importing -----------------------------------------------------


def listing() -> dict[str, bool]:
    """Every module and package (name -> is a package) of the installed acnet_proto."""
    spec = importlib.util.find_spec("acnet_proto")
    assert spec is not None and spec.submodule_search_locations is not None
    roots = {"acnet_proto": list(spec.submodule_search_locations)}
    roots |= {name: [folder] for name, folder in CONFIG["roots"].items()}
    found: dict[str, bool] = {}

    def walk(paths: list[str], prefix: str) -> None:
        for info in pkgutil.iter_modules(paths, prefix):
            found[info.name] = info.ispkg
            if info.ispkg:
                short = info.name.rpartition(".")[2]
                walk([os.path.join(info.module_finder.path, short)], info.name + ".")  # type: ignore[union-attr]

    for name, paths in roots.items():
        found[name] = True
        walk(paths, name + ".")
    return found


MODULES = listing()

# --- the hooks -----------------------------------------------------------------------------------

asked_by: dict[str, str] = {}  # module -> the module whose code asked for it first
walking = ["<startup>"]  # the module the walk is importing
statements: list[list[str]] = []  # [our module, what its import statement names]
_real_import = builtins.__import__


def _asker() -> str:
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__") or "?"
        if name not in MACHINERY:
            return name
        frame = frame.f_back
    return "<probe>"


class Recorder:
    """A meta path finder that finds nothing and notes who asked for each new module."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name not in sys.modules and name not in asked_by:
            asked_by[name] = _asker()


def spy(
    name: str,
    globals: dict[str, Any] | None = None,
    locals: Any = None,
    fromlist: Any = (),
    level: int = 0,
) -> Any:
    importer = (globals or {}).get("__name__") or "?"
    if ours(importer):
        target = name
        if level:
            package = (globals or {}).get("__package__") or importer.rpartition(".")[0]
            with contextlib.suppress(ImportError, ValueError):
                target = importlib.util.resolve_name("." * level + name, package)
        named = [target, *(f"{target}.{item}" for item in fromlist or () if item != "*")]
        for what in named:
            if what.partition(".")[0] in FORBIDDEN or is_adapter(what):
                statements.append([importer, what])
                break
    return _real_import(name, globals, locals, fromlist, level)


def chain(module: str) -> list[str]:
    """The module, the module that asked for it, ... up to our own code (or the probe)."""
    links = [module]
    if module not in asked_by:
        return [module, "<loaded before the probe's hooks>"]
    while links[-1] in asked_by and not ours(links[-1]) and len(links) < 40:
        links.append(asked_by[links[-1]])
    return links


# --- the walk ------------------------------------------------------------------------------------

startup = {m for m in sys.modules if m in FORBIDDEN}
sys.meta_path.insert(0, Recorder)
builtins.__import__ = spy
walking.append("numpy")
import numpy  # noqa: E402, F401  (what a core dependency brings is not ours)

walking.pop()
numpy_brought = {m: chain(m) for m in sorted(sys.modules) if m in FORBIDDEN}
modules: dict[str, dict[str, Any]] = {}


def short(filename: str) -> str:
    """A file's path from its package on: the same in every venv."""
    return filename.rpartition(f"site-packages{os.sep}")[2]


def load(name: str) -> None:
    before = set(sys.modules)
    walking.append(name)
    error = None
    try:
        importlib.import_module(name)
    except Exception as exc:  # reported, naming the module
        # the innermost frame that is not this probe's hook or the import machinery
        last = [
            frame
            for frame in traceback.extract_tb(exc.__traceback__)
            if frame.filename != __file__
            and not frame.filename.startswith("<frozen")
            and os.path.dirname(frame.filename) != os.path.dirname(importlib.__file__)
        ][-1:]
        error = {
            "type": type(exc).__name__,
            "message": str(exc)[:500],
            "missing": exc.name if isinstance(exc, ModuleNotFoundError) else None,
            "name": getattr(exc, "name", None),
            "where": f"{short(last[0].filename)}:{last[0].lineno}" if last else None,
        }
    finally:
        walking.pop()
    loaded = sorted(m for m in set(sys.modules) - before if m in FORBIDDEN)
    modules[name] = {
        "core": is_core(name),
        "package": MODULES[name],
        "error": error,
        "loaded": {m: chain(m) for m in loaded},
    }


for name in sorted(n for n in MODULES if is_core(n)):
    load(name)
adapters_after_core = sorted(m for m in sys.modules if is_adapter(m))
if not CONFIG["core_only"]:
    for name in sorted(n for n in MODULES if is_adapter(n)):
        load(name)

builtins.__import__ = _real_import
sys.meta_path.remove(Recorder)

# only now: importlib.metadata loads email.utils, which loads socket
import importlib.metadata  # noqa: E402

distributions: dict[str, list[str]] = {}
for top, names in importlib.metadata.packages_distributions().items():
    for dist in names:
        distributions.setdefault(dist.lower().replace("_", "-"), []).append(top)

report = {
    "python": sys.version,
    "startup": sorted(startup),
    "numpy_brought": numpy_brought,
    "modules": modules,
    "statements": statements,
    "adapters_after_core": adapters_after_core,
    "distributions": {d: sorted(set(tops)) for d, tops in sorted(distributions.items())},
}
print(json.dumps(report))
