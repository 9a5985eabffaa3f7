"""The type stubs of the PC message modules (``acnet_proto/pc/dpm.pyi``, ``daqdata.pyi``).

The classes are made at import time from the catalogues, so a type checker sees them only
through these stubs, which ``scripts/regen-protos --stubs`` writes from the same catalogues.
Checked here: the committed stubs are what the script makes now; they name what the runtime
modules have; and (with mypy installed) mypy reads them as intended and stubtest finds them
true to the runtime.
"""

from __future__ import annotations

import ast
import enum
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from acnet_proto.pc import daqdata, dpm
from tests.support import ROOT

MODULES = {"dpm": dpm, "daqdata": daqdata}
STUBS = ROOT / "acnet_proto" / "pc"


def test_committed_stubs_are_what_regen_protos_makes(tmp_path: Path) -> None:
    # --stubs alone needs no grpcio-tools
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "regen-protos"), "--stubs", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    made = sorted(p.name for p in (tmp_path / "acnet_proto" / "pc").iterdir())
    assert made == [f"{name}.pyi" for name in sorted(MODULES)]
    stale = [
        name
        for name in made
        if (tmp_path / "acnet_proto" / "pc" / name).read_text() != (STUBS / name).read_text()
    ]
    assert not stale, f"stubs that differ from what scripts/regen-protos --stubs makes: {stale}"


def _classes(stub: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in stub.body if isinstance(node, ast.ClassDef)}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_stubs_name_what_the_module_has(name: str) -> None:
    module: ModuleType = MODULES[name]
    stub = ast.parse((STUBS / f"{name}.pyi").read_text())
    classes = _classes(stub)
    runtime = {cls.__name__: cls for cls in module.codec.classes.values()}
    enums = {e.__name__: e for e in module.codec.enums.values()}
    assert set(classes) == set(runtime) | set(enums)
    for cls_name, cls in runtime.items():
        body = classes[cls_name].body
        properties = [
            node.name
            for node in body
            if isinstance(node, ast.FunctionDef)
            and any(ast.unparse(d) == "property" for d in node.decorator_list)
        ]
        assert properties == list(cls.field_names), cls_name
        new = next(n for n in body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
        assert [a.arg for a in new.args.kwonlyargs] == list(cls.field_names), cls_name
        has_id = any(
            isinstance(n, ast.AnnAssign) and ast.unparse(n.target) == "message_id" for n in body
        )
        assert has_id == hasattr(cls, "message_id"), cls_name
    for enum_name, members in enums.items():
        assert issubclass(members, enum.IntEnum)
        written = {
            ast.unparse(n.targets[0]): ast.literal_eval(n.value)
            for n in classes[enum_name].body
            if isinstance(n, ast.Assign)
        }
        assert written == {m.name: m.value for m in members}, enum_name
    exported = next(
        n for n in stub.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "__all__"
    )
    assert sorted(ast.literal_eval(exported.value)) == sorted(module.__all__)


SNIPPET = """
import numpy as np
from numpy.typing import NDArray

from acnet_proto.pc import daqdata, dpm

request = dpm.AddToListRequest(list_id=1, ref_id=1, drf_request="M:OUTTMP@I")
drf: str = request.drf_request
reveal_type(request.drf_request)
reveal_type(dpm.StopListRequest.message_id)
reveal_type(dpm.encode(request))
reply = dpm.decode_reply(b"")
if isinstance(reply, dpm.ScalarArrayReply):
    data: NDArray[np.float64] = reply.data
match reply:
    case dpm.AddToListReply(list_id, ref_id, status):
        reveal_type(status)
reveal_type(dpm.DeviceInfoReply().units)
reveal_type(daqdata.BasicControlSampleReply(value=daqdata.BasicControl.ON).value)
dpm.AddToListRequest(list_id=1, ref_idx=1)  # E1: no such field
dpm.StopListRequest(48813)  # E2: keyword-only
request.drf_request = "M:OUTTMP"  # E3: read-only
number: int = request.drf_request  # E4: a str
"""


def test_mypy_reads_the_stubs(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent(SNIPPET))
    command = [sys.executable, "-m", "mypy", "--no-error-summary", "--follow-imports=silent"]
    command += ["--cache-dir", str(tmp_path / "cache"), "--no-color-output", str(snippet)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = [line.split(":", 1)[1] for line in result.stdout.splitlines() if ":" in line]
    revealed = [
        line.split('Revealed type is "')[1][:-1].replace("builtins.", "")
        for line in lines
        if "Revealed" in line
    ]
    assert revealed == [
        "str",
        "int",
        "bytes",
        "int",
        "str | None",
        "acnet_proto.pc.daqdata.BasicControl",
    ], result.stdout
    errors = sorted(int(line.split(":")[0]) for line in lines if ": error:" in line)
    expected = [n for n, text in enumerate(SNIPPET.splitlines(), 1) if "# E" in text]
    assert errors == expected, result.stdout
    assert 'Unexpected keyword argument "ref_idx"' in result.stdout


def test_stubtest_finds_the_stubs_true_to_the_runtime(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    # what mypy thinks of the implementation modules is not this test's business
    config = tmp_path / "mypy.ini"
    config.write_text(
        f"[mypy]\ncache_dir = {tmp_path / 'cache'}\n"
        "[mypy-acnet_proto.*]\nignore_errors = True\n"
        "[mypy-acnet_proto.pc.dpm,acnet_proto.pc.daqdata]\nignore_errors = False\n"
    )
    command = [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", str(config)]
    command += [f"acnet_proto.pc.{name}" for name in sorted(MODULES)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
