"""What `pip install .` promises: every library the code imports is declared, and the version is written once."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

import feedsvc
from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def normalised(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_level_modules() -> set[str]:
    """Every module the package's code imports by absolute name, outside the standard library and itself."""
    found = set()
    for path in (ROOT / "feedsvc").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name not in ("feedsvc", "__future__")}


def test_every_library_the_code_imports_is_a_declared_dependency():
    declared = {normalised(re.match(r"[A-Za-z0-9._-]+", req).group()) for req in PYPROJECT["project"]["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    for module in sorted(imported_top_level_modules()):
        names = {normalised(d) for d in providers.get(module, [module])}
        if not names & declared:
            undeclared[module] = sorted(names)
    assert undeclared == {}, "add these to [project] dependencies in pyproject.toml"


def test_click_jinja2_and_werkzeug_are_among_them():
    assert {"click", "jinja2", "werkzeug"} <= imported_top_level_modules()
    declared = " ".join(PYPROJECT["project"]["dependencies"]).lower()
    assert all(name in declared for name in ("click", "jinja2", "werkzeug"))


def test_the_version_is_written_only_in_feedsvc_init():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "feedsvc.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", feedsvc.__version__)
    spelled = [str(path.relative_to(ROOT)) for path in [ROOT / "pyproject.toml", ROOT / "wsgi.py", *(ROOT / "feedsvc").rglob("*.py")]
               if f'"{feedsvc.__version__}"' in path.read_text(encoding="utf-8")]
    assert spelled == ["feedsvc/__init__.py"]
