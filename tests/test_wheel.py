"""The purity rules hold as installed: the built wheel in fresh venvs, not only the checkout.

The wheel is built once (``pip wheel --no-deps --no-build-isolation`` from a copy of what
pyproject packages, so the checkout gets no ``build/``). Then fresh venvs (``python -m venv``,
no system site-packages, no pip: the dev venv's pip installs into them with ``--python``) are
made concurrently: one with the wheel's own requirements (numpy) alone, and one per extra of
the wheel's metadata but ``all`` and ``test`` with that extra's requirements too; the wheel
goes in ``--no-deps``. In each, tests/support/purity_probe.py walks every module of the
installed package (core, adapters and wire contracts) and reports what each import did. A
venv pip cannot fill from the package index skips this (fails in CI, ``CI`` set).

Asserted: (a) in every venv the core imports no I/O module by its own ``import`` statement,
loads none but what :data:`RUNTIME_MAY_LOAD` allows the runtime to load on its behalf, and
loads no adapter; (b) the core needs only numpy, but for the gRPC messages (protobuf, the
``grpc`` extra): those modules fail with a ModuleNotFoundError that says which extra to
install, and import where that extra is; (c) an adapter module imports or fails only for a
module an extra that venv lacks provides, and imports with one extra alone. The sleep check
is static (tests/test_purity.py).
"""

from __future__ import annotations

import email.parser
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.support import ROOT
from tests.support.purity import (
    RUNTIME_MAY_LOAD,
    core_loads,
    describe,
    is_adapter,
    own_imports,
    package_dirs,
    run_probe,
    shown,
    source_modules,
)
from tests.support.servers import ServerUnavailable, skip_or_fail

pytestmark = pytest.mark.slow

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: extras that are not a deployment of their own: every other one gets a venv
NOT_EXTRAS = ("all", "test")
EXTRAS = [e for e in PYPROJECT["project"]["optional-dependencies"] if e not in NOT_EXTRAS]
BASE = "numpy"  # the venv with the wheel's own requirements alone
VENVS = [BASE, *EXTRAS]
#: Distributions the core may need beyond numpy: protobuf, for the gRPC messages
#: (acnet_proto.protos.controls) that acnet_proto.services.daq/devdb read and make.
CORE_MAY_NEED = ("protobuf",)
#: Adapter modules that need two extras at once, by design, and which: each such set gets a venv
#: of its own, where the module must import (docs/backends.md says to install both).
NEEDS_TWO_EXTRAS: dict[str, tuple[str, ...]] = {
    # trio's flavour of DPM over gRPC: grpc's blocking stub, run in trio's worker threads
    "acnet_proto.adapters.grpc.trio": ("grpc", "trio"),
}
COMBINED = sorted(set(NEEDS_TWO_EXTRAS.values()))
#: every venv made: numpy alone, each extra, and each combination above
ALL_VENVS = [*VENVS, *("+".join(extras) for extras in COMBINED)]
# pip's words for "the package index could not be reached" (offline, no proxy, no DNS)
_UNREACHABLE = re.compile(
    r"Failed to establish a new connection|Temporary failure in name resolution|"
    r"Network is unreachable|Max retries exceeded|ConnectTimeout|Read timed out|ProxyError|"
    r"No matching distribution found|Could not find a version that satisfies"
)
ALL_MODULES = {**source_modules(core=True), **source_modules(core=False)}
ADAPTER_MODULES = sorted(source_modules(core=False))


class PipUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Venv:
    name: str
    extras: tuple[str, ...]
    requirements: tuple[str, ...]
    report: dict[str, Any]
    seconds: float

    @property
    def modules(self) -> dict[str, dict[str, Any]]:
        return self.report["modules"]


def _run(command: list[str], what: str, timeout: float = 300) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        tail = "\n".join(output.splitlines()[-15:])
        if command[1:4] == ["-m", "pip", "--python"] and _UNREACHABLE.search(output):
            raise PipUnavailable(f"pip could not install {what} from the package index:\n{tail}")
        raise AssertionError(f"{what} failed (exit {result.returncode}):\n{tail}")


# --- the wheel ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the checkout as it is now, built from a copy of what pyproject packages."""
    top = tmp_path_factory.mktemp("wheel")
    source, dist = top / "source", top / "dist"
    project = PYPROJECT["project"]
    files = ["pyproject.toml", project["readme"], *project.get("license-files", [])]
    source.mkdir()
    for name in files:
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in {f.relative_to(ROOT) for f in package_dirs().values()}:
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    _run([*command, "--no-build-isolation", "-w", str(dist), str(source)], "building the wheel")
    (built,) = dist.glob("acnet_proto-*.whl")
    return built


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def requirements(wheel: Path) -> dict[str, tuple[str, ...]]:
    """The wheel's own requirements (under :data:`BASE`) and each extra's, from its METADATA."""
    metadata = _metadata(wheel)
    extras = metadata.get_all("Provides-Extra") or []
    found: dict[str, list[str]] = {name: [] for name in (BASE, *extras)}
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        requirement.marker = None
        for name in found:
            if name == BASE:
                applies = marker is None or marker.evaluate({"extra": ""})
            else:
                applies = marker is not None and marker.evaluate({"extra": name})
            if applies:
                found[name].append(str(requirement))
    return {name: tuple(found[name]) for name in found if name not in NOT_EXTRAS}


# --- the venvs ---------------------------------------------------------------------------------


def make_venv(root: Path, name: str, wanted: tuple[str, ...], wheel: Path) -> Venv:
    start = time.monotonic()
    folder = root / name
    _run([sys.executable, "-m", "venv", "--without-pip", str(folder)], f"making the {name} venv")
    python = folder / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    _run([*pip, *wanted], f"{' '.join(wanted)} (the {name} venv)")
    _run([*pip, "--no-deps", str(wheel)], f"the wheel (the {name} venv)")
    report = run_probe(python)
    extras = () if name == BASE else tuple(name.split("+"))
    return Venv(name, extras, wanted, report, time.monotonic() - start)


@pytest.fixture(scope="session")
def venvs(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Venv], float]:
    """Every venv by name, made concurrently, and the seconds it took (wheel included)."""
    start = time.monotonic()
    wanted = requirements(wheel)
    base = wanted[BASE]
    assert sorted(wanted) == sorted(VENVS), f"the wheel's extras are not pyproject's: {wanted}"
    root = tmp_path_factory.mktemp("venvs")
    for extras in COMBINED:
        wanted["+".join(extras)] = tuple(r for extra in extras for r in wanted[extra])
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            name: pool.submit(make_venv, root, name, tuple(dict.fromkeys(base + extra)), wheel)
            for name, extra in wanted.items()
        }
        try:
            made = {name: future.result() for name, future in futures.items()}
        except PipUnavailable as exc:
            skip_or_fail(ServerUnavailable(str(exc)))
    return made, time.monotonic() - start


def provided_by(venvs: dict[str, Venv]) -> dict[str, set[str]]:
    """Top-level module name -> the extras whose venv has it and the base venv has not."""

    def tops(venv: Venv) -> set[str]:
        return {t for ts in venv.report["distributions"].values() for t in ts}

    base = tops(venvs[BASE])
    found: dict[str, set[str]] = {}
    for name, venv in venvs.items():
        for top in tops(venv) - base:
            found.setdefault(top, set()).add(name)
    return found


def core_may_need(venvs: dict[str, Venv]) -> set[str]:
    """The top-level modules of :data:`CORE_MAY_NEED`, as the venvs that have them say."""
    return {
        top
        for venv in venvs.values()
        for dist, tops in venv.report["distributions"].items()
        if dist in CORE_MAY_NEED
        for top in tops
    }


@pytest.fixture(scope="session")
def made(venvs: tuple[dict[str, Venv], float]) -> dict[str, Venv]:
    return venvs[0]


# --- what is in the wheel ----------------------------------------------------------------------


def test_timing(
    venvs: tuple[dict[str, Venv], float], record_property: Callable[[str, object], None]
) -> None:
    """Not a check: records how long the wheel and the venvs took (``-rA`` or junit shows it)."""
    made, seconds = venvs
    record_property("seconds", round(seconds, 1))
    for name, venv in made.items():
        record_property(f"seconds_{name}", round(venv.seconds, 1))
    print(
        f"wheel and {len(made)} venvs: {seconds:.1f} s; "
        + ", ".join(f"{n} {v.seconds:.1f} s" for n, v in made.items())
    )


def test_the_wheel_holds_every_module_and_the_type_stubs(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {
        "/".join(name.split(".")) + ("/__init__.py" if path.name == "__init__.py" else ".py")
        for name, path in ALL_MODULES.items()
    }
    shipped = {n for n in names if n.endswith(".py")}
    assert not expected - shipped, f"modules the wheel lacks: {sorted(expected - shipped)}"
    assert not shipped - expected, f"modules the wheel has in excess: {sorted(shipped - expected)}"
    for needed in (
        "acnet_proto/py.typed",
        "acnet_proto/pc/dpm.pyi",
        "acnet_proto/pc/daqdata.pyi",
        "acnet_proto/protos/pc/dpm.json",
        "acnet_proto/protos/acnet-status-codes.json",
        "acnet_proto/protos/controls/service/DAQ/v1/DAQ.proto",
        "acnet_proto/protos/controls/service/DAQ/v1/DAQ_pb2.pyi",
        "acnet_proto/adapters/grpc/stubs/DAQ_pb2_grpc.py",
    ):
        assert needed in names, f"the wheel lacks {needed}"
    stray = sorted(n for n in names if n.startswith("acnet_proto/protos/") and "_pb2_grpc" in n)
    assert not stray, f"gRPC stubs (they import grpc) among the wire contracts: {stray}"


def test_every_venv_walked_every_module(made: dict[str, Venv]) -> None:
    for venv in made.values():
        missing = sorted(set(ALL_MODULES) - set(venv.modules))
        assert not missing, f"the {venv.name} venv's probe never imported {missing}"


# --- (a) the core does no I/O, in every venv ---------------------------------------------------


@pytest.mark.parametrize("name", ALL_VENVS)
def test_the_core_imports_no_io_module(made: dict[str, Venv], name: str) -> None:
    report = made[name].report
    offenders = own_imports(report)
    assert not offenders, f"{name} venv: core import statements of I/O modules: {offenders}"
    by_us, by_runtime = core_loads(report)
    assert not by_us, f"{name} venv: core modules loaded I/O modules themselves: {shown(by_us)}"
    others = [load for load in by_runtime if load[1] not in RUNTIME_MAY_LOAD]
    assert not others, f"{name} venv: importing the core loaded I/O modules: {shown(others)}"
    adapters = report["adapters_after_core"]
    assert not adapters, f"{name} venv: importing the core loaded adapter modules: {adapters}"


# --- (b) the core needs numpy, and protobuf for the gRPC messages ------------------------------


def test_with_numpy_alone_the_core_imports_but_the_grpc_messages(
    made: dict[str, Venv], record_property: Callable[[str, object], None]
) -> None:
    needs = core_may_need(made)
    providers = provided_by(made)
    failed = {n: m["error"] for n, m in made[BASE].modules.items() if m["core"] and m["error"]}
    record_property("core_modules_needing_an_extra", sorted(failed))
    assert "acnet_proto.protos.controls" in failed, (
        "the gRPC messages import with numpy alone: if protobuf is a core dependency now, "
        "CORE_MAY_NEED and this test are out of date"
    )
    wrong = [
        f"{name}: {describe(error)}"
        for name, error in failed.items()
        if error["type"] != "ModuleNotFoundError"
        or (error["missing"] or "").partition(".")[0] not in needs
        or "pip install 'acnet-proto[" not in error["message"]
    ]
    assert not wrong, (
        f"core modules that fail with numpy alone other than for {CORE_MAY_NEED}, "
        f"or without saying which extra to install: {wrong}"
    )
    for name, error in failed.items():
        extras = providers.get(error["missing"].partition(".")[0], set())
        assert extras, f"{name} needs {error['missing']}, which no extra provides"
        working = [e for e in sorted(extras) if made[e].modules[name]["error"] is None]
        assert working, f"{name} fails even in the venvs of {sorted(extras)}: " + "; ".join(
            describe(made[e].modules[name]["error"]) for e in sorted(extras)
        )


@pytest.mark.parametrize("name", ALL_VENVS)
def test_core_modules_fail_only_for_the_grpc_messages(made: dict[str, Venv], name: str) -> None:
    needs = core_may_need(made)
    installed = {t for ts in made[name].report["distributions"].values() for t in ts}
    wrong = [
        f"{module}: {describe(m['error'])}"
        for module, m in made[name].modules.items()
        if m["core"]
        and m["error"]
        and (
            m["error"]["type"] != "ModuleNotFoundError"
            or (m["error"]["missing"] or "").partition(".")[0] not in needs - installed
        )
    ]
    assert not wrong, f"{name} venv: core modules failing other than for {CORE_MAY_NEED}: {wrong}"


# --- (c) an adapter needs one extra ------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_VENVS)
def test_adapters_fail_only_for_an_extra_this_venv_lacks(made: dict[str, Venv], name: str) -> None:
    venv, providers = made[name], provided_by(made)
    wrong = []
    for module, m in venv.modules.items():
        error = m["error"]
        if m["core"] or error is None:
            continue
        missing = (error["missing"] or "").partition(".")[0]
        lacking = providers.get(missing, set()) - set(venv.extras) - {BASE}
        if error["type"] != "ModuleNotFoundError" or not lacking:
            wrong.append(f"{module}: {describe(error)}")
    assert not wrong, (
        f"{name} venv: adapter modules failing other than for a module of an extra it lacks: "
        f"{wrong}"
    )


@pytest.mark.parametrize("module", ADAPTER_MODULES)
def test_an_adapter_module_imports_with_one_extra(made: dict[str, Venv], module: str) -> None:
    """With numpy alone or one extra: one needing two at once belongs elsewhere (or split),
    unless it is one of :data:`NEEDS_TWO_EXTRAS`, which must import with those."""
    assert is_adapter(module)
    if module in NEEDS_TWO_EXTRAS:
        combined = made["+".join(NEEDS_TWO_EXTRAS[module])]
        assert combined.modules[module]["error"] is None, describe(
            combined.modules[module]["error"]
        )
        assert all(
            v.modules[module]["error"] is not None for v in made.values() if len(v.extras) < 2
        ), f"{module} imports with one extra: take it out of NEEDS_TWO_EXTRAS"
        return
    if any(v.modules[module]["error"] is None for v in made.values() if len(v.extras) < 2):
        return
    providers = provided_by(made)
    errors: dict[str, list[str]] = {}
    needs: set[str] = set()
    for venv in made.values():
        error = venv.modules[module]["error"]
        errors.setdefault(describe(error), []).append(venv.name)
        top = (error["missing"] or "").partition(".")[0]
        needs |= providers.get(top, set()) - set(venv.extras)
    verdict = f"it needs the extras {sorted(needs)} at once" if len(needs) > 1 else ""
    pytest.fail(
        f"{module} imports in no venv with one extra{'; ' + verdict if verdict else ''}: "
        + "; ".join(f"{', '.join(names)}: {error}" for error, names in errors.items()),
        pytrace=False,
    )
