"""The GPU checks in one prepared command, for a session that has a GPU for a few minutes.

``python -m suite.bench.gpu --out DIR`` runs, each in a child process with its own time limit
(one that hangs or runs long costs its own item, never the rest), and in this order:

1. ``env``: torch, CUDA and the device seen;
2. ``moe``: the efficiency table of expert layers on the device (bench item 8, ``--only-moe``);
3. ``table6``: Table 6's paper profile (``lm/char-switch``, its 3 gates × 5 seeds × 1500
   epochs) through the runner, timed;
4. ``table5``: Table 5's paper profile (``transition/anticipation``, its 9 gates × 5 seeds × 800
   epochs) through the runner, timed, and then the task's other routers;
5. ``tests``: the tests marked ``gpu`` (a CUDA run repeats bit for bit; it agrees with a CPU
   run);
6. ``facts``: the paper profile of ``facts/sliding-window`` (every updater × 5 seeds, frozen
   bases pre-trained first) with what is left of the budget; cut short, its log and records
   say how far it got.

Every command's output goes to ``DIR/checks.log`` under a header line naming it (one file: a
lent machine sends back only a few); ``DIR/gpu_checks.json`` holds every item's exit status,
seconds and headline numbers, written after each item so that a run cut short
keeps what it finished. ``--budget-s`` bounds the whole (default 540 s, inside a lent machine's
10-minute command): each command gets what is left of it at most, and an item that would start
with under 20 s left is skipped and says so. ``--device cpu --profile smoke`` runs the same
steps small, on CPU: how the script is tested without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TABLE6 = ("lm/char-switch", ["affinity", "beta", "beta+ant-additive"])
TABLE5 = (
    "transition/anticipation",
    ["affinity", "beta", "pi", "ant", "beta+pi", "beta+ant", "pi+ant", "beta+pi+ant", "oracle"],
)
FACTS = "facts/sliding-window"
ITEMS = ("env", "moe", "hf", "table6", "table5", "tests", "facts")
LIMITS_S = {
    "env": 60,
    "moe": 120,
    "hf": 90,
    "table6": 240,
    "table5": 180,
    "tests": 180,
    "facts": 600,
}
MIN_START_S = 20.0
HEADLINES = {
    "table6": (TABLE6[0], "bpc_transition"),
    "table5": (TABLE5[0], "acc_transition"),
    "facts": (FACTS, "acc_persistent"),
}

ENV_PROBE = """
import json, torch
cuda = torch.cuda.is_available()
print(json.dumps({
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "available": cuda,
    "device": torch.cuda.get_device_name(0) if cuda else None,
    "cudnn": torch.backends.cudnn.version() if cuda else None,
}))
"""


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _run(cmd: list[str], log: Path, limit: float) -> tuple[int, float]:
    """Run ``cmd`` with its output appended to ``log``; (exit status, seconds). 124 where it ran
    past ``limit`` (its process group is killed)."""
    started = time.perf_counter()
    with log.open("a") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            status = 124
    return status, time.perf_counter() - started


def run_command(
    task: str,
    gates: Sequence[str],
    profile: str,
    results: Path | str,
    workers: int = 1,
    device: str = "cpu",
) -> list[str]:
    """``gatebench run`` as a user types it, with this interpreter: 5 seeds, ``--quiet``; every
    registered gate and the submissions where ``gates`` is empty."""
    cmd = ["-m", "suite.cli", "run", "--task", task, "--profile", profile, "--quiet"]
    cmd += ["--seeds", "5", "--workers", str(workers), "--device", device]
    cmd += ["--results", str(results), *(arg for g in gates for arg in ("--gate", g))]
    return _python(*cmd)


def _sweep(task: str, gates: list[str], args: argparse.Namespace, results: Path) -> list[str]:
    return run_command(task, gates, args.profile, results, device=args.device)


def headline(results: Path, task: str, metric: str) -> dict[str, Any]:
    """Mean of ``metric`` per gate over the records under ``results`` (ok runs only), with the
    seeds' count and the device the records name."""
    from suite.runs.records import iter_records

    found: dict[str, list[float]] = {}
    devices: set[str] = set()
    for record in iter_records(results):
        if record.ok and record.task.id == task and metric in record.metrics:
            found.setdefault(record.gate.id, []).append(record.metrics[metric])
            devices.add(record.provenance.device)
    return {
        "metric": metric,
        "devices": sorted(devices),
        "gates": {g: {"mean": sum(v) / len(v), "n": len(v)} for g, v in sorted(found.items())},
    }


def item_commands(args: argparse.Namespace) -> dict[str, list[list[str]]]:
    """Each item's commands, in order."""
    out = args.out
    t6_task, t6_gates = TABLE6
    t5_task, t5_gates = TABLE5
    moe = ["-m", "suite.bench", "--only-moe", "--device", args.device]
    return {
        "env": [_python("-c", ENV_PROBE)],
        "moe": [_python(*moe, "--out", str(out / "bench.json"))],
        "hf": [
            _python(
                "-m",
                "suite.bench",
                "--only-hf",
                "--device",
                args.device,
                "--out",
                str(out / "bench.json"),
            )
        ],
        "table6": [_sweep(t6_task, t6_gates, args, out / "table6")],
        "table5": [
            _sweep(t5_task, t5_gates, args, out / "table5"),
            _sweep(t5_task, [], args, out / "table5"),  # the other routers; the 9 are cached
        ],
        "tests": [_python("-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider")],
        "facts": [_sweep(FACTS, [], args, out / "facts")],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.bench.gpu", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for logs and results")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--profile", default="paper", help="smoke to try the script on CPU")
    parser.add_argument("--items", nargs="*", choices=ITEMS, default=list(ITEMS))
    parser.add_argument("--budget-s", type=float, default=540.0, help="for all items together")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "checks.log"
    log.write_text("")
    summary: dict[str, Any] = {"device": args.device, "profile": args.profile, "items": {}}
    commands = item_commands(args)
    for item in args.items:
        runs = []
        for cmd in commands[item]:
            left = deadline - time.monotonic()
            if left < MIN_START_S:
                runs.append({"status": None, "skipped": f"{left:.0f} s of the budget left"})
                print(f"[{item}] skipped: {left:.0f} s of the budget left", flush=True)
                continue
            header = f"[{item}] {' '.join(cmd[1:])}"
            print(header, flush=True)
            with log.open("a") as out:
                out.write(f"\n{header}\n")
            status, seconds = _run(cmd, log, min(LIMITS_S[item], left))
            runs.append({"status": status, "seconds": round(seconds, 2)})
            print(f"[{item}] exit {status} after {seconds:.1f} s", flush=True)
        entry: dict[str, Any] = {"runs": runs}
        if item == "env" and runs[0].get("status") == 0:
            entry["found"] = json.loads(log.read_text().strip().splitlines()[-1])
        if item in HEADLINES:
            entry["headline"] = headline(args.out / item, *HEADLINES[item])
        summary["items"][item] = entry
        (args.out / "gpu_checks.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
