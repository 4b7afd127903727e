"""The facts family's frozen base as a ``transformers`` MoE model: its split reading equals the
model's own forward (Mixtral's native sliding window, OLMoE's window mask), an updater adapts it
exactly as the bridge adapts any model, a pretrained checkpoint loads from disk only, and a
profile whose weights are absent stops before any run with one line."""

from __future__ import annotations

import pytest
import torch

from suite.cli import main
from suite.gates.entries import get_gate
from suite.gates.kinds import kinds
from suite.integrations.hf import attach
from suite.integrations.hf_models import WeightsMissing, find_pretrained, tiny_moe
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.families.facts import protocol, reading
from suite.tasks.families.facts.hf_base import HFBase
from suite.tasks.families.facts.pretrain import ACCURACY_KEY, build_base
from suite.tasks.family import RunContext, get_family
from suite.tasks.loading import load_all_tasks, tasks_for_profile

SIZES = dict(vocab=40, hidden=32, expert_hidden=16, layers=2, heads=4, experts=4, top_k=2)


def tiny(arch: str, window: int | None = None, seed: int = 0):
    with seeded_global_rng(seed):
        return tiny_moe(arch, **SIZES, max_positions=64, sliding_window=window).eval()


def test_the_split_reading_is_mixtrals_own_forward_with_its_sliding_window():
    model = tiny("mixtral", window=5)
    base = HFBase(model, window=5, vocab_size=SIZES["vocab"])
    tokens = torch.randint(0, SIZES["vocab"], (3, 17), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = base(tokens), model(tokens).logits
        wider = HFBase(model, window=6, vocab_size=SIZES["vocab"])(tokens)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert (wider - theirs).abs().max() > 1e-3  # the window is really applied


def test_olmoe_gets_the_window_as_a_mask():
    model = tiny("olmoe")
    tokens = torch.randint(0, SIZES["vocab"], (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = HFBase(model, window=12, vocab_size=SIZES["vocab"])(tokens)
        windowed = HFBase(model, window=3, vocab_size=SIZES["vocab"])(tokens)
        theirs = model(tokens).logits
    torch.testing.assert_close(full, theirs, rtol=0, atol=1e-6)
    torch.testing.assert_close(windowed[:, :3], theirs[:, :3], rtol=0, atol=1e-6)
    assert (windowed[:, 3:] - theirs[:, 3:]).abs().max() > 1e-3


@pytest.mark.parametrize("arch", ["mixtral", "olmoe"])
@pytest.mark.parametrize("gate_id", ["delta-rule", "lerp-scan"])
def test_an_updater_adapts_the_base_as_the_bridge_adapts_the_model(arch, gate_id):
    """The facts protocol's reading (shared trunk, last MoE on the scored positions only) gives
    the logits the bridge gives with the same gate in the same model."""
    model = tiny(arch, window=32 if arch == "mixtral" else None)
    base = HFBase(model, window=32, vocab_size=SIZES["vocab"])
    tokens = torch.randint(0, SIZES["vocab"], (2, 14), generator=torch.Generator().manual_seed(3))
    with seeded_global_rng(4):
        bridge = attach(model, gate_id, layers=[1])
    gate = bridge.gates[1].eval()
    with torch.no_grad():
        for p in gate.parameters():  # B factors start at zero: make the correction visible
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(5)) * 0.3)
        through_bridge = model(tokens).logits
        bridge.detach()
        x, u = base.trunk(tokens)
        out = kinds.get("updater").forward(gate, u, None)
        at = torch.tensor([[3, 9, 13], [0, 5, 11]])

        def pick(t):
            return t.gather(1, at.view(2, 3, *[1] * (t.dim() - 2)).expand(-1, -1, *t.shape[2:]))

        ours = base.finish(pick(x), pick(u), tuple(pick(f) for f in out.factors))
        plain = base.finish(pick(x), pick(u))
    torch.testing.assert_close(ours, pick(through_bridge), rtol=1e-5, atol=1e-5)
    assert (ours - plain).abs().max() > 1e-3  # the factors changed the answer


def test_lora_corrections_are_clamped_to_the_spec_norm():
    model = tiny("mixtral")
    tokens = torch.randint(0, SIZES["vocab"], (1, 6), generator=torch.Generator().manual_seed(6))
    loose, tight = (HFBase(model, 32, SIZES["vocab"], clamp=c) for c in (None, 1e-4))
    with torch.no_grad():
        x, u = loose.trunk(tokens)
        shapes = [(32, 4), (4, 32), (16, 4), (4, 32)]
        factors = tuple(torch.randn(1, 6, *s) * 3 for s in shapes)
        big = loose.finish(x, u, factors)
        capped = tight.finish(x, u, factors)
        plain = loose.finish(x, u)
    assert (big - plain).abs().max() > 1e-2
    torch.testing.assert_close(capped, plain, rtol=0, atol=1e-3)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny OLMoE written with save_pretrained, as a user's downloaded model would be."""
    folder = tmp_path_factory.mktemp("tiny-olmoe")
    model = tiny("olmoe")
    model.save_pretrained(folder)
    return folder


def test_a_pretrained_base_loads_from_disk_and_runs_an_updater(tasks, checkpoint):
    smoke = tasks["facts/sliding-window"].for_profile("smoke")
    spec = smoke.model_validate(
        {**smoke.model_dump(mode="json"), "base": {"pretrained": str(checkpoint)},
         "data": {**smoke.data.model_dump(), "n_entities": 8, "n_values": 10, "n_fillers": 4},
         "eval": {**smoke.eval.model_dump(), "capacity": [4, 8]}}
    )  # fmt: skip
    assert reading.task_info(spec).d_model == SIZES["hidden"]  # read from its config
    assert reading.task_info(spec).get("adapted") == [[32, 32], [16, 32]]
    family = get_family("facts")
    family.check_ready(spec)
    seeds = RunSeeds(spec.master_seed, spec.id, 0)
    artifact = family.prepare(spec, seeds)
    assert set(artifact) == {ACCURACY_KEY}  # the weights stay where they are
    with seeded_global_rng(seeds.init):
        gate = get_gate("delta-rule").build(reading.task_info(spec))
    out = protocol.run(spec, gate, RunContext(seeds=seeds, artifact=artifact))
    assert 0 <= out.metrics["acc_persistent"] <= 1
    base = build_base(spec)
    assert not any(p.requires_grad for p in base.parameters())


def test_a_too_small_vocabulary_is_named(checkpoint):
    model = find_pretrained(str(checkpoint))
    assert model == checkpoint
    with pytest.raises(ValueError, match="do not fit the model's vocabulary of 40"):
        HFBase(tiny("olmoe"), 8, vocab_size=30, token_offset=20)


def test_missing_weights_stop_the_weights_profile_before_any_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsMissing, match="not on this machine"):
        find_pretrained(str(tmp_path / "nowhere"))
    code = main(["run", "--profile", "weights", "--results", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "allenai/OLMoE-1B-7B-0924" in err and "Hugging Face cache" in err
    assert "huggingface-cli download" in err
    assert not (tmp_path / "r" / "runs").exists()  # nothing ran


def test_only_specs_that_define_an_optional_profile_run_it():
    tasks = load_all_tasks()
    chosen = {t.id for t in tasks_for_profile(tasks, "weights")}
    assert chosen == {"facts/sliding-window", "facts/full-attention", "facts/templated"}
    assert len(tasks_for_profile(tasks, "default")) == len(tasks)
    with pytest.raises(Exception, match="No selected task defines the profile 'weights'"):
        tasks_for_profile([t for t in tasks if t.family == "transition"], "weights")


def test_the_first_hand_written_base_is_kept_to_compare(tasks):
    from suite.tasks.families.facts.base import BaseModel
    from suite.tasks.families.facts.pretrain import load_base

    smoke = tasks["facts/sliding-window"].for_profile("smoke")
    spec = smoke.model_copy(update={"model": smoke.model.model_copy(update={"arch": "home"})})
    assert reading.task_info(spec).get("adapted") == [[64, 32], [32, 64]]  # no SwiGLU
    assert reading.task_info(smoke).get("adapted") == [[64, 64], [32, 64]]
    seeds = RunSeeds(spec.master_seed, spec.id, 0)
    base, accuracy = load_base(spec, get_family("facts").prepare(spec, seeds))
    assert isinstance(base, BaseModel) and 0 <= accuracy <= 1
