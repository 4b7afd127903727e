"""The ``gatebench`` command line. Subcommand names and flags are stable: nox sessions and other
tools call them."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from suite.errors import GateBenchError
from suite.runs.salt import SALT_FILE_HELP, SALT_HELP, SUBMIT_SALT_HELP, resolve_salt
from suite.tasks.spec import PROFILES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gatebench",
        description="GateBench: reproducible benchmarks and a leaderboard for MoE gates.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ls = sub.add_parser("list", help="list tasks or gates")
    ls.add_argument("what", choices=["tasks", "gates"])
    ls.add_argument("--format", choices=["table", "json"], default="table")
    ls.add_argument(
        "--submissions",
        type=Path,
        default=Path("submissions"),
        help="also list the submissions here (read from their manifests)",
    )

    run = sub.add_parser("run", help="run tasks × gates × seeds and write run records")
    run.add_argument(
        "--task",
        action="append",
        default=[],
        metavar="ID",
        help="task id, or a prefix such as 'transition/' (repeatable; default all)",
    )
    run.add_argument("--family", help="only tasks of this family")
    run.add_argument(
        "--gate",
        action="append",
        default=[],
        metavar="ID",
        help="gate id (repeatable; default every registered gate)",
    )
    run.add_argument(
        "--profile",
        choices=(*PROFILES, "scale"),
        default="default",
        help="scale: every point of the tasks' scale axes (each its own profile, scale-LABEL)",
    )
    run.add_argument("--seeds", type=int, help="number of seeds (default: the spec's)")
    run.add_argument("--workers", type=int, help="parallel runs (default: CPU count; 0 = inline)")
    run.add_argument("--results", type=Path, default=Path("results"))
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    run.add_argument("--force", action="store_true", help="recompute runs that are cached")
    run.add_argument(
        "--executor",
        choices=["process", "inline", "dask"],
        help="where runs go (default: process; dask when a scheduler is given)",
    )
    run.add_argument(
        "--scheduler",
        default=os.environ.get("GATEBENCH_SCHEDULER") or None,
        help="Dask scheduler address, e.g. tcp://127.0.0.1:8786 (default: $GATEBENCH_SCHEDULER; "
        "with neither, --executor dask starts a LocalCluster)",
    )
    run.add_argument("--time-limit", type=float, help="seconds per run, overriding the specs")
    run.add_argument("--salt", help=SALT_HELP)
    run.add_argument("--salt-file", type=Path, help=SALT_FILE_HELP)
    run.add_argument(
        "--isolate-baselines",
        action="store_true",
        help="run baselines in a gate process of their own too, as submissions always are "
        "(same numbers, to measure or check the proxy)",
    )
    run.add_argument(
        "--no-batch-seeds",
        dest="batch_seeds",
        action="store_false",
        help="one job per seed, never vectorised over seeds (same numbers; to time or debug)",
    )
    run.add_argument("--strict", action="store_true", help="exit 1 if any run failed")
    run.add_argument("--quiet", action="store_true", help="do not print the report table")
    run.add_argument("--site", action="store_true", help="render the results site at the end")
    run.add_argument(
        "--submissions",
        type=Path,
        default=Path("submissions"),
        help="folder of submitted gates to include (default: submissions)",
    )

    new = sub.add_parser("new-submission", help="scaffold submissions/NAME from the template")
    new.add_argument("name")
    new.add_argument("--dir", type=Path, default=Path("submissions"))
    new.add_argument("--kind", default="router", help="the gate kind: router (default) or updater")

    submit = sub.add_parser(
        "submit", help="check and run one submission on every task of its families"
    )
    submit.add_argument("path", type=Path, help="the submission folder")
    submit.add_argument("--profile", choices=PROFILES, default="default")
    submit.add_argument("--seeds", type=int, help="number of seeds (default: the spec's)")
    submit.add_argument("--workers", type=int, help="parallel runs (default: CPU count)")
    submit.add_argument("--results", type=Path, default=Path("results"))
    submit.add_argument("--time-limit", type=float, help="seconds per run, overriding the specs")
    submit.add_argument("--salt", help=SUBMIT_SALT_HELP)
    submit.add_argument("--salt-file", type=Path, help=SALT_FILE_HELP)
    submit.add_argument("--no-site", action="store_true", help="do not re-render the site")

    site = sub.add_parser("site", help="render the static results site from the run records")
    site.add_argument("--results", type=Path, default=Path("results"))
    site.add_argument("--out", type=Path, help="output folder (default: RESULTS/site)")
    site.add_argument(
        "--profile",
        help="show the records matching this profile's current specs (smoke, default, paper, "
        "weights, or a scale point scale-LABEL)",
    )

    rep = sub.add_parser("report", help="statistics over the run records")
    rep.add_argument("--results", type=Path, default=Path("results"))
    rep.add_argument("--format", choices=["table", "json"], default="table")
    rep.add_argument(
        "--profile",
        help="report the records matching this profile's current specs (smoke, default, paper, "
        "weights, or a scale point scale-LABEL)",
    )
    rep.add_argument("--task", action="append", default=[], metavar="ID")
    return p


def _list(args: argparse.Namespace) -> int:
    from suite.gates.entries import all_gates
    from suite.tasks.family import get_family
    from suite.tasks.loading import load_all_tasks

    if args.what == "tasks":
        tasks = load_all_tasks()
        rows = [
            {
                "id": t.id,
                "family": t.family,
                "gate_kind": get_family(t.family).gate_kind,
                "version": t.version,
                "title": t.title,
                "primary_metric": t.primary_metric,
                "seeds": t.seeds,
                "claims": len(t.claims),
            }
            for t in tasks
        ]
        if args.format == "json":
            print(json.dumps(rows, indent=1))
        else:
            width = max(len(r["id"]) for r in rows)
            for r in rows:
                print(f"{r['id']:<{width}}  {r['primary_metric']:<16} {r['title']}")
        return 0
    from suite.errors import SubmissionError
    from suite.gates.submissions import discover, load_manifest

    rows = [
        {
            "id": g.id,
            "kind": g.kind,
            "origin": g.origin,
            "causal": g.causal,
            "description": g.description,
            "paper": g.paper,
            "equation": g.equation,
        }
        for g in all_gates()
        if g.origin == "baseline"
    ]
    for folder in discover(args.submissions):  # manifests only: listing never imports code
        try:
            m = load_manifest(folder)
        except SubmissionError as exc:
            print(f"gatebench: {exc}", file=sys.stderr)
            continue
        rows.append(
            {"id": m.name, "kind": m.kind, "origin": "submission", "causal": None,
             "description": m.description, "paper": m.paper, "equation": ""}
        )  # fmt: skip
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        width = max(len(r["id"]) for r in rows)
        for r in rows:
            flag = " [non-causal ceiling]" if r["causal"] is False else ""
            print(f"{r['id']:<{width}}  {r['kind']:<8} {r['origin']:<10} {r['description']}{flag}")
    return 0


def _print_report(
    results: Path, fmt: str, profile: str | None = None, task_ids: Sequence[str] = ()
) -> None:
    from suite.results.findings import finding_lines, finding_rows, judge_findings
    from suite.results.loading import load_results
    from suite.results.report import render_text
    from suite.results.rows import array_rows, report_rows
    from suite.results.scale import scale_trends
    from suite.website.exports import claim_rows

    agg, records = load_results(results, profile, task_ids)
    findings = judge_findings(agg)
    shown = {t.task.id for t in agg.tasks}
    trends = [t for t in scale_trends(records) if t.task in shown and t.direction != "no data"]
    if fmt == "json":
        claims = [{"row": "claim", **row} for row in claim_rows(agg)]
        rows = report_rows(agg) + array_rows(agg) + claims + finding_rows(findings)
        rows += [{"row": "trend", **t.as_dict()} for t in trends]
        print(json.dumps(rows, indent=1))
    else:
        text = render_text(agg)
        if agg.tasks and findings:
            text += "\n\n" + "\n".join(finding_lines(findings))
        if trends:
            text += "\n\nScale trends (gatebench run --profile scale):\n" + "\n".join(
                f"  {t.task} × {t.gate} {t.metric}: {t.detail()}" for t in trends
            )
        print(text)


def _executor(args: argparse.Namespace) -> str:
    """The executor asked for; a scheduler address (flag or GATEBENCH_SCHEDULER) means Dask."""
    return args.executor or ("dask" if args.scheduler else "process")


def _run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from suite.gates.entries import all_gates, get_gate
    from suite.gates.submissions import discover, manifest_name
    from suite.runs.setup import SweepOptions, default_workers
    from suite.runs.submit import load_submissions
    from suite.runs.sweep import Sweep
    from suite.tasks.loading import load_all_tasks, profile_runs, select_tasks

    selected = select_tasks(load_all_tasks(), args.task, args.family)
    runs = profile_runs(selected, args.profile)
    tasks = list({t.id: t for _, chosen in runs for t in chosen}.values())
    if args.seeds is not None and args.seeds < 1:
        raise GateBenchError("--seeds must be at least 1.")
    options = SweepOptions(
        profile=runs[0][0],
        seeds=args.seeds,
        workers=default_workers() if args.workers is None else args.workers,
        results=args.results,
        device=args.device,
        force=args.force,
        executor=_executor(args),
        scheduler=args.scheduler,
        command="gatebench " + " ".join(shlex.quote(a) for a in argv),
        time_limit_s=args.time_limit,
        salt=resolve_salt(args.salt, args.salt_file, args.results),
        isolate_baselines=args.isolate_baselines,
        batch_seeds=args.batch_seeds,
    )
    baselines = [g for g in all_gates() if g.origin == "baseline"]
    folders = discover(args.submissions)
    wanted = set(args.gate)
    if wanted:  # only the submissions asked for, by the name in their manifest
        names = {f: manifest_name(f) for f in folders}
        # A gate asked for that is found nowhere may be a submission whose manifest does not
        # load: those folders go on, so that their errors are printed and not just "unknown".
        missing = wanted - {g.id for g in baselines} - set(names.values())
        folders = [f for f in folders if names[f] in wanted or (missing and names[f] is None)]
    loaded = load_submissions(folders, tasks, options)
    for error in loaded.errors:
        print(f"gatebench: submission skipped: {error}", file=sys.stderr)
    by_id = {g.id: g for g in [*baselines, *loaded.entries]}
    if wanted:
        gates = [by_id[g] if g in by_id else get_gate(g) for g in args.gate]
    else:
        gates = list(by_id.values())
    failed = False
    for profile, chosen in runs:  # one sweep, or one per scale point
        options.profile = profile
        summary = Sweep(options).run(chosen, gates)
        if not args.quiet:
            print()
            _print_report(args.results, "table", profile, [t.id for t in chosen])
        if summary.failures:
            print(f"\n{len(summary.failures)} runs failed:", file=sys.stderr)
            for line in summary.failures:
                print(f"  {line}", file=sys.stderr)
        failed = failed or bool(summary.failed or summary.rejected)
    if args.site:
        _render_site(args.results, None, None if args.profile == "scale" else args.profile)
    return 1 if args.strict and failed else 0


def _render_site(results: Path, out: Path | None, profile: str | None) -> None:
    from suite.website.site import build_site

    summary = build_site(results, out, profile)
    print(
        f"\nSite: {summary.pages} pages in {summary.seconds:.1f} s. "
        f"Open file://{summary.index.resolve()}"
    )


def _new_submission(args: argparse.Namespace) -> int:
    from suite.gates.scaffold import new_submission

    folder = new_submission(args.name, args.dir, args.kind)
    print(f"Created {folder}/ (submission.yaml, gate.py, README.md).")
    print(f"Edit gate.py, then run: gatebench submit {folder}")
    return 0


def _submit(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from suite.runs.setup import SweepOptions, default_workers
    from suite.runs.submit import render_summary, submit

    options = SweepOptions(
        profile=args.profile,
        seeds=args.seeds,
        workers=default_workers() if args.workers is None else args.workers,
        results=args.results,
        command="gatebench " + " ".join(shlex.quote(a) for a in argv),
        time_limit_s=args.time_limit,
        salt=resolve_salt(args.salt, args.salt_file, args.results, default="leaderboard"),
    )
    result = submit(args.path, options, lambda msg: print(msg, file=sys.stderr, flush=True))
    print()
    print(render_summary(result))
    if not args.no_site:
        _render_site(args.results, None, args.profile)
    return 0 if result.ok else 1


def _report(args: argparse.Namespace) -> int:
    _print_report(args.results, args.format, args.profile, args.task)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list(args)
        if args.command == "run":
            return _run(args, argv)
        if args.command == "report":
            return _report(args)
        if args.command == "site":
            _render_site(args.results, args.out, args.profile)
            return 0
        if args.command == "new-submission":
            return _new_submission(args)
        if args.command == "submit":
            return _submit(args, argv)
    except GateBenchError as exc:
        print(f"gatebench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `gatebench report | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
