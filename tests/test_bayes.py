"""The Bayes-optimal ceiling of the routing streams: exact filtering equals brute-force
enumeration, it passes the contract's checks as a causal gate, and no ranked gate beats it."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.bayes import SHARPNESS, BayesFilter
from suite.contract import TaskInfo
from suite.gates.conformance import run_conformance
from suite.gates.entries import get_gate
from suite.results.aggregate import aggregate
from suite.tasks.family import get_family

TINY = {
    "kind": "routing-stream",
    "seq_len": 5,
    "d_model": 4,
    "n_domains": 2,
    "domain_experts": [0, 2],
    "noise_std": 0.9,
    "signal": 1.0,
    "switch_at": [1, 3],
    "signal_until": None,
    "target": "next-domain",
    "readout": "all",
}


def _brute_force(x: torch.Tensor, g: dict) -> torch.Tensor:
    """P(expert | x_<=t) by enumerating every (start, other, switch) with Gaussian densities."""
    B, T, D = x.shape
    block = D // g["n_domains"]
    means = torch.eye(g["n_domains"], dtype=torch.float64).repeat_interleave(block, dim=1)
    low, high = g["switch_at"]
    out = torch.zeros(B, T, 4, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            weights = torch.zeros(4, dtype=torch.float64)
            for s in range(2):
                for k in range(low, high + 1):
                    o = 1 - s
                    dom = [s if u < k else o for u in range(T)]
                    log_p = 0.0
                    for u in range(t + 1):
                        diff = x[b, u].double() - means[dom[u]]
                        log_p += float(-0.5 * (diff @ diff) / g["noise_std"] ** 2)
                    nxt = dom[min(t + 1, T - 1)]
                    weights[g["domain_experts"][nxt]] += math.exp(log_p)
            out[b, t] = weights / weights.sum()
    return out


def test_the_filter_equals_brute_force_enumeration():
    info = TaskInfo(d_model=4, n_experts=4, seq_len=5, extras={"generator": TINY})
    gate = BayesFilter(info)
    x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(3)) * 0.9
    x[:, :2, :2] += 1.0  # some sequences look like domain 0 early
    exact = _brute_force(x, TINY)
    with torch.no_grad():
        got = torch.softmax(gate(x).logits.double() / SHARPNESS, dim=-1)
    assert torch.allclose(got, exact, atol=1e-5)
    assert torch.equal(gate(x).logits.argmax(-1), exact.argmax(-1))


def test_bayes_passes_the_contract_as_a_causal_gate_and_is_a_ceiling(tasks):
    spec = tasks["transition/anticipation"]
    family = get_family(spec.family)
    entry = get_gate("bayes")
    assert entry.causal and entry.ceiling
    assert not entry.supports(family.task_info(spec))[0]  # without the generator: no ceiling
    report = run_conformance(entry, family.ceiling_info(spec), None, seed=0)
    assert report.verdict == "ranked", report.reason()  # every check passed, causality too
    mixture = tasks["transition/precision-static"]
    ok, reason = entry.supports(get_family(mixture.family).ceiling_info(mixture))
    assert not ok and "no Bayes-optimal ceiling" in reason
    random = tasks["transition/anticipation-random-switch"]
    assert entry.supports(family.ceiling_info(random))[0]
    assert get_gate("bayes-at-transition").supports(family.ceiling_info(random))[0]


CEILINGS = {  # task -> {metric: the ceiling of that metric}
    "transition/anticipation": {"acc_transition": "bayes", "acc_all": "bayes"},
    "transition/anticipation-random-switch": {
        "acc_transition": "bayes-at-transition",
        "acc_all": "bayes",
    },
    "transition/domain-switch": {"acc_all": "bayes"},
}


@pytest.mark.parametrize("task_id", sorted(CEILINGS))
def test_no_ranked_gate_beats_the_bayes_ceilings(sweep, task_id):
    gates = ["bayes", "bayes-at-transition", "affinity", "gru", "clock", "beta+ant", "oracle"]
    _, records = sweep([task_id], gates, seeds=2)
    result = aggregate(records).tasks[0]
    ranked = [g for g in result.gates.values() if g.status == "ok"]
    assert {"affinity", "gru", "clock", "beta+ant"} <= {g.gate.id for g in ranked}
    for metric, ceiling_id in CEILINGS[task_id].items():
        bayes = result.gates[ceiling_id]
        assert bayes.status == "ceiling" and all(r.gate.ceiling for r in bayes.records.values())
        ceiling = bayes.cells[metric].summary
        top = ceiling.mean if ceiling.ci_high is None else ceiling.ci_high
        for gate in ranked:  # within the interval: a finite sample can favour a gate by chance
            summary = gate.cells[metric].summary
            low = summary.mean if summary.ci_low is None else summary.ci_low
            assert low <= top + 1e-9, (metric, gate.gate.id, summary.mean, ceiling.mean)
