"""The harness's Adam: its multi-tensor step gives the single-tensor step's numbers bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from suite.tasks.training import adam


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 26), nn.LayerNorm(26))


@pytest.mark.parametrize("lr", [0.003, 0.01])
def test_foreach_adam_is_bit_identical_to_the_single_tensor_step(lr: float) -> None:
    ours, plain = _model(0), _model(0)
    opt_ours = adam(ours.parameters(), lr)
    opt_plain = torch.optim.Adam(plain.parameters(), lr=lr, foreach=False)
    for step in range(60):
        torch.manual_seed(100 + step)
        x, y = torch.randn(32, 16), torch.randint(0, 26, (32,))
        for model, opt in ((ours, opt_ours), (plain, opt_plain)):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            if step % 7 == 3:  # a parameter without a gradient this step is skipped by both
                model[3].bias.grad = None
            opt.step()
    for a, b in zip(ours.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)
    assert opt_ours.defaults["foreach"] is True
