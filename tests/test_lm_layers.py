"""Layer entries: ``dsc`` and ``dense`` ranked beside the routers on the lm family's tasks."""

from __future__ import annotations

import pytest
import torch

from suite.contract import selected_layer
from suite.gates.entries import get_gate
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.families.lm.spec import ROUTING_METRICS
from suite.tasks.family import RunContext, get_family

TASK = "lm/char-switch"


def _run(spec, gate_id: str):
    family = get_family("lm")
    ctx = RunContext(seeds=RunSeeds(spec.master_seed, spec.id, 0))
    with seeded_global_rng(ctx.seeds.init):
        gate = get_gate(gate_id).build(family.task_info(spec))
    return family.run(spec, gate, ctx)


def test_layer_entries_run_only_where_the_family_can_build_their_layer(tasks):
    lm = get_family("lm").task_info(tasks[TASK].for_profile("smoke"))
    transition = get_family("transition").task_info(tasks["transition/anticipation"])
    raw = tasks[TASK].for_profile("smoke").model_dump(mode="json")
    raw["model"].update(layer="dense")
    raw.update(metrics=["bpc_transition", "bpc_all"], claims=[])
    replaced = get_family("lm").task_info(type(tasks[TASK]).model_validate(raw))
    for gate_id in ("dsc", "dense"):
        assert get_gate(gate_id).supports(lm) == (True, "")
        for info in (transition, replaced):  # no experts to replace, or replaced already
            ok, why = get_gate(gate_id).supports(info)
            assert not ok and "layer entry" in why


@pytest.mark.parametrize("layer", ["dsc", "dense"])
def test_an_entry_trains_the_layer_the_spec_option_trains(tasks, layer):
    """The entry on an MoE task gives the numbers of the same task whose spec replaces the
    experts by that layer (its logits and its router's mix nothing): the entry *is* the layer."""
    smoke = tasks[TASK].for_profile("smoke")
    entry = _run(smoke, layer)
    raw = smoke.model_dump(mode="json")
    raw["model"].update(layer=layer)
    raw.update(metrics=[m for m in smoke.metrics if m not in ROUTING_METRICS], claims=[])
    option = _run(type(smoke).model_validate(raw), "affinity")
    assert set(entry.metrics) == set(option.metrics) == {"bpc_all", "bpc_transition"}
    assert entry.metrics == option.metrics
    assert any("layer entry" in note for note in entry.notes)
    routed = _run(smoke, "affinity")  # and it is not the MoE
    assert routed.metrics["bpc_all"] != entry.metrics["bpc_all"]


def test_the_proxy_carries_the_selected_layer(sweep, tmp_path):
    _, (here,) = sweep([TASK], ["dense"], seeds=1, results=tmp_path / "a")
    _, (there,) = sweep([TASK], ["dense"], seeds=1, results=tmp_path / "b", isolate_baselines=True)
    assert here.status == there.status == "ok" and "own process" in there.provenance.sandbox
    assert here.metrics == there.metrics and "p_correct_transition" not in here.metrics


def test_selected_layer_reads_through_wrappers(tasks):
    class Wrapped(torch.nn.Module):
        def __init__(self, inner: object) -> None:
            super().__init__()
            self.inner = inner

    entry = get_gate("dsc").build(get_family("lm").task_info(tasks[TASK].for_profile("smoke")))
    assert selected_layer(entry) == "dsc" and selected_layer(Wrapped(entry)) == "dsc"
    assert selected_layer(Wrapped(torch.nn.Linear(1, 1))) is None
