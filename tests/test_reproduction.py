"""Paper-scale reproduction of Table 5's shape (slow: about 1.5 minutes on 2 cores)."""

from __future__ import annotations

import pytest

from suite.results.aggregate import aggregate

TABLE5 = ["affinity", "beta", "pi", "ant", "beta+pi", "beta+ant", "pi+ant", "beta+pi+ant", "oracle"]


@pytest.mark.slow
def test_anticipation_paper_profile_has_the_shape_of_table5(sweep):
    summary, records = sweep(["transition/anticipation"], TABLE5, profile="paper")
    assert summary.ok == 45
    result = aggregate(records).tasks[0]
    acc = {g: result.gates[g].cells["acc_transition"].summary.mean for g in TABLE5}
    assert acc["affinity"] < 0.05
    assert abs(acc["ant"] - acc["affinity"]) < 0.02
    assert 0.2 < acc["beta"] < 0.4
    assert acc["beta+ant"] > 0.65
    assert acc["oracle"] > 0.95
    beta_ant = next(i for i in result.ablation.interactions if set(i.factors) == {"beta", "ant"})
    assert beta_ant.summary.mean > 0.3 and beta_ant.summary.ci_low > 0
    verdicts = {(v.subject, v.claim.metric): v.verdict for v in result.claims}
    assert verdicts[("beta×ant", "acc_transition")] == "reproduced"


def test_table5_headline_reproduces_at_the_papers_settings(sweep):
    """In the fast suite: affinity, β and β+Ant at Table 5's own settings (800 epochs of 512
    sequences), three seeds, judged against the paper's numbers by the verdict logic itself
    (equivalence within each claim's declared margin, one-sided tests at 5%)."""
    gates = ["affinity", "beta", "beta+ant"]
    summary, records = sweep(["transition/anticipation"], gates, profile="paper", seeds=3)
    assert summary.ok == 9, summary.failures
    result = aggregate(records).tasks[0]
    assert result.task.spec_hash == result.task.paper_spec_hash  # judged, not "not comparable"
    verdicts = {(v.subject, v.claim.metric): v for v in result.claims if v.claim.gate in gates}
    judged = [  # Table 5's own numbers (the abstract's "probabilities" are judged apart)
        v for v in verdicts.values()
        if v.claim.source.startswith("Table 5") and (v.claim.versus or "affinity") in gates
    ]  # fmt: skip
    assert judged and all(v.verdict != "contradicted" for v in judged), [
        (v.subject, v.claim.metric, v.detail) for v in judged if v.verdict == "contradicted"
    ]
    for key in [
        ("beta+ant", "acc_transition"),  # 0.748 ± 0.002
        ("beta+ant", "acc_all"),  # 0.957 ± 0.000
        ("affinity", "acc_all"),  # 0.904 ± 0.000
        ("beta+ant − affinity", "acc_transition"),  # the paired gain, +0.741 ± 0.002
    ]:
        assert verdicts[key].verdict == "reproduced", (key, verdicts[key].detail)
