"""ReMix's reinforcement routing (2025): k experts with equal, constant weights; the router is a
policy trained with REINFORCE leave-one-out (RLOO), the supervised loss as the negative reward.

    π(· | x_t) = softmax(W x_t);  used: the k most probable experts, each weighted 1/k
    training: M sets S_1..S_M of k experts drawn from π without replacement (Gumbel-top-k), each
    scored by the family with equal weights (loss L_m per position), and
    ĝ = (1/M) Σ_m (L_m − mean_{j≠m} L_j) ∇ log π(S_m | x_t)

Constant weights keep one expert from dominating the mixture; no gradient reaches W through
them, only through the policy term. The family scores the sets (``suite.contract``, Requests:
``Samples``); log π of a drawn set is that of its draw order, Σ_i log p_{s_i} − log(1 − Σ_{j<i}
p_{s_j}) (ours: the paper's set probability sums over orders). M = 2, the fewest RLOO allows
(ours: the cheapest; the paper scales M up for accuracy).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from baselines._papers import REMIX_2025, REMIX_2025_URL
from baselines.zoo._common import log_weights, needs_lm, own_generator, top_k_mask
from suite.contract import GateOutput, RouterGate, Samples, State, TaskInfo
from suite.gates.entries import register_gate


def draw_sets(probs: Tensor, k: int, m: int, generator: torch.Generator) -> Samples:
    """M sets of k distinct experts per position drawn from ``probs`` (..., E) without
    replacement (Gumbel-top-k), with the log-probability of each draw order."""
    shape = (m, *probs.shape)
    uniform = torch.rand(shape, generator=generator, dtype=probs.dtype).to(probs.device)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
    logp = torch.log(probs.clamp(min=1e-30))
    experts = (logp.detach().unsqueeze(0) + gumbel).topk(k, dim=-1).indices  # (M, ..., k)
    chosen = probs.unsqueeze(0).expand(shape).gather(-1, experts)
    before = chosen.cumsum(-1) - chosen  # mass drawn before each pick
    log_prob = (chosen.clamp(min=1e-30).log() - (1.0 - before).clamp(min=1e-30).log()).sum(-1)
    return Samples(experts, log_prob)


@register_gate(
    "remix",
    description="ReMix: the k most probable experts, weighted equally; the router is a policy "
    "trained by RLOO on sampled expert sets.",
    paper=REMIX_2025,
    equation="top-k of softmax(W x), weights 1/k; ĝ = mean_m (L_m − mean_{j≠m} L_j) ∇log π(S_m|x)",
    url=REMIX_2025_URL,
)
class ReMixRouter(RouterGate):
    def __init__(self, info: TaskInfo, samples: int = 2) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)
        self.k = int(info.get("top_k", 1))
        self.samples = int(samples)
        self.generator = own_generator()

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        ok, why = needs_lm(info)
        if ok and "samples" not in (info.get("requests") or ()):
            return False, "ReMix needs a family that scores sampled expert sets (requests)"
        if ok and int(hparams.get("samples", 2)) < 2:
            return False, "RLOO needs at least 2 samples"
        return ok, why

    def _route(self, x: Tensor) -> tuple[Tensor, Tensor]:
        probs = torch.softmax(self.W(x), dim=-1)
        used = top_k_mask(probs, self.k).to(probs.dtype) / self.k
        return log_weights(used), probs

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        logits, probs = self._route(x)
        samples = None
        if self.training and torch.is_grad_enabled():
            samples = draw_sets(probs, self.k, self.samples, self.generator)
        return GateOutput(logits, None, None, samples)

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        return GateOutput(self._route(x_t)[0], None)
