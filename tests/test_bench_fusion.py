"""What fusing operators would buy (``suite.bench.fusion``): the same numbers, timed both ways."""

from __future__ import annotations

import shutil

import torch

from suite.bench.fusion import _written_out, compiled_steps, print_fusion, softmax_costs


def test_the_written_out_softmax_is_torchs_to_rounding_and_both_are_timed():
    s = torch.randn(64, 12, 5, dtype=torch.float64)
    assert torch.allclose(_written_out(s), torch.softmax(s, -1), rtol=0, atol=1e-15)
    found = softmax_costs(((16, 3, 4),), min_run_time=0.01)
    row = found["16×3×4"]
    for key in ("torch_ms", "written_ms", "torch_fwd_bwd_ms", "written_fwd_bwd_ms"):
        assert row[key] > 0
    assert 0 <= row["max_abs_diff"] < 1e-6  # fp32: the last bits, no more


def test_a_compiled_step_computes_the_eager_loss_or_says_why_it_did_not_compile(capsys):
    found = compiled_steps(("affinity",), profile="smoke", batch=8, min_run_time=0.01)
    row = found["affinity"]
    assert row["eager_ms"] > 0
    if not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
        assert row["error"]  # no C++ compiler on this machine: said, not raised
    else:  # with a compiler the step must compile; an error here is a failure
        assert "error" not in row, row.get("error")
        assert row["compiled_ms"] > 0 and row["compile_s"] > 0
        assert row["ratio"] == row["compiled_ms"] / row["eager_ms"]
        assert row["max_abs_diff"] < 1e-5
    print_fusion({"compiled_step_ms": found, "softmax_ms": softmax_costs(((4, 2, 3),), 0.01)})
    printed = capsys.readouterr().out
    assert "affinity" in printed and "4×2×3" in printed
