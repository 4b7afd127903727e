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
