"""Stateless last-token control of Table 1 (Wong 2026, section 4.1).

    logits_T = W x_T, read at the final step only

On tasks scored at every position it would be the affinity gate again, so it declares itself for
final-step readouts only.
"""

from __future__ import annotations

from typing import Any

from baselines._papers import WONG_2026, WONG_2026_URL
from baselines.affinity import AffinityGate
from suite.contract import TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "last-token",
    description="Table 1 control: the affinity gate read at the final token only.",
    paper=WONG_2026,
    equation="logits_T = W x_T",
    url=WONG_2026_URL,
)
class LastTokenGate(AffinityGate):
    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        if info.get("readout") != "final":
            return False, "a last-token control only differs from affinity on final-step readouts"
        return True, ""
