"""The per-step field schema is written once per side of the C++ boundary (hmasd/rollout_fields.py and
csrc/rollout_fields.hpp); the hand-written stub hmasd/_core.pyi cannot be generated. These checks hold
the three, and every reader of the fields, equal."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from hmasd import _core
from hmasd.buffer import ReferenceRolloutBuffer
from hmasd.rollout import Rollout
from hmasd.rollout_fields import OUTPUT_FIELDS, STEP_FIELDS

STUB = Path(__file__).resolve().parents[1] / "hmasd" / "_core.pyi"
STUB_DTYPES = {"_F32": "float32", "_U8": "uint8", "_I32": "int32", "_I64": "int64"}


def _python_table(fields) -> list[tuple]:
    return [(f.name, np.dtype(f.dtype).name, f.axes, f.optional) for f in fields]


@pytest.mark.parametrize("name, fields", [("STEP_FIELDS", STEP_FIELDS), ("OUTPUT_FIELDS", OUTPUT_FIELDS)])
def test_the_cpp_list_equals_the_python_table(name, fields):
    assert list(getattr(_core, name)) == _python_table(fields)


def test_cpp_add_takes_the_step_fields_in_order():
    signature = _core.RolloutBuffer.add.__doc__.splitlines()[0]
    names = re.findall(r"(\w+): object", signature)
    assert names == [f.name for f in STEP_FIELDS]
    assert "action_mask: object = None" in signature  # the one optional field


def _stub_class() -> tuple[ast.ClassDef, list[str]]:
    text = STUB.read_text()
    tree = ast.parse(text)
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RolloutBuffer"]
    return cls, text.splitlines()


def _comment(lines: list[str], lineno: int) -> str:
    return lines[lineno - 1].split("#", 1)[1].strip() if "#" in lines[lineno - 1] else ""


def _stub_dtype(annotation: ast.expr) -> tuple[str, bool]:
    """(dtype name, optional) of an annotation such as `_F32` or `_U8 | None`."""
    if isinstance(annotation, ast.BinOp):
        return STUB_DTYPES[annotation.left.id], True
    return STUB_DTYPES[annotation.id], False


def test_the_stub_add_matches_the_schema():
    cls, lines = _stub_class()
    (add,) = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "add"]
    args = add.args.kwonlyargs
    assert [a.arg for a in args] == [f.name for f in STEP_FIELDS]
    for arg, default, f in zip(args, add.args.kw_defaults, STEP_FIELDS):
        assert _stub_dtype(arg.annotation) == (np.dtype(f.dtype).name, f.optional), f.name
        assert (default is not None) == f.optional, f.name
        assert _comment(lines, arg.lineno).startswith(f.label), (f.name, _comment(lines, arg.lineno))


def test_the_stub_properties_match_the_schema():
    cls, lines = _stub_class()
    props = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)
             and any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)}
    for f in STEP_FIELDS + OUTPUT_FIELDS:
        prop = props[f.name]
        assert _stub_dtype(prop.returns) == (np.dtype(f.dtype).name, False), f.name
        assert _comment(lines, prop.lineno).startswith("[T, " + f.label[1:]), f.name


def test_every_face_has_every_field():
    shape = dict(T=2, E=1, A=2, obs_dim=3, state_dim=4, action_dim=1, mask_dim=5)
    sizes = {"E": 1, "A": 2, "O": 3, "S": 4, "D": 1, "M": 5}
    for buf in (_core.RolloutBuffer(**shape), ReferenceRolloutBuffer(**shape)):
        for f in STEP_FIELDS:
            view = getattr(buf, f.name)
            assert view.shape == (2, *f.shape(sizes)) and view.dtype == f.dtype, (type(buf).__name__, f.name)
    for f in STEP_FIELDS + OUTPUT_FIELDS:
        assert isinstance(getattr(Rollout, f.name), property), f.name
