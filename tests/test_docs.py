"""The README's promises: two quickstart lines, sessions that exist, CI running the test line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def nox_sessions() -> set[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "session":
                    given = [k.value.value for k in deco.keywords if k.arg == "name"]
                    names.add(given[0] if given else node.name)
    return names


def quickstart() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#")[0].strip() for line in block.strip().splitlines()]


def test_quickstart_is_two_lines_run_all_and_tests():
    lines = quickstart()
    assert len(lines) == 2
    assert lines[0].endswith("nox -s run-all") and lines[1].endswith("nox -s tests")


def test_every_session_the_readme_names_exists():
    named = set(re.findall(r"nox -s ([a-z-]+)", (ROOT / "README.md").read_text()))
    assert named <= nox_sessions(), named - nox_sessions()
    assert {"tests", "lint", "run-all", "run", "reproduce", "bench"} <= nox_sessions()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert quickstart()[1] in ci


def test_every_cli_subcommand_in_the_readme_parses():
    from suite.cli import _parser

    subcommands = set(_parser()._subparsers._group_actions[0].choices)
    for match in re.findall(r"^gatebench (\w[\w-]*)", (ROOT / "README.md").read_text(), re.M):
        assert match in subcommands


def test_submitting_guide_lists_exactly_the_checks_the_harness_runs():
    from suite.gates.conformance import run_conformance
    from suite.gates.entries import get_gate
    from suite.tasks.family import get_family
    from suite.tasks.loading import load_all_tasks

    task = next(t for t in load_all_tasks() if t.id == "transition/anticipation")
    info = get_family(task.family).task_info(task)
    ran = {c.name for c in run_conformance(get_gate("affinity"), info, None, seed=0).checks}
    guide = (ROOT / "SUBMITTING.md").read_text()
    table = guide.split("| check | what it does |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| ([a-z_]+) \|", table, re.M))
    assert documented == ran


def test_readme_layout_matches_the_tree():
    block = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
    suite = ROOT / "suite"
    for package in sorted(p for p in suite.iterdir() if (p / "__init__.py").is_file()):
        assert f"  {package.name}/" in block, f"suite/{package.name}/ is not in the layout"
        for module in package.glob("*.py"):
            if module.name != "__init__.py":
                assert re.search(rf"\b{module.stem}\b", block), f"{module} is not in the layout"
    for module in suite.glob("*.py"):
        if module.name != "__init__.py":
            assert module.name in block, f"{module} is not in the layout"
    for family in (suite / "tasks" / "families").iterdir():
        if (family / "__init__.py").is_file():
            assert f"families/{family.name}/" in block


def test_no_module_is_too_long_to_read():
    too_long = {
        str(path.relative_to(ROOT)): n
        for folder in ("suite", "baselines", "submissions")
        for path in (ROOT / folder).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert not too_long, f"split these by responsibility: {too_long}"
