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


def test_the_layout_page_matches_the_tree():
    block = (ROOT / "docs" / "layout.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
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


def test_the_top_of_the_suite_keeps_only_the_contract_the_cli_and_a_few_helpers():
    """Everything else lives in a package that says what it holds (runs, results, bench, ...)."""
    top = sorted(p.name for p in (ROOT / "suite").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 6, f"move these into a package: {top}"
    assert {"cli.py", "contract.py"} <= set(top)


def test_no_two_modules_import_each_other():
    """Two modules that import each other (even only for type hints) are one module in two
    files; a package importing its own submodule is not such a pair."""
    import ast
    import itertools

    imports: dict[str, set[str]] = {}
    for path in (ROOT / "suite").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        imports[name] = found
    circles = [
        (a, b)
        for a, b in itertools.combinations(sorted(imports), 2)
        if b in imports[a] and a in imports[b]
        and not (a.startswith(b + ".") or b.startswith(a + "."))
    ]  # fmt: skip
    assert not circles, f"modules that import each other: {circles}"


def test_the_readme_is_a_front_door_of_two_screens():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_relative_link_of_the_readme_and_the_guide_resolves():
    pages = [ROOT / "README.md", ROOT / "SUBMITTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for href in re.findall(r"\]\(([^)]+)\)", page.read_text()):
            if "://" in href or href.startswith(("#", "mailto:")):
                continue
            target = (page.parent / href.split("#")[0]).resolve()
            assert target.exists(), f"{page.relative_to(ROOT)} links to {href}, which is missing"


def test_the_readme_summary_is_fresh_against_the_committed_data():
    """The README's results block is rendered from docs/data/summary.json alone: regenerate it
    with `python -m suite.results.summary` whenever the data changes."""
    from suite.results.summary import stale

    assert not stale()


def test_a_stale_summary_is_caught(tmp_path):
    import json

    from suite.results.summary import DATA, stale

    data = json.loads(DATA.read_text())
    data["findings"][0]["evidence"][0]["mean"] += 0.01  # a record changed, the README did not
    changed = tmp_path / "summary.json"
    changed.write_text(json.dumps(data))
    assert stale(changed) == ["README.md", "docs/reproduction.md"]
    data["findings"][0]["verdict"] = (
        "fails" if data["findings"][0]["verdict"] != "fails" else "holds"
    )
    changed.write_text(json.dumps(data))
    assert stale(changed) == ["README.md", "docs/reproduction.md"]


def test_the_results_page_shows_every_committed_leaderboard_and_goes_stale_with_it(tmp_path):
    """docs/results.md carries every task's gates and every claim from the committed aggregate,
    so a fresh clone shows them; a changed number there makes the page stale."""
    import json

    from suite.results.summary import DATA, RESULTS, stale

    data = json.loads(DATA.read_text())
    page = RESULTS.read_text()
    assert data["leaderboard"] and data["claim_verdicts"]
    for task in data["leaderboard"]:
        assert f"#### `{task['task']}`" in page
        for gate in task["gates"]:
            assert f"`{gate['gate']}`" in page
    changed = tmp_path / "summary.json"
    first = next(g for t in data["leaderboard"] for g in t["gates"] if g["values"])
    metric = next(iter(first["values"]))
    first["values"][metric][0] += 0.01
    changed.write_text(json.dumps(data))
    found = stale(data=changed)  # the notes' best-gate table reads the same leaderboard
    assert "docs/results.md" in found and "README.md" not in found


LEVELS = {"95%", "90%", "5%"}  # the statistics' stated levels: settings, not measurements


def hand_typed_numbers(text: str) -> list[str]:
    """Measurement-like numbers in ``text`` outside its generated blocks, code blocks and code
    spans (settings, versions and commands are written as code): decimals, timings, percentages
    other than the stated statistical levels, and speed-up ratios."""
    from suite.results.summary import GENERATED

    for _, begin, end, _ in GENERATED.values():
        if begin in text:
            head, rest = text.split(begin, 1)
            text = head + rest.split(end, 1)[1]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    prose = re.sub(r"Python \d+\.\d+|§\d+(\.\d+)*", "", prose)  # a version, a section
    found = re.findall(
        r"\b\d+(?:\.\d+)?×|\b\d+m\d\ds\b|\b\d+(?:\.\d+)? ?(?:ms|s)\b"
        r"|(?<![\w.])\d+(?:\.\d+)?%|(?<![\w.-])\d+\.\d+(?![\w.])",
        prose,
    )
    return [n for n in found if n not in LEVELS]


def test_no_measured_number_is_typed_by_hand_in_the_readme_or_the_docs():
    """Outside the generated blocks, the README, SUBMITTING.md and the guide state no
    measurement: those belong to the records (the site, gatebench report, the generated blocks)
    and to `results/bench.json` (the site's performance page)."""
    pages = [ROOT / "README.md", ROOT / "SUBMITTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = {p.name: n for p in pages if (n := hand_typed_numbers(p.read_text()))}
    assert not found, f"numbers typed by hand: {found}"


def test_a_hand_typed_measurement_is_caught():
    from suite.results.summary import NOTES_BEGIN, NOTES_END

    assert hand_typed_numbers("delta-rule recalls 0.151 [0.100, 0.203] in 7m51s") == [
        "0.151", "0.100", "0.203", "7m51s",
    ]  # fmt: skip
    assert hand_typed_numbers("a 2.4× speed-up, 28% of the run, 9.8 ms a step") == [
        "2.4×", "28%", "9.8 ms",
    ]  # fmt: skip
    settings = "Python 3.11, §4.2, the 95% interval, `lr: 0.003`, ```\nrun 0.5\n```"
    assert hand_typed_numbers(settings) == []
    assert hand_typed_numbers(f"{NOTES_BEGIN}\n0.748 [0.7, 0.8]\n{NOTES_END}") == []
