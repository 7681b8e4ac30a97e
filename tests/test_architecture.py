"""The package's shape, as the README's Layout states it: no Streamlit in `trashure/`, imports that flow one
way, pages that lay out widgets and leave the computing to the package, and types on every public function
of the package and the pages.

Each rule is a function over source files (read with `ast`, nothing imported), checked on the repository and,
so that it can be seen to fail, on a small planted package that breaks it.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "trashure"
# What only the package may use: the model, its runtimes, the photos, the figures.
COMPUTING_LIBRARIES = ("tensorflow", "keras", "sklearn", "PIL", "plotly", "h5py", "ai_edge_litert")
# Methods whose signatures Keras defines: they are called by Keras, not by us.
KERAS_HOOKS = {"call", "build", "compute_output_shape", "get_config", "on_epoch_begin", "on_epoch_end",
               "on_train_begin", "on_train_end", "on_train_batch_begin", "on_train_batch_end"}


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import the file runs, at any depth: a lazy import inside a function
    counts; one under `if TYPE_CHECKING:` names a type and runs nothing, so it does not.
    `from a.b import c` gives a.b and a.b.c (c may be a module or a name in a.b)."""
    names = []
    nodes = [ast.parse(path.read_text(), str(path))]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        nodes += [child for child in ast.iter_child_nodes(node) if not _type_checking_only(child)]
    return sorted(names)


def streamlit_imports(package: Path) -> list[str]:
    return [f"{path.relative_to(package.parent)}:{line} imports {name}"
            for path in sorted(package.rglob("*.py")) for line, name in imported_names(path)
            if name == "streamlit" or name.startswith("streamlit.")]


def import_graph(package: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (a name inside a module counts as that module)."""
    modules = {module_name(path, package): path for path in package.rglob("*.py")}

    def owner(name: str) -> str | None:
        parts = name.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        return ".".join(parts) or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {owner(imported) for _, imported in imported_names(path)}
        graph[name] = {t for t in targets if t and t != name and t != package.name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """A circle of imports, as its sorted modules, when there is one (the standard library's graphlib finds
    it while ordering the modules); [] when the imports flow one way."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return [sorted(set(error.args[1]))]
    return []


def computing_imports(files: list[Path]) -> list[str]:
    return [f"{path.name}:{line} imports {name}" for path in files for line, name in imported_names(path)
            if name.split(".")[0] in COMPUTING_LIBRARIES]


def untyped_public_functions(files: list[Path], root: Path) -> list[str]:
    """Module-level public functions and public methods of public classes lacking a parameter's or the
    return's annotation. Nested helpers and Keras' hooks are not the package's interface."""
    found = []
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        functions = [(node, "") for node in tree.body if isinstance(node, ast.FunctionDef)]
        functions += [(member, f"{node.name}.") for node in tree.body
                      if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
                      for member in node.body if isinstance(member, ast.FunctionDef)]
        for function, owner in functions:
            if function.name.startswith("_") or function.name in KERAS_HOOKS:
                continue
            args = function.args
            params = [a for a in args.posonlyargs + args.args + args.kwonlyargs if a.arg not in ("self", "cls")]
            params += [a for a in (args.vararg, args.kwarg) if a is not None]
            missing = [a.arg for a in params if a.annotation is None]
            if function.returns is None:
                missing.append("return")
            if missing:
                found.append(f"{path.relative_to(root)}:{function.lineno} {owner}{function.name}: "
                             + ", ".join(missing))
    return found


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A package that breaks every rule once."""
    package = tmp_path / "planted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "runs.py").write_text("from planted.prediction import Classifier\n\n\n"
                                     "def load(path):\n    return path\n")
    (package / "prediction.py").write_text("class Classifier:\n    def predict(self, image) -> int:\n"
                                           "        from planted.runs import load\n        return load(image)\n")
    (package / "ui.py").write_text("def show() -> None:\n    import streamlit as st\n    st.write('hi')\n")
    (package / "page.py").write_text("from typing import TYPE_CHECKING\n\nfrom PIL import Image\n"
                                     "import pandas as pd\n\nif TYPE_CHECKING:\n    import keras\n")
    return package


def test_the_package_never_imports_streamlit(planted: Path) -> None:
    assert streamlit_imports(PACKAGE) == []
    assert streamlit_imports(planted) == ["planted/ui.py:2 imports streamlit"]


def test_the_package_imports_flow_one_way(planted: Path) -> None:
    """No circle of imports, lazy ones included: a lazy import only hides a circle until it runs."""
    assert import_cycles(import_graph(PACKAGE)) == []
    assert import_cycles(import_graph(planted)) == [["planted.prediction", "planted.runs"]]


def test_pages_leave_the_computing_to_the_package(planted: Path) -> None:
    pages = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
    assert len(pages) > 5
    assert computing_imports(pages) == []
    # A type-only import (keras, under TYPE_CHECKING) runs nothing and is allowed.
    assert computing_imports([planted / "page.py"]) == ["page.py:3 imports PIL", "page.py:3 imports PIL.Image"]


def test_every_public_function_of_the_package_and_the_pages_has_types(planted: Path) -> None:
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
    assert untyped_public_functions(files, ROOT) == []
    assert untyped_public_functions(sorted(planted.rglob("*.py")), planted.parent) == [
        "planted/prediction.py:2 Classifier.predict: image", "planted/runs.py:4 load: path, return"]
