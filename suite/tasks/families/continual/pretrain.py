"""The frozen base: pre-trained once per (spec, seed) on the sequence kind's generic task.

The generic task is not any task of the sequence (a random bigram language over the whole
vocabulary, or the unpermuted problem), so every task starts from the same general-purpose base
and only the sub-experts and the router learn the sequence. The state dict is the family's
prepared artefact; the base's pre-training accuracy travels with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from suite.seeding import RunSeeds, derive_seed, seeded_global_rng
from suite.tasks.families.continual.data import TaskSequence, draw_sequence
from suite.tasks.families.continual.model import FrozenBase
from suite.tasks.families.continual.spec import ContinualSpec
from suite.tasks.training import adam

ACCURACY_KEY = "pretrain_accuracy"


def build_base(spec: ContinualSpec, sequence: TaskSequence) -> FrozenBase:
    m = spec.model
    return FrozenBase(
        sequence.input_kind, sequence.n_inputs, m.d_model, m.d_hidden, sequence.n_outputs
    )


def pretrain(spec: ContinualSpec, seeds: RunSeeds) -> dict[str, torch.Tensor]:
    sequence = draw_sequence(spec.data, seeds.data)
    p = spec.pretrain
    with seeded_global_rng(seeds.derive("base-init")):
        base = build_base(spec, sequence)
    opt = adam(base.parameters(), p.lr)
    data_seed = seeds.derive("base-data")
    recent = []
    for step in range(p.steps):
        inputs, labels = sequence.generic(p.batch_size, derive_seed(data_seed, step))
        logits = base(inputs)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= p.steps - 20:
            recent.append((logits.detach().argmax(-1) == labels).float().mean())
    state = {k: v.detach().clone() for k, v in base.state_dict().items()}
    state[ACCURACY_KEY] = torch.stack(recent).mean()
    return state


def load_base(
    spec: ContinualSpec, sequence: TaskSequence, artifact: dict[str, torch.Tensor]
) -> tuple[FrozenBase, float]:
    """The frozen base from its artefact, and its accuracy on the generic task."""
    weights = {k: v for k, v in artifact.items() if k != ACCURACY_KEY}
    with seeded_global_rng(derive_seed("continual", "base-shell")):  # overwritten by weights
        base = build_base(spec, sequence)
    base.load_state_dict(weights)
    base.requires_grad_(False)
    base.eval()
    return base, float(artifact[ACCURACY_KEY])
