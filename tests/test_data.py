"""Data generation: deterministic from (spec, seed), structured as the paper describes."""

from __future__ import annotations

import datasets
import torch

from suite.seeding import RunSeeds
from suite.tasks.families.transition.data import MixtureStream, RoutingStream
from suite.tasks.family import get_family


def _stream(tasks, task_id, profile="paper", seed=123):
    spec = tasks[task_id].for_profile(profile)
    return spec, RoutingStream(spec.data, seed)


def test_batches_are_deterministic_and_epochs_differ(tasks):
    _, stream = _stream(tasks, "transition/anticipation")
    a, b = stream.batch(7, 32), stream.batch(7, 32)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(stream.batch(8, 32).x, a.x)
    _, other_seed = _stream(tasks, "transition/anticipation", seed=124)
    assert not torch.equal(other_seed.batch(7, 32).x, a.x)


def test_generation_does_not_touch_the_global_rng(tasks):
    _, stream = _stream(tasks, "transition/anticipation")
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    stream.batch(0, 16)
    assert torch.equal(before, torch.random.get_rng_state())


def test_anticipation_structure(tasks):
    _, stream = _stream(tasks, "transition/anticipation")
    batch = stream.batch(0, 4096)
    start, end = batch.domains[:, 0], batch.domains[:, -1]
    assert torch.all(batch.domains[:, :6] == start[:, None])
    assert torch.all(batch.domains[:, 6:] == end[:, None])
    assert torch.all(start != end)
    assert 0.45 < start.float().mean() < 0.55  # the start domain is random per sequence
    # the correct expert at t is the next token's domain times 2; at t = 5 it is already B's
    assert torch.all(batch.targets[:, :5] == 2 * start[:, None])
    assert torch.all(batch.targets[:, 5:] == 2 * end[:, None])
    assert torch.all(stream.transition_positions(batch) == 5)
    assert stream.scored.tolist() == list(range(11))
    # signal +1 on the domain's half of the dimensions, noise std 0.8
    on_a = batch.x[start == 0][:, :6]
    assert abs(on_a[..., :8].mean().item() - 1.0) < 0.02
    assert abs(on_a[..., 8:].mean().item()) < 0.02
    assert abs(on_a[..., 8:].std().item() - 0.8) < 0.02


def test_early_signal_has_noise_only_after_three_tokens(tasks):
    _, stream = _stream(tasks, "transition/early-signal")
    batch = stream.batch(0, 4096)
    late = batch.x[:, 3:]
    assert abs(late.mean().item()) < 0.02 and abs(late.std().item() - 1.2) < 0.02
    assert stream.scored.tolist() == [7]
    assert torch.all(batch.targets[:, -1] == 2 * batch.domains[:, 0])


def test_random_switch_positions_are_drawn_per_sequence(tasks):
    spec = tasks["transition/anticipation"].for_profile("paper")
    data = spec.data.model_copy(update={"switch_at": (3, 9)})
    batch = RoutingStream(data, 1).batch(0, 2048)
    assert batch.switch_at.min().item() == 3 and batch.switch_at.max().item() == 9
    flips = (batch.domains[:, 1:] != batch.domains[:, :-1]).float().argmax(1) + 1
    assert torch.equal(flips, batch.switch_at)


def test_mixture_noise_follows_the_table_and_swaps_at_the_shift(tasks):
    spec = tasks["transition/precision-shift"].for_profile("paper")
    stream = MixtureStream(spec.data, 5)
    before, after = stream.batch(0, 20000), stream.batch(600, 20000)
    assert [round(v, 1) for v in before.noise.std(0).tolist()] == [0.1, 0.5, 1.5, 0.5]
    assert [round(v, 1) for v in after.noise.std(0).tolist()] == [1.5, 0.5, 0.1, 0.5]
    blocks = before.x[:, 0].view(20000, 2, 8).mean(2)
    assert torch.allclose(before.y, blocks.gather(1, before.domains[:, None]).squeeze(1))


def test_eval_split_is_a_fingerprinted_datasets_object(tasks):
    spec = tasks["transition/anticipation"].for_profile("smoke")
    family = get_family(spec.family)
    seeds = RunSeeds(spec.master_seed, spec.id, 0)
    ds = family.eval_dataset(spec, seeds)
    assert isinstance(ds, datasets.Dataset)
    window, batch = spec.train.eval_window, spec.train.batch_size
    assert ds.num_rows == window * batch
    assert set(ds.column_names) >= {"x", "domains", "targets", "epoch"}
    again = family.eval_dataset(spec, seeds)
    assert ds._fingerprint == again._fingerprint
    other = family.eval_dataset(spec, RunSeeds(spec.master_seed, spec.id, 1))
    assert other._fingerprint != ds._fingerprint
