"""lm/char-drift: gradual switches between alphabets, drawn without a loop over positions."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from suite.tasks.families.lm.data import draw_batch
from suite.tasks.families.lm.spec import CharData
from suite.tasks.loading import load_all_tasks, select_tasks


def drift_data(**changes) -> CharData:
    fields = {"seq_len": 64, "switch_at": 28, "drift": 8, "mid": (38, 55), **changes}
    return CharData(**fields)


def test_the_new_domain_share_grows_linearly_over_the_drift():
    data = drift_data()
    batch = draw_batch(data, 20000, seed=7)
    share = (batch.domains == 1).float().mean(0)
    assert share[:28].sum() == 0 and (share[36:] == 1).all()
    expected = torch.arange(1, 9) / 9.0
    assert torch.allclose(share[28:36], expected, atol=0.015), share[28:36]


def test_characters_stay_in_their_domains_alphabet_and_walks_restart_at_changes():
    data = drift_data()
    batch = draw_batch(data, 512, seed=3)
    size = data.vocab // data.n_domains
    assert torch.equal(batch.chars // size, batch.domains)
    # within a domain the next letter is +1, +2 or a uniform draw; a change of domain is a
    # fresh start, so no cross-domain pair is "prev + 1" in the relative alphabet by force
    rel = batch.chars % size
    same = batch.domains[:, 1:] == batch.domains[:, :-1]
    step = (rel[:, 1:] - rel[:, :-1]) % size
    share_walk = ((step == 1) | (step == 2))[same].float().mean()
    assert share_walk > 0.8  # p_next + p_skip = 0.85, plus uniform draws landing on +1/+2


def test_a_drift_must_end_before_the_next_switch_and_inside_the_sequence():
    with pytest.raises(ValidationError, match="drift"):
        drift_data(drift=40)
    with pytest.raises(ValidationError, match="drift"):
        drift_data(more_switches=[32])


def test_without_drift_the_switch_is_abrupt():
    batch = draw_batch(drift_data(drift=0), 256, seed=1)
    assert (batch.domains[:, :28] == 0).all() and (batch.domains[:, 28:] == 1).all()


def test_the_char_drift_task_runs_on_its_smoke_profile(sweep):
    summary, records = sweep(["lm/char-drift"], ["affinity", "beta"], seeds=1)
    assert summary.ok == 2, summary.failures
    for record in records:
        assert 0 < record.metrics["bpc_all"] < 6
        assert set(record.metrics) >= {"bpc_transition", "p_correct_mid"}


def test_the_spec_loads_with_its_profiles():
    task = select_tasks(load_all_tasks(), ["lm/char-drift"])[0]
    for profile in ("smoke", "default", "paper"):
        assert task.for_profile(profile).data.drift == 8
