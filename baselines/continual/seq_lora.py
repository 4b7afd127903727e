"""SeqLoRA, the sequential fine-tuning lower bound of O-LoRA's tables (Wang et al. 2023).

    logits_t = F · e_0        (F = 1e4: every token uses adapter 0, the runner-up gets weight 0)

One LoRA adapter is fine-tuned through the whole task sequence with no protection, so it shows
how much plain sequential training forgets. The continual family always mixes its pool of
sub-experts through a router, so the baseline is a router with no parameters that reduces the
pool to a single adapter.
"""

from __future__ import annotations

from torch import Tensor

from baselines._papers import WANG_OLORA_2023, WANG_OLORA_2023_URL
from baselines.continual._common import ContinualRouter, forced_logits
from suite.contract import GateOutput, State
from suite.gates.entries import register_gate


@register_gate(
    "seq-lora",
    description="One adapter fine-tuned through the sequence (SeqLoRA): every token uses adapter "
    "0; the forgetting lower bound.",
    paper=WANG_OLORA_2023,
    equation="logits_t = 1e4 e_0",
    url=WANG_OLORA_2023_URL,
)
class SeqLoRAGate(ContinualRouter):
    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        return GateOutput(forced_logits(x, self.info.n_experts, 0))  # constant, no parameters
