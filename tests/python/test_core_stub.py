"""python/tconv/_core.pyi says what the compiled module really has: the same names, and for
every function and method the signature pybind11 reports (its docstring's first line)."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

from tconv import _core

STUB = pathlib.Path(_core.__file__).with_name("_core.pyi")
if not STUB.exists():  # an installed wheel run from outside the source tree
    STUB = pathlib.Path(__file__).resolve().parents[2] / "python" / "tconv" / "_core.pyi"


def stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text())


def stub_signature(fn: ast.FunctionDef) -> str:
    """`name(arg: type = default, ...) -> ret`, written the way pybind11 writes it."""
    args = [a for a in fn.args.args if a.arg != "self"]
    defaults = [None] * (len(args) - len(fn.args.defaults)) + list(fn.args.defaults)
    parts = []
    for a, d in zip(args, defaults, strict=True):
        text = f"{a.arg}: {ast.unparse(a.annotation)}" if a.annotation else a.arg
        parts.append(text if d is None else f"{text} = {ast.unparse(d)}")
    returns = ast.unparse(fn.returns) if fn.returns else "None"
    return f"{fn.name}({', '.join(parts)}) -> {returns}"


def runtime_signature(obj: object) -> str:
    """pybind11's signature line with the spellings a stub uses for the same types."""
    line = (obj.__doc__ or "").splitlines()[0]
    line = re.sub(r"\bself: [\w.]+(, )?", "", line)
    line = line.replace("tconv._core.", "").replace(": object", ": typing.Any")
    return line.replace('"', "'")


def stub_members() -> dict[str, dict[str, ast.AST]]:
    """{'': module-level definitions, class name: its definitions}."""
    out: dict[str, dict[str, ast.AST]] = {"": {}}
    for node in stub_tree().body:
        if isinstance(node, ast.ClassDef):
            out[""][node.name] = node
            out[node.name] = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            out[""][node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[""][node.target.id] = node
    return out


def public_names(obj: object) -> set[str]:
    """Names a stub lists: no dunders or pybind11 internals, but a constructor pybind11 made."""
    names = {n for n in vars(obj) if not n.startswith(("__", "_pybind11"))}
    init = vars(obj).get("__init__")
    return names | (
        {"__init__"} if init and (init.__doc__ or "").startswith("__init__(") else set()
    )


def test_the_stub_names_what_the_module_has():
    members = stub_members()
    assert set(members[""]) - {"__all__", "__version__"} == public_names(_core)
    assert "__version__" in members[""] and isinstance(_core.__version__, str)
    for cls in (_core.Geometry, _core.Plan):
        assert set(members[cls.__name__]) == public_names(cls), cls.__name__


FUNCTIONS = sorted(n for n, o in vars(_core).items() if callable(o) and not isinstance(o, type))
METHODS = [
    (c.__name__, n)
    for c in (_core.Geometry, _core.Plan)
    for n in sorted(public_names(c))
    if callable(vars(c)[n])
]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_signatures_match(name):
    fn = stub_members()[""][name]
    assert isinstance(fn, ast.FunctionDef)
    assert stub_signature(fn) == runtime_signature(getattr(_core, name))


@pytest.mark.parametrize("cls, name", METHODS)
def test_method_signatures_match(cls, name):
    fn = stub_members()[cls][name]
    assert isinstance(fn, ast.FunctionDef)
    assert stub_signature(fn) == runtime_signature(getattr(getattr(_core, cls), name))


def test_properties_are_properties_in_the_stub():
    for cls in (_core.Geometry, _core.Plan):
        for name, obj in vars(cls).items():
            if isinstance(obj, property):
                fn = stub_members()[cls.__name__][name]
                assert any(ast.unparse(d) == "property" for d in fn.decorator_list), name
