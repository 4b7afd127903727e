"""The Bayes-optimal causal router of a routing stream: the best any causal gate can do.

The generator's latent process is small and known: a start domain s, a second domain o != s and a
switch position k (fixed, drawn from a range, or none), each uniform. Given the tokens so far, exact
filtering weighs every hypothesis h = (s, o, k) by its likelihood

    log p(x_<=t | h) = sum_{u<=t} (x_u . mu_h(u) - |mu_h(u)|^2 / 2) / sigma^2 + const,

with mu_h(u) the signal of h's domain at u (zero after ``signal_until``), and routes on the
posterior probability of each expert being the correct one at t, sharpened to its argmax:

    P(e | x_<=t) = sum_h p(h | x_<=t) [expert_h(t) = e],    logits_t = 1000 log P(e | x_<=t)

The argmax maximises the accuracy at every position, and the probability a gate puts on the
correct expert is at most that accuracy, so the gate bounds accuracy and probability metrics
alike. It is causal and has no parameters, but it knows the task's generator, so it is a labelled
ceiling (shown, never ranked): the normalised score's 1. The non-causal ``oracle`` reads x[t+1]
instead and is not a bound for causal gates (a causal gate that counts positions can beat it).

Where the switch position is random, a metric taken at the transition conditions on a latent
event, and the per-position optimum is no bound for it: a gate that always predicts "the switch
is next" scores higher there and lower elsewhere. Over causal gates, the best accuracy at the
transition is reached by routing at each t on the posterior *given that the transition is at t*
(hypotheses whose switch makes t the transition), which is still a causal rule. That gate is
registered as ``bayes-at-transition``: the ceiling of metrics taken at the transition, as
``bayes`` is of metrics over every position. With a fixed switch the two agree there.
"""

from __future__ import annotations

from itertools import product
from typing import Any, ClassVar

import torch
from torch import Tensor

from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate

LOG_FLOOR = -80.0  # log-probability of an expert that cannot be correct (finite, never chosen)
SHARPNESS = 1000.0  # softmax(SHARPNESS log P) is the posterior's argmax (ties split evenly)


def hypotheses(generator: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    """(start, other, switch) of every latent hypothesis, as (H,) int64 tensors, and their prior
    is uniform: each (s, o) pair and each switch position equally likely."""
    n = generator["n_domains"]
    switch = generator["switch_at"]
    if switch is None:
        switches = [generator["seq_len"]]
    elif isinstance(switch, int):
        switches = [switch]
    else:
        switches = list(range(switch[0], switch[1] + 1))
    rows = [(s, o, k) for s, o, k in product(range(n), range(n), switches) if o != s]
    table = torch.tensor(rows, dtype=torch.long)
    return table[:, 0], table[:, 1], table[:, 2]


def domain_signals(generator: dict[str, Any]) -> Tensor:
    """(n_domains, D): the generator's domain means (block d of the dimensions at ``signal``)."""
    n, D = generator["n_domains"], generator["d_model"]
    block = D // n
    return torch.eye(n).repeat_interleave(block, dim=1) * float(generator["signal"])


@register_gate(
    "bayes",
    description="Bayes-optimal causal routing: exact filtering over the generator's latent "
    "start domain, second domain and switch position (knows the generator; the labelled "
    "ceiling of metrics over every position).",
    equation="logits_t = 1000 log sum_h p(h | x_<=t) [expert_h(t) = e]",
)
@register_gate(
    "bayes-at-transition",
    description="Bayes-optimal causal routing for metrics taken at the transition: the "
    "posterior given that the transition is at t (knows the generator; a labelled ceiling).",
    equation="logits_t = 1000 log sum_h p(h | x_<=t, transition at t) [expert_h(t) = e]",
    at_transition=True,
)
class BayesFilter(RouterGate):
    ceiling: ClassVar[bool] = True
    bayes_optimal: ClassVar[bool] = True

    def __init__(self, info: TaskInfo, at_transition: bool = False) -> None:
        super().__init__(info)
        self.at_transition = at_transition
        g = info.generator
        self.sigma2 = max(float(g["noise_std"]) ** 2, 1e-12)
        self.next_domain = g["target"] == "next-domain"
        self.signal_until = g["signal_until"]
        start, other, switch = hypotheses(g)
        self.register_buffer("start", start)
        self.register_buffer("other", other)
        self.register_buffer("switch", switch)
        self.register_buffer("signals", domain_signals(g))  # (n, D)
        self.register_buffer("experts", torch.tensor(g["domain_experts"], dtype=torch.long))

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        generator = info.get("generator")
        if not generator or generator.get("kind") != "routing-stream":
            return False, "no Bayes-optimal ceiling is computed for this task's generator"
        if hparams.get("at_transition") and generator.get("switch_at") is None:
            return False, "the stream has no transition"
        return True, ""

    def initial_state(self, batch_size: int) -> State:
        """(log-likelihood of each hypothesis (B, H), positions seen (B,))."""
        H = self.start.shape[0]
        return torch.zeros(batch_size, H), torch.zeros(batch_size, dtype=torch.long)

    def _domains(self, positions: Tensor) -> Tensor:
        """(B, T, H): each hypothesis's domain at each absolute position."""
        before = positions[..., None] < self.switch  # (B, T, H)
        return torch.where(before, self.start, self.other)

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        B, T, _ = x.shape
        loglik, seen = self.initial_state(B) if state is None else state
        loglik, seen = loglik.to(x), seen.to(x.device)
        positions = seen[:, None] + torch.arange(T, device=x.device)  # (B, T)
        domains = self._domains(positions)  # (B, T, H)
        means = self.signals.to(x)
        fit = x @ means.T - 0.5 * (means * means).sum(-1)  # (B, T, n): per domain's mean
        if self.signal_until is not None:
            fit = fit * (positions < self.signal_until)[..., None].to(x)  # no signal: no evidence
        step = fit.gather(-1, domains) / self.sigma2  # (B, T, H)
        cumulative = loglik[:, None] + step.cumsum(dim=1)  # (B, T, H)
        weights = cumulative
        if self.at_transition:  # only the hypotheses whose transition is at t (where there are)
            transition = self.switch - 1 if self.next_domain else self.switch  # (H,)
            here = positions[..., None] == transition  # (B, T, H)
            some = here.any(dim=-1, keepdim=True)
            weights = cumulative.masked_fill(some & ~here, float("-inf"))
        posterior = torch.softmax(weights, dim=-1)
        ahead = positions + 1 if self.next_domain else positions
        # the last position has no next token: its target is its own domain (as the generator's)
        ahead = torch.minimum(ahead, torch.full_like(ahead, self.info.seq_len - 1))
        correct = self.experts[self._domains(ahead)]  # (B, T, H)
        prob = torch.zeros(B, T, self.info.n_experts, dtype=x.dtype, device=x.device)
        prob.scatter_add_(-1, correct, posterior)
        logits = prob.clamp_min(1e-35).log().clamp_min(LOG_FLOOR) * SHARPNESS
        return GateOutput(logits, (cumulative[:, -1], seen + T))

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        out = self.forward(x_t.unsqueeze(1), state)
        return GateOutput(out.logits.squeeze(1), out.state)
