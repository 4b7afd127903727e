"""The performance page: ``nox -s bench``'s record (``results/bench.json``) as tables.

Speed is part of what a benchmark offers, so its measurements are published beside the results
they make cheap. Every known item of ``suite.bench`` gets a sentence saying what was measured and
a table; an item the page does not know yet (a newer bench) is shown generically, so nothing the
bench wrote is hidden. A missing or unreadable file gives a page that says how to make one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

META = ("hardware", "python", "torch")

ABOUT = {
    "epoch_ms": (
        "Training epochs of the Table 5 gates",
        "Milliseconds per training epoch of transition/anticipation at its paper profile (batch "
        "512, T = 12): the gate's vectorised forward in the family's loop, against the same gate "
        "driven by a Python loop of step calls (how the public prototypes run).",
    ),
    "scan_ms": (
        "Leaky-integrator scan against its recurrence",
        "Forward and backward milliseconds of the O(T²D) scan and of the step-by-step recurrence "
        "at several sequence lengths.",
    ),
    "seed_ms": (
        "Seeds trained together",
        "Milliseconds per epoch at the paper profile of transition/anticipation: one seed, five "
        "seeds stacked into one vmapped pass, and the same five in a loop (one warm process).",
    ),
    "scaling_ms": (
        "Epoch cost against sequence length and batch",
        "Milliseconds per training epoch and peak memory allocated (MiB, the CPU profiler's "
        "allocation events) of transition/anticipation at its paper profile with the sequence "
        "length T (switch halfway) or the batch B changed, each with its growth over the "
        "smallest T or B.",
    ),
    "moe_latency_ms": (
        "Expert layers at matched active parameters",
        "Forward of 256 × 63 tokens (d 64), one thread, median after warm-up: soft mixing, "
        "batched and looped top-k, an iso-active dense MLP and Dynamic Subspace Composition, "
        "with parameters, FLOPs per token and the memory a forward allocates.",
    ),
    "moe_latency_ms_cuda": (
        "Expert layers at matched active parameters, on a GPU",
        "The same five layers and shapes timed on a CUDA device (`python -m suite.bench "
        "--only-moe --device cuda`; the timer synchronises the GPU around each block), with the "
        "peak memory a forward adds to CUDA's allocator.",
    ),
    "facts_step_ms": (
        "Updaters of the facts family",
        "Milliseconds per training step of each updater at the paper profile of "
        "facts/sliding-window, and the sequential lerp over its parallel scan.",
    ),
    "shared_pass_s": (
        "Updaters sharing one data pass",
        "Seconds to train and evaluate every updater on one seed of facts/sliding-window "
        "(default profile): each on its own, and all in one job that reads each batch through "
        "the frozen trunk once; the metrics must be the same.",
    ),
    "roofline": (
        "Where a run's time goes",
        "A sample of default-profile runs on one thread: seconds, the GFLOP of their matrix "
        "products (torch's FLOP counter, forward and backward), and the share of the run those "
        "products would take at this core's speed on a typical in-cache product (peak_gflops); "
        "the rest is elementwise work, the optimiser, data and per-operator overhead.",
    ),
    "compiled_step_ms": (
        "A compiler fusing operators",
        "One training step (forward and backward) of a few routers at Table 5's shape on one "
        "thread, eager against torch.compile (inductor): milliseconds, compiled over eager "
        "(below 1 is faster), the cold compile's seconds and the largest difference of the loss.",
    ),
    "softmax_ms": (
        "Softmax over a few experts",
        "torch's softmax over a short last axis (B×T×E) against exp(x − max) / sum written out, "
        "forward and forward + backward milliseconds on one thread, and their largest difference "
        "(why the families score with x − logsumexp x).",
    ),
    "proxy_overhead": (
        "An untrusted gate in its own process",
        "The example submission trained in the harness's process and behind the proxy "
        "(shared-memory tensors, gradients sent back), and their ratio (goal: at most 1.5).",
    ),
    "dask_s": (
        "Dask workers",
        "A default-profile sweep on a LocalCluster of one and of two single-threaded workers "
        "(started, with GateBench preloaded, before timing), the medians over rounds taken in "
        "turn, and the speed-up (goal: at least 1.8 on 2 cores).",
    ),
    "site_render_s": (
        "Rendering this site",
        "Seconds to render the site from synthetic records.",
    ),
    "table5_paper_profile_s": (
        "Table 5 through the runner",
        "Seconds for the paper profile of transition/anticipation (9 gates × 5 seeds × 800 "
        "epochs) through the real runner, from a fresh results folder.",
    ),
    "table5_all_routers_s": (
        "Table 5's command with every router",
        "Seconds for `gatebench run --task transition/anticipation --profile paper --seeds 5 "
        "--workers N` as typed, without --gate: every registered router that supports the task "
        "(ceilings included) and the submissions, from a fresh results folder.",
    ),
}


@dataclass
class Section:
    key: str
    title: str
    about: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def load_bench(results: Path) -> tuple[dict[str, Any] | None, str]:
    """The bench record under ``results`` and, where there is none, why."""
    path = results / "bench.json"
    if not path.is_file():
        return None, "no measurements yet: run `nox -s bench` (it writes results/bench.json)"
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"{path} could not be read ({exc}); run `nox -s bench` again"
    if not isinstance(found, dict):
        return None, f"{path} is not a JSON object; run `nox -s bench` again"
    return found, ""


def is_ratio(name: Any) -> bool:
    """Whether a key names a ratio (`ratio`, `ratio_min`, `stacked_over_one`, `speed_up`)."""
    name = str(name)
    return name == "ratio" or name.startswith("ratio_") or "_over_" in name or name == "speed_up"


def cell(value: Any, name: Any = "") -> str:
    """A number as the page shows it: n/a for NaN or nothing, thousands separated, 3 figures; a
    ratio (by its key's ``name``) with two decimals and a ×."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if is_ratio(name) and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.2f}×"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,d}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    return str(value)


def _table(value: Any) -> tuple[list[str], list[list[str]]]:
    """Any JSON value as (columns, rows): a dict of dicts is rows × the union of inner keys; a
    dict of dicts of dicts (e.g. one table per shape) flattens its first two levels; a dict of
    scalars is a two-column list; anything else is one cell."""
    if not isinstance(value, dict):
        return ["value"], [[cell(value)]]
    if value and all(isinstance(v, dict) for v in value.values()):
        inner = list(value.values())
        if all(v and all(isinstance(w, dict) for w in v.values()) for v in inner):
            flat = {f"{k} · {name}": row for k, v in value.items() for name, row in v.items()}
            return _table(flat)
        columns: list[str] = []
        for row in inner:
            columns += [c for c in row if c not in columns]
        rows = [[str(k), *(cell(v.get(c), c) for c in columns)] for k, v in value.items()]
        return ["", *columns], rows
    return ["", "value"], [[str(k), cell(v, k)] for k, v in value.items()]


WORKERS = ("one_worker", "two_workers")


def _rounds(rounds: list[Any]) -> str:
    """'1 worker / 2 workers' seconds of each round of the Dask item."""
    pairs = [
        f"{r['one_worker']:.1f} / {r['two_workers']:.1f} s"
        for r in rounds
        if isinstance(r, dict) and all(isinstance(r.get(k), int | float) for k in WORKERS)
    ]
    return "; ".join(pairs)


def bench_sections(report: dict[str, Any]) -> list[Section]:
    """One section per item of the record, the known ones first in the bench's order."""
    keys = [k for k in ABOUT if k in report]
    keys += [k for k in report if k not in ABOUT and k not in META and k not in keys]
    sections = []
    for key in keys:
        title, about = ABOUT.get(key, (key.replace("_", " "), "A measurement of `nox -s bench`."))
        value = report[key]
        if key == "table5_paper_profile_s" and "table5_workers" in report:
            value = {"seconds": value, "workers": report["table5_workers"]}
        elif key == "table5_workers" and "table5_paper_profile_s" in report:
            continue
        elif key == "scaling_ms" and isinstance(value, dict) and "fixed" in value:
            fixed = value["fixed"]  # the sweeps' fixed settings, said in words, not as a row
            if isinstance(fixed, dict):
                about += (
                    f" T varies at batch {fixed.get('batch')}, B at T = {fixed.get('T')}; "
                    f"{fixed.get('epochs')} epochs timed per point."
                )
            value = {k: v for k, v in value.items() if k != "fixed"}
        elif key == "dask_s" and isinstance(value, dict):
            one, two = value.get("one_worker"), value.get("two_workers")
            numbers = isinstance(one, int | float) and isinstance(two, int | float)
            if "speed_up" not in value and numbers and two:
                value = {**value, "speed_up": one / two}  # the docstring's item 6 reports it
            if isinstance(value.get("rounds"), list):  # each round's pair, one cell
                value = {**value, "rounds": _rounds(value["rounds"])}
        columns, rows = _table(value)
        sections.append(Section(key, title, about, columns, rows))
    return sections


def performance_page(site: Any, report: dict[str, Any] | None, missing: str) -> None:
    meta = {k: report.get(k) for k in META if report and report.get(k)} if report else {}
    sections = bench_sections(report) if report else []
    site.render(
        "performance.html", "performance.html", meta=meta, sections=sections, missing=missing
    )
