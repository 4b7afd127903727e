"""Known answers for the scalar metrics of every task family and the leaderboard's normalised
score: tiny hand-built inputs whose right value is worked out in the test, fed to the suite's own
metric code (the continual family's R-matrix scalars are in test_continual_metrics.py)."""

from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor

from suite.contract import GateOutput, RouterGate, State, UpdaterOutput
from suite.results.aggregate import aggregate
from suite.results.leaderboard import task_scale
from suite.seeding import RunSeeds
from suite.tasks.coverage import k_for_coverage
from suite.tasks.families.continual import metrics as cl
from suite.tasks.families.continual.protocol import _changed
from suite.tasks.families.facts import evaluation
from suite.tasks.families.facts import protocol as facts_protocol
from suite.tasks.families.facts.data import scored_labels
from suite.tasks.families.facts.pretrain import answer_accuracy, vocab_of
from suite.tasks.families.facts.vocab import ASK, IGNORE, Vocab
from suite.tasks.families.lm.data import CharBatch
from suite.tasks.families.lm.protocol import Window
from suite.tasks.families.lm.spec import CharData
from suite.tasks.families.transition import mixture, routing
from suite.tasks.families.transition.data import MixtureStream
from suite.tasks.families.transition.spec import ExpertMixtureData, TransitionSpec
from suite.tasks.family import RunContext
from tests.synthetic import synthetic_records

LN2 = math.log(2.0)

# -- K(99%) ---------------------------------------------------------------------------------------


def test_k_for_coverage_is_the_smallest_whole_k_that_reaches_99_percent():
    # K = ceil(log 0.01 / log(1 - p)); coverage_k (unrounded) is in test_claims.py
    assert k_for_coverage(0.5) == 7  # 0.5^6 = 0.0156 > 0.01 >= 0.5^7 = 0.0078
    assert k_for_coverage(0.2) == 21  # log 0.01 / log 0.8 = 20.64
    assert k_for_coverage(0.9) == 2  # 0.1^2 = 0.01 exactly: two draws suffice
    assert k_for_coverage(0.99) == 1  # one draw already covers
    assert k_for_coverage(0.989) == 2  # just short of 0.99: one draw does not


# -- transition: routing streams ------------------------------------------------------------------


class CurrentDomain(RouterGate):
    """No parameters: logits log(4) on the expert of the domain x_t shows, so p = 0.8 there and
    0.2 on the other expert (2 domains, d_model 2, domain d = x on dimension d, noise 0)."""

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        return GateOutput(x * math.log(4.0))


def _routing_spec(tasks, target: str) -> TransitionSpec:
    raw = tasks["transition/anticipation"].model_dump()
    raw.update(
        data={
            "kind": "routing-stream", "seq_len": 4, "d_model": 2, "n_domains": 2,
            "domain_experts": [0, 1], "noise_std": 0.0, "signal": 1.0, "switch_at": [1, 2],
            "target": target, "readout": "all",
        },
        model={"n_experts": 2},
        train={"lr": 0.01, "batch_size": 5, "epochs": 3, "eval_window": 2},
    )  # fmt: skip
    return TransitionSpec.model_validate(raw)


def test_routing_metrics_of_a_gate_that_follows_the_current_domain(tasks):
    """next-domain target, 4 tokens, scored positions 0..2, switch at 1 or 2: the transition is
    the step before the switch, where the gate still shows the old domain (p 0.2, wrong); on the
    two other scored steps input and next domain agree (p 0.8, right)."""
    spec = _routing_spec(tasks, "next-domain")
    gate = CurrentDomain(routing.task_info(spec))
    out = routing.run(spec, gate, RunContext(seeds=RunSeeds(0, spec.id, 0)))
    assert out.metrics == pytest.approx(
        {
            "acc_all": 2 / 3,
            "p_correct_all": (0.8 + 0.2 + 0.8) / 3,  # 0.6
            "acc_transition": 0.0,
            "p_correct_transition": 0.2,
            "k99_transition": 21.0,  # ceil(log 0.01 / log 0.8) = ceil(20.64)
        }
    )
    assert out.arrays["acc_by_position"].as_array().mean() == pytest.approx(2 / 3)


def test_routing_metrics_when_the_target_is_the_current_domain(tasks):
    """current-domain target: the transition is the switch itself, which the gate already sees."""
    spec = _routing_spec(tasks, "current-domain")
    gate = CurrentDomain(routing.task_info(spec))
    out = routing.run(spec, gate, RunContext(seeds=RunSeeds(0, spec.id, 0)))
    assert out.metrics == pytest.approx(
        {
            "acc_all": 1.0,
            "p_correct_all": 0.8,
            "acc_transition": 1.0,
            "p_correct_transition": 0.8,
            "k99_transition": 3.0,  # ceil(log 0.01 / log 0.2) = ceil(2.86)
        }
    )


# -- transition: expert mixture -------------------------------------------------------------------


class Precision(RouterGate):
    """Uniform weights, and a Pi diagnostic that moves with the step it last observed:
    [1, 1 + step, 2, 1]."""

    def __init__(self, info) -> None:
        super().__init__(info)
        self.step_seen = 0

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        return GateOutput(torch.zeros(*x.shape[:2], self.info.n_experts))

    def observe(self, feedback) -> None:
        self.step_seen = feedback.step

    def diagnostics(self) -> dict[str, Tensor]:
        return {"pi": torch.tensor([1.0, 1.0 + self.step_seen, 2.0, 1.0])}


def test_pi_contrast_is_the_final_largest_over_smallest_precision(tasks):
    raw = tasks["transition/precision-static"].model_dump()
    raw["train"] = {"lr": 0.01, "batch_size": 4, "epochs": 4, "eval_window": 2}
    raw["model"] = {"n_experts": 4, "expert_hidden": 2}
    spec = TransitionSpec.model_validate(raw)
    assert "pi_contrast" in spec.metrics
    out = mixture.run(spec, Precision(mixture.task_info(spec)), RunContext(RunSeeds(0, spec.id, 0)))
    # Pi after the last step (3): [1, 4, 2, 1] -> 4 / 1 (the first step's Pi would give 2)
    assert out.metrics["pi_contrast"] == pytest.approx(4.0)


def _shift_data() -> ExpertMixtureData:
    # after the swap at step 2 the noise stds are [1.5, 0.5, 0.1, 0.5]: expert 2 is the most
    # reliable, then 1 and 3 (tied, either order), then 0
    return ExpertMixtureData(
        kind="expert-mixture",
        d_model=2,
        expert_noise=[[0.1, 0.1], [0.5, 0.5], [1.5, 1.5], [0.5, 0.5]],
        shift={"at": 2, "swap": (0, 2)},
    )


def test_detection_and_reorder_steps_count_from_the_shift():
    data = _shift_data()
    pi = torch.tensor(
        [
            [1.0, 2.0, 6.0, 3.0],  # step 0: already in the new order, but before the shift
            [10.0, 2.0, 1.0, 2.0],  # step 1
            [10.0, 2.0, 1.0, 2.0],  # step 2: the shift
            [5.0, 2.0, 6.0, 2.0],  # step 3: Pi_2 > Pi_0 (detected); 0 still above 1 and 3
            [1.0, 2.0, 6.0, 3.0],  # step 4: 2 > {1, 3} > 0, with 3 > 1 allowed (a tie in noise)
            [1.0, 2.0, 6.0, 3.0],
        ]
    )
    notes: list[str] = []
    out = mixture._shift_metrics(MixtureStream(data, 0), pi, data, notes)
    assert out == {"detection_step": 1.0, "reorder_step": 2.0}  # steps 3 and 4, less 2
    assert notes == []


def test_pi_that_never_reorders_reports_no_step():
    data = _shift_data()
    pi = torch.tensor([[10.0, 2.0, 1.0, 2.0]] * 5)
    notes: list[str] = []
    assert mixture._shift_metrics(MixtureStream(data, 0), pi, data, notes) == {}
    assert len(notes) == 2 and "never ranked expert 2 above expert 0" in notes[0]


# -- facts ----------------------------------------------------------------------------------------


def test_answer_accuracy_reads_only_the_value_words():
    vocab = Vocab(n_entities=3, n_values=4, n_fillers=1)  # values are ids 5..8
    labels = torch.tensor([[5, IGNORE, 8], [6, 7, IGNORE]])
    logits = torch.zeros(2, 3, vocab.size)
    logits[..., ASK] = 100.0  # the best word overall is not a value: it does not count
    logits[0, 0, 5] = logits[0, 2, 6] = 1.0  # right, (ignored), wrong
    logits[1, 0, 6] = logits[1, 1, 7] = 1.0  # right, right, (ignored)
    hits = answer_accuracy(logits, labels, vocab)
    assert hits.tolist() == [1.0, 0.0, 1.0, 1.0]  # the 4 scored positions, row by row


def _fake_read(vocab, base, gate, tokens, info, state=None, labels=None, trunk=None):
    """Stands in for the base and updater. Reading support (no labels): the state is each
    episode's (index, reads so far). Answering: in context (no state) every query but the third
    (index 2) of a sequence is right; from a state, the queries with index < 2 / reads, and only
    from the episode's own state (another episode's is always wrong, so there is no leak)."""
    B = tokens.shape[0]
    if labels is None:
        if state is None:
            state = torch.stack([torch.arange(B).float(), torch.zeros(B)], 1)
        return None, UpdaterOutput((), state + torch.tensor([0.0, 1.0]))
    answers = scored_labels(labels)  # (B, K)
    q = torch.arange(answers.shape[1])[None, :]
    if state is None:
        right = q != 2
    else:
        own = state[:, 0] == torch.arange(B)
        right = own[:, None] & (q < 2 / state[:, 1:2])
    wrong = vocab.value0 + (answers - vocab.value0 + 1) % vocab.n_values
    logits = torch.zeros(*answers.shape, vocab.size)
    logits.scatter_(2, torch.where(right, answers, wrong)[..., None], 1.0)
    return logits, UpdaterOutput((), state)


class _NoUpdater(torch.nn.Module):
    def diagnostics(self) -> dict[str, Tensor]:
        return {}


def _facts_metrics(tasks, task_id: str, monkeypatch) -> tuple[dict[str, float], object]:
    spec = tasks[task_id].for_profile("smoke")
    monkeypatch.setattr(evaluation, "read", partial(_fake_read, vocab_of(spec)))
    ctx = RunContext(seeds=RunSeeds(spec.master_seed, spec.id, 0))
    tr = SimpleNamespace(gate=_NoUpdater(), ctx=ctx, optimizer=None, losses=None)
    out = facts_protocol._evaluate(spec, tr, None, 1.0, None)
    return out.metrics, (spec, ctx)


def test_facts_accuracies_in_context_persistent_and_at_capacity(tasks, monkeypatch):
    metrics, (spec, _) = _facts_metrics(tasks, "facts/sliding-window", monkeypatch)
    assert spec.data.n_facts == spec.data.n_queries == 4 and spec.eval.capacity == [4, 8]
    assert metrics == pytest.approx(
        {
            "acc_in_context": 3 / 4,  # queries 0, 1 and 3 of each episode's 4
            "acc_persistent": 2 / 4,  # one read of 4 facts: queries 0 and 1 of 4
            # the largest capacity, 8 facts: two reads, so query 0 of each sequence of 4 queries
            # (2 of 8); the capacity of 4 facts scores 2 / 4, the curve's maximum
            "acc_capacity_max": 2 / 8,
        }
    )


def test_facts_accuracy_on_overwritten_facts(tasks, monkeypatch):
    metrics, (spec, ctx) = _facts_metrics(tasks, "facts/overwrite", monkeypatch)
    d = spec.data
    over = evaluation.all_eval_episodes(spec, ctx.seeds.data, d.n_facts, d.n_queries).overwritten
    assert over.shape == (12, 4) and int(over.sum()) == 12 * d.overwrites
    # right on queries 0, 1 and 3: the share of the overwritten queries that fall there
    expected = over[:, [0, 1, 3]].sum().item() / over.sum().item()
    assert 0 < expected < 1 and expected != pytest.approx(3 / 4)
    assert metrics["acc_in_context"] == pytest.approx(3 / 4)
    assert metrics["acc_overwritten"] == pytest.approx(expected)


# -- continual: what test_continual_metrics.py does not cover -------------------------------------


def test_load_drift_and_routing_stability_average_below_the_diagonal():
    """Three tasks, 4 experts, k = 2, one probe token per task. Task 1 learned on {0, 1}; after
    task 2 it uses {0, 3} (overlap 1/2, loads [.5,.5,0,0] vs [.5,0,0,.5]: JS = 0.5 bit, since
    m = [.5,.25,0,.25] and each KL to m is 0.5 log2(2) = 0.5); after task 3 {2, 3} (overlap 0,
    disjoint loads: JS = 1). Task 2 ({1, 2}) never moves (1 and 0)."""
    t1, t2, t3 = np.array([[[0, 1]]]), np.array([[[1, 2]]]), np.array([[[2, 3]]])
    chosen = [[t1], [np.array([[[0, 3]]]), t2], [np.array([[[2, 3]]]), t2, t3]]
    stability, drift = cl.routing_matrices(chosen, n_experts=4)
    assert stability[1, 0] == pytest.approx(0.5) and stability[2, 0] == 0.0
    assert drift[1, 0] == pytest.approx(0.5) and drift[2, 0] == pytest.approx(1.0)
    assert cl.below_diagonal_mean(stability) == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert cl.below_diagonal_mean(drift) == pytest.approx((0.5 + 1.0 + 0.0) / 3)


def test_params_changed_counts_every_element_that_moved():
    before = [torch.zeros(2, 3), torch.zeros(4)]
    after = [torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, -2.0]]), torch.tensor([0.0, 0.0, 0.0, 5.0])]
    assert _changed(before, after) == 3  # 2 in the matrix, 1 in the vector


# -- lm -------------------------------------------------------------------------------------------


def _window(weights_on_1: list[list[float]], bits: list[list[float]]) -> Window:
    """Two sequences of 6 characters, switch at character 3 (domain 0 then 1), 5 input steps;
    gate weights over 2 experts given by the weight on expert 1."""
    w1 = torch.tensor(weights_on_1)
    window = Window()
    domains = torch.tensor([[0, 0, 0, 1, 1, 1]] * 2)
    batch = CharBatch(torch.zeros(2, 6, dtype=torch.long), domains, torch.tensor([[3], [3]]))
    window.add(torch.tensor(bits) * LN2, torch.stack([1 - w1, w1], -1), batch)
    return window


LM_SPEC = SimpleNamespace(data=CharData(seq_len=6, switch_at=3, mid=(4, 4), vocab=4))


def test_lm_metrics_from_hand_built_weights_and_cross_entropy():
    # input domains per step [0, 0, 0, 1, 1]; the transition step is 2 (its target is domain 1)
    window = _window(
        [[0.3, 0.3, 0.6, 0.9, 0.9], [0.2, 0.4, 0.4, 1.0, 1.0]],
        [[1, 1, 3, 1, 2], [2, 1, 5, 1, 1]],
    )
    metrics, _ = window.metrics(LM_SPEC)
    # mean weight on expert 1: domain 0 (steps 0-2) 2.2 / 6, domain 1 (steps 3-4) 3.8 / 4, so
    # domain 0's expert is 0 and domain 1's is 1
    p_trans = (0.6 + 0.4) / 2  # weight on expert 1 at step 2
    p_before = (0.3 + 0.3 + 0.3 + 0.4 + 0.2 + 0.2) / 6  # steps 1, 0, 0 (2 - 3 is clamped to 0)
    # load: mean weight per expert over the 10 steps, expert 1 (3.0 + 3.0) / 10 = 0.6, expert 0 0.4
    assert metrics == pytest.approx(
        {
            "bpc_all": (8 + 10) / 10,
            "bpc_transition": (3 + 5) / 2,
            "p_correct_transition": p_trans,
            "p_correct_mid": (0.9 + 1.0) / 2,  # step 3 + 1 = 4, domain 1's expert
            "anticipation_lift": p_trans - p_before,  # 0.5 - 1.7 / 6
            "k_coverage": 7.0,  # ceil(log 0.01 / log 0.5) = ceil(6.64)
            "load_entropy": -(0.4 * math.log2(0.4) + 0.6 * math.log2(0.6)),  # 0.971 bits
            "max_load": 0.6,
        }
    )


def test_lm_domain_experts_are_relative_not_the_overall_favourite():
    """Expert 0 has most weight everywhere (0.8 in domain 0, 0.6 in domain 1), but domain 1
    raises expert 1 most (0.4 against 0.2), so domain 1's expert is 1, not 0, and p_correct
    reads expert 1's weight (a plain argmax of the mean weight would read 0.6)."""
    window = _window([[0.1, 0.1, 0.4, 0.4, 0.4]] * 2, [[1.0] * 5] * 2)
    metrics, _ = window.metrics(LM_SPEC)
    assert metrics["p_correct_transition"] == pytest.approx(0.4)
    assert metrics["p_correct_mid"] == pytest.approx(0.4)
    assert metrics["anticipation_lift"] == pytest.approx(0.4 - 0.1)
    assert metrics["max_load"] == pytest.approx(1 - (0.1 + 0.1 + 0.4 + 0.4 + 0.4) / 5)  # 0.72


# -- leaderboard ----------------------------------------------------------------------------------

SEEDS = (0, 1, 2)


def _task(values: dict[str, tuple[float, ...]], primary: str = "acc", ceiling: str | None = None):
    """One synthetic task whose gates have the given primary-metric values by seed."""
    records = []
    for r in synthetic_records(len(values), 1, len(SEEDS), gate_names=list(values)):
        task = r.task.model_copy(update={"primary_metric": primary, "ceiling_gate": ceiling})
        gate = r.gate.model_copy(update={"ceiling": r.gate.id == ceiling})
        metrics = {primary: values[r.gate.id][r.seed_index]}
        records.append(r.model_copy(update={"task": task, "gate": gate, "metrics": metrics}))
    return aggregate(records).tasks[0]


def test_scores_are_normalised_per_seed_between_reference_and_ceiling():
    scale = task_scale(
        _task(
            {
                "affinity": (0.5, 0.6, 0.4),
                "better": (0.7, 0.9, 0.4),
                "bayes": (0.9, 1.0, 0.4),  # seed 2: ceiling = reference, no scale that seed
            },
            ceiling="bayes",
        )
    )
    assert scale.metric == "acc" and scale.ceiling == "gate bayes"
    assert set(scale.scores) == {"affinity", "better"}  # the ceiling is not scored
    assert scale.scores["affinity"] == pytest.approx({0: 0.0, 1: 0.0})
    # (0.7 - 0.5) / (0.9 - 0.5), (0.9 - 0.6) / (1.0 - 0.6)
    assert scale.scores["better"] == pytest.approx({0: 0.5, 1: 0.75})


def test_scores_scale_to_the_ideal_value_without_a_ceiling_gate():
    scale = task_scale(_task({"affinity": (0.5, 0.6, 0.2), "better": (0.7, 0.9, 0.6)}))
    assert scale.ceiling == "ideal 1"
    # (0.7 - 0.5) / (1 - 0.5), (0.9 - 0.6) / (1 - 0.6), (0.6 - 0.2) / (1 - 0.2)
    assert scale.scores["better"] == pytest.approx({0: 0.4, 1: 0.75, 2: 0.5})


def test_a_lower_is_better_metric_scales_towards_its_ideal_zero():
    scale = task_scale(_task({"affinity": (0.5, 0.4, 0.8), "better": (0.2, 0.5, 0.0)}, "loss"))
    assert scale.ceiling == "ideal 0"
    # (0.2 - 0.5) / (0 - 0.5) = 0.6; (0.5 - 0.4) / (0 - 0.4) = -0.25 (worse than the reference)
    assert scale.scores["better"] == pytest.approx({0: 0.6, 1: -0.25, 2: 1.0})


def test_the_mixture_tasks_window_losses():
    """loss_early, loss_final and loss_after_shift: the mean training loss over the first, the
    last and the post-shift windows of steps."""
    from suite.tasks.families.transition.mixture import window_losses

    losses = torch.tensor([4.0, 2.0, 9.0, 1.0, 3.0, 5.0, 0.0, 6.0])
    found = window_losses(losses, window=2, shift_at=3)
    assert found == {"loss_early": 3.0, "loss_final": 3.0, "loss_after_shift": 2.0}
    # (4 + 2) / 2, (0 + 6) / 2, (1 + 3) / 2
    assert window_losses(losses, window=3, shift_at=None) == {
        "loss_early": 5.0,  # (4 + 2 + 9) / 3
        "loss_final": pytest.approx(11 / 3),  # (5 + 0 + 6) / 3
    }
