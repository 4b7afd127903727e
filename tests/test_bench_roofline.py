"""Where a run's time goes (``suite.bench.roofline``): the counted products and the shares."""

from __future__ import annotations

import pytest

from suite.bench.roofline import print_roofline, where_time_goes
from suite.tasks.loading import load_task


def test_the_counted_products_of_a_linear_gate_are_its_forward_and_weight_gradient(capsys):
    task = "transition/anticipation"
    found = where_time_goes(((task, "affinity"),), profile="smoke")
    row = found[f"{task} × affinity"]
    spec = load_task(task, "smoke")
    tokens = spec.train.batch_size * spec.data.seq_len
    # each epoch: x @ W (2·N·D·E) and the weight's gradient (2·N·D·E); x takes no gradient
    expected = spec.train.epochs * 4 * tokens * spec.data.d_model * spec.model.n_experts
    assert row["gflop"] == pytest.approx(expected / 1e9)
    assert row["seconds"] > 0 and row["peak_gflops"] > 0
    assert row["matmul_share"] == pytest.approx(row["gflop"] / row["peak_gflops"] / row["seconds"])
    print_roofline(found, "smoke")
    printed = capsys.readouterr().out
    assert "affinity" in printed and "smoke profile" in printed
