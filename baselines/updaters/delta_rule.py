"""The delta rule on the B factors of LoRA (DeltaNet: Schlag et al. 2021; Yang et al. 2024).

Each adapted matrix keeps a static learned A_m (d_in x r) and a fast B_m (r x d_out); the B
factors of all matrices form one memory M (r x sum d_out), keyed in the r-dimensional space:

    k_t = normalise(W_k h_t),  v_t = W_v h_t,  beta_t = sigmoid(w h_t + b)
    M_t = M_{t-1} + beta_t k_t (v_t - M_{t-1}^T k_t)^T

so a write replaces what the key held instead of adding to it. The forward pass is chunkwise
(the WY form of Yang et al. 2024): within a chunk of C positions the corrected values
U = (I + tril(diag(beta) K K^T, -1))^{-1} diag(beta) (V - K M_0) come from one triangular solve,
and M at every position is M_0 plus a cumulative sum of k_i u_i^T; ``step`` is the recurrence.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.updaters._factors import FactorLayout, needs_adapted
from suite.contract import State, TaskInfo, UpdaterGate, UpdaterOutput
from suite.gates.entries import register_gate

DELTANET = "Yang et al. (2024), Parallelizing Linear Transformers with the Delta Rule"
DELTANET_URL = "https://arxiv.org/abs/2406.06484"


@register_gate(
    "delta-rule",
    description="DeltaNet's delta rule writing the B factors of LoRA (chunkwise form).",
    paper=DELTANET,
    url=DELTANET_URL,
    equation="M_t = M_{t-1} + beta_t k_t (v_t - M_{t-1}^T k_t)^T",
)
class DeltaRuleUpdater(UpdaterGate):
    def __init__(self, info: TaskInfo, chunk: int = 16, beta_init: float = 0.5) -> None:
        super().__init__(info)
        self.layout = FactorLayout(info)
        self.chunk = chunk
        r = int(info.rank)
        self.rank = r
        self.d_in = [a[0] for a in self.layout.shapes[0::2]]
        self.d_out = [b[1] for b in self.layout.shapes[1::2]]
        D = info.d_model
        self.A = nn.ParameterList(nn.Parameter(torch.randn(d, r) / d**0.5) for d in self.d_in)
        self.key = nn.Linear(D, r)
        self.value = nn.Linear(D, sum(self.d_out))
        nn.init.zeros_(self.value.weight)  # B factors start at zero, as LoRA's do
        nn.init.zeros_(self.value.bias)
        self.beta = nn.Linear(D, 1)
        with torch.no_grad():
            self.beta.bias.fill_(float(torch.logit(torch.tensor(beta_init))))

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_adapted(info)

    def initial_state(self, batch_size: int) -> State:
        w = self.value.weight
        return w.new_zeros(batch_size, self.rank, sum(self.d_out))

    def _keys_values(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return F.normalize(self.key(h), dim=-1), self.value(h)

    def _inputs(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return *self._keys_values(h), torch.sigmoid(self.beta(h))[..., 0]

    def _factors(self, M: Tensor) -> tuple[Tensor, ...]:
        """(..., r, sum d_out) memories -> (A_0, B_0, A_1, B_1, ...) with A broadcast."""
        lead = M.shape[:-2]
        out: list[Tensor] = []
        for A, B in zip(self.A, M.split(self.d_out, dim=-1), strict=True):
            out += [A.expand(*lead, *A.shape), B]
        return tuple(out)

    def _decay(self, h: Tensor) -> Tensor | None:
        """log alpha_t, the memory's decay per position; None: no decay (the plain rule)."""
        return None

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        M = self.initial_state(x.shape[0]) if state is None else state
        states = memories(*self._inputs(x), M, self._decay(x), self.chunk)
        return UpdaterOutput(self._factors(states), states[:, -1])

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        M = self.initial_state(x_t.shape[0]) if state is None else state
        M = delta_step(M, *self._inputs(x_t), self._decay(x_t))
        return UpdaterOutput(self._factors(M), M)


def memories(
    k: Tensor, v: Tensor, beta: Tensor, M: Tensor, log_alpha: Tensor | None, chunk: int
) -> Tensor:
    """The memory after every position (B, T, r, d), chunk by chunk from M (B, r, d)."""
    states = []
    for s in range(0, k.shape[1], chunk):
        part = slice(s, s + chunk)
        decay = None if log_alpha is None else log_alpha[:, part]
        states.append(chunk_states(k[:, part], v[:, part], beta[:, part], M, decay))
        M = states[-1][:, -1]
    return torch.cat(states, dim=1)


def delta_step(
    M: Tensor, k: Tensor, v: Tensor, beta: Tensor, log_alpha: Tensor | None = None
) -> Tensor:
    """One position of the (gated) delta rule: M (B, r, d), k (B, r), v (B, d), beta (B,)."""
    if log_alpha is not None:
        M = log_alpha.exp()[:, None, None] * M
    error = v - (M * k[..., None]).sum(1)  # v - M^T k (of the decayed memory)
    return M + beta[:, None, None] * k[..., None] * error[:, None, :]


def chunk_states(
    k: Tensor, v: Tensor, beta: Tensor, M0: Tensor, log_alpha: Tensor | None = None
) -> Tensor:
    """Memories after each position of one chunk (B, C, r, d), from M0 (B, r, d).

    With a decay alpha_t (Gated DeltaNet), M_t = alpha_t M_{t-1} + k_t u_t^T where
    u_t = beta_t (v_t - alpha_t M_{t-1}^T k_t); unrolled from the chunk's start with
    g_t = sum_{s<=t} log alpha_s, every factor is exp(g_t - g_i) <= 1, so nothing overflows:

        (I + tril(diag(beta) (G o K K^T), -1)) U = diag(beta) (V - diag(e^g) K M0)
        M_t = e^{g_t} M0 + sum_{i<=t} e^{g_t - g_i} k_i u_i^T
    """
    C = k.shape[1]
    lower = torch.ones(C, C, dtype=torch.bool, device=k.device).tril()
    if log_alpha is None:
        decay = lower.to(k.dtype).expand(k.shape[0], C, C)
        start = torch.ones_like(beta)
    else:
        g = torch.cumsum(log_alpha, dim=1)  # (B, C)
        decay = torch.exp((g[:, :, None] - g[:, None, :]).masked_fill(~lower, float("-inf")))
        start = g.exp()
    L = (beta[..., None] * decay * (k @ k.transpose(1, 2))).tril(-1)
    eye = torch.eye(C, dtype=k.dtype, device=k.device)
    rhs = beta[..., None] * (v - start[..., None] * (k @ M0))  # (B, C, d)
    U = torch.linalg.solve_triangular(eye + L, rhs, upper=False, unitriangular=True)
    writes = torch.einsum("bti,bir,bid->btrd", decay, k, U)
    return start[..., None, None] * M0[:, None] + writes
