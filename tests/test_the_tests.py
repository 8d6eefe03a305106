"""The test suite itself: it needs nothing outside the repository and gives pytest only values it can read twice."""
from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

TEST_FILES = sorted((ROOT / "tests").glob("*.py"))


def test_no_test_reaches_for_a_folder_beside_the_repository():
    # A clone has nothing beside it: the judges' folder next to the checkout, or any absolute path, fails there.
    beside = re.compile(r"""ROOT\.parent|parents\[[2-9]\]|\.\./shared|["']shared["']|["']/work/""")
    offenders = [f"{path.name}:{n}" for path in TEST_FILES if path.name != "test_the_tests.py"
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if beside.search(line)]
    assert offenders == []


def generator_functions(tree: ast.Module) -> set[str]:
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            and any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(node))}


def test_parametrize_is_never_handed_a_generator():
    # A generator is consumed by the first collection; pytest wants a collection it can read again.
    offenders = []
    for path in TEST_FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        generators = generator_functions(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "parametrize"
                    and len(node.args) >= 2):
                values = node.args[1]
                if isinstance(values, ast.GeneratorExp) or (
                        isinstance(values, ast.Call) and isinstance(values.func, ast.Name) and values.func.id in generators):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
