"""What tests/test_purity.py (the checkout) and tests/test_wheel.py (the built wheel) share.

The rule: the core (``acnet_proto`` and all of it but ``acnet_proto.adapters``) is sans-I/O.
No ``import`` statement of its code names a module of :data:`FORBIDDEN` or
``acnet_proto.adapters``; importing it loads none of them, except what the runtime loads on
its behalf and :data:`RUNTIME_MAY_LOAD` allows; and it never sleeps.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from tests.support import ROOT

#: I/O (sockets, threads, event loops, processes, a command line) and the libraries of the extras
FORBIDDEN = (
    "socket",
    "selectors",
    "asyncio",
    "trio",
    "threading",
    "ssl",
    "subprocess",
    "argparse",
    "grpc",
    "pika",
    "requests",
    "gssapi",
    "paramiko",
)
#: Loaded on the core's behalf by the runtime, never by our code: on Python 3.11 reading a
#: catalogue with ``importlib.resources`` imports ``zipfile``, which imports ``threading``
#: (and starts no thread).
RUNTIME_MAY_LOAD = frozenset({"threading"})
ADAPTERS = "acnet_proto.adapters"
PROBE = Path(__file__).with_name("purity_probe.py")


def is_adapter(name: str) -> bool:
    return name == ADAPTERS or name.startswith(ADAPTERS + ".")


def is_ours(name: str) -> bool:
    return name == "acnet_proto" or name.startswith("acnet_proto.")


def package_dirs() -> dict[str, Path]:
    """pyproject's ``package-dir``: package name -> its folder in the checkout."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = pyproject["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


def source_modules(core: bool) -> dict[str, Path]:
    """Every module of the checkout's core (or its adapters): dotted name -> source file."""
    dirs = package_dirs()
    found: dict[str, Path] = {}
    for package, folder in dirs.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            # a folder mapped on its own (acnet_proto.adapters) is not part of its parent's
            owner = max((p for p in dirs if name == p or name.startswith(p + ".")), key=len)
            if owner == package and is_adapter(name) != core:
                found[name] = path
    return found


def run_probe(
    python: str | Path, *, roots: dict[str, Path] | None = None, core_only: bool = False
) -> dict[str, Any]:
    """Run tests/support/purity_probe.py with ``python``; its report (see the probe)."""
    config = {
        "forbidden": FORBIDDEN,
        "roots": {name: str(folder) for name, folder in (roots or {}).items()},
        "core_only": core_only,
    }
    result = subprocess.run(
        [str(python), str(PROBE), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"the import probe failed under {python}:\n{result.stderr}"
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return report


def describe(error: dict[str, Any]) -> str:
    """``ModuleNotFoundError: No module named 'grpc' (missing grpc; at .../x.py:12)``."""
    text = f"{error['type']}: {error['message']}"
    if error.get("missing"):
        text += f" (missing {error['missing']}"
        text += f"; raised at {error['where']})" if error.get("where") else ")"
    return text


def own_imports(report: dict[str, Any]) -> list[str]:
    """``import`` statements of core code naming a forbidden module or the adapters."""
    statements = report["statements"]
    return sorted({f"{i} imports {what}" for i, what in statements if not is_adapter(i)})


def core_loads(report: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """Forbidden modules loaded while importing core modules: (by our code, by the runtime).

    Each is ``[core module, forbidden module, who asked for it, ..., our module]``: by our
    code when our module asked for it itself, else by the runtime on our behalf.
    """
    by_us: list[list[str]] = []
    by_runtime: list[list[str]] = []
    for name, module in report["modules"].items():
        if module["core"]:
            for chain in module["loaded"].values():
                (by_us if is_ours(chain[1]) else by_runtime).append([name, *chain])
    return by_us, by_runtime


def shown(loads: list[list[str]]) -> str:
    """``acnet_proto.x: threading <- zipfile <- ... <- acnet_proto.pc._schema; ...``."""
    return "; ".join(f"{load[0]}: {' <- '.join(load[1:])}" for load in loads)
