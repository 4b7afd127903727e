"""Pre-training the base, training a gate in it through the bridge, and the metrics.

The base (a small Mixtral or OLMoE) is pre-trained once per seed with its own routers on windows
of real text that switch domain (prose to code, English to Italian, ...), then frozen. Each run
puts the gate into one MoE layer in place of the model's router (``suite.integrations.hf``), the
model's own experts computing on its top-k choice, and trains the gate alone on the language-model
loss plus its auxiliary loss. Metrics are taken on held-out text.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from suite.contract import TaskInfo
from suite.seeding import derive_seed, generator, seeded_global_rng
from suite.tasks.columns import to_dataset
from suite.tasks.families.moe.model import build_model, load_base
from suite.tasks.families.moe.spec import MoeSpec
from suite.tasks.families.moe.text import VOCAB, texts_fingerprint, windows
from suite.tasks.family import ArrayResult, RunContext, RunOutput
from suite.tasks.training import check_finite, diagnostics_summary, make_optimizer, thin

LN2 = math.log(2.0)


def task_info(spec: MoeSpec) -> TaskInfo:
    m = spec.model
    return TaskInfo(
        d_model=m.hidden,
        n_experts=m.experts,
        seq_len=spec.data.seq_len,
        kind="router",
        inputs=("x", "token_ids"),
        extras={"vocab_size": VOCAB, "top_k": m.top_k, "family": "moe", "model": m.arch},
    )


def _batch(spec: MoeSpec, seed: int, purpose: str, step: int, part: int, size: int) -> Tensor:
    d = spec.data
    g = generator(derive_seed(seed, purpose, step))
    tokens, _ = windows(tuple(d.domains), d.train_share, part, size, d.seq_len, d.switch_at, g)
    return tokens


def _lm_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    """Per position cross-entropy in nats, (B, T - 1): position t predicts token t + 1."""
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="none"
    ).view(tokens.shape[0], -1)


def prepare(spec: MoeSpec, seeds: Any) -> dict[str, Tensor]:
    """Pre-train the base with its own routers (and their load-balancing loss) on switching
    windows of the training text; the state dict is the seed's artefact."""
    p = spec.pretrain
    with seeded_global_rng(derive_seed(seeds.init, "moe-base")):
        model = build_model(spec)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=p.lr)
    for step in range(p.steps):
        tokens = _batch(spec, seeds.data, "pretrain", step, 0, p.batch_size)
        out = model(tokens, output_router_logits=True)
        loss = _lm_loss(out.logits, tokens).mean()
        if getattr(out, "aux_loss", None) is not None:
            loss = loss + model.config.router_aux_loss_coef * out.aux_loss
        optimiser.zero_grad(set_to_none=True)
        check_finite(loss, step)
        loss.backward()
        optimiser.step()
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def eval_tokens(spec: MoeSpec, seed: int) -> Tensor:
    e = spec.eval
    return torch.cat(
        [_batch(spec, seed, "eval", b, 1, e.batch_size) for b in range(e.batches)], dim=0
    )


def eval_dataset(spec: MoeSpec, seed: int) -> Any:
    tokens = eval_tokens(spec, seed).numpy()
    d = spec.data
    columns = {"tokens": tokens}
    return to_dataset(columns).add_column(
        "texts", [texts_fingerprint(tuple(d.domains), d.train_share)] * len(tokens)
    )


@torch.no_grad()
def _evaluate(model: Any, spec: MoeSpec, tokens: Tensor, bridge: Any = None) -> dict[str, Any]:
    """Bits per character per position, and the routed layer's expert usage."""
    d, m = spec.data, spec.model
    losses, counts = [], torch.zeros(m.experts)
    for chunk in tokens.split(spec.eval.batch_size):
        losses.append(_lm_loss(model(chunk).logits, chunk))
        if bridge is not None:
            choices = bridge.choices(m.layer_index)
            counts += torch.bincount(choices.flatten().cpu(), minlength=m.experts)[: m.experts]
    bits = torch.cat(losses).double() / LN2  # (N, T - 1)
    per_step = bits.mean(dim=0)
    switch = d.switch_at - 1  # the input step whose target is the new domain's first character
    out: dict[str, Any] = {
        "bpc_all": float(bits.mean()),
        "bpc_switch": float(per_step[switch]),
        "bpc_after_switch": float(per_step[switch : switch + d.after].mean()),
        "per_step": per_step,
    }
    if bridge is not None:
        share = counts / counts.sum()
        nonzero = share[share > 0]
        out["max_load"] = float(share.max())
        out["usage_entropy"] = float(-(nonzero * nonzero.log2()).sum())
    return out


def run(spec: MoeSpec, gate: Any, ctx: RunContext) -> RunOutput:
    from suite.integrations.hf import attach_gate

    if ctx.artifact is None:
        raise RuntimeError("the moe family needs its pre-trained base (prepared artefact)")
    model = load_base(spec, ctx.artifact).to(ctx.device)
    held_out = eval_tokens(spec, ctx.seeds.data).to(ctx.device)
    base = _evaluate(model, spec, held_out)
    bridge = attach_gate(model, gate, spec.model.layer_index)
    try:
        t = spec.train
        optimiser = make_optimizer(t.lr, [gate])
        gate.train()
        losses = torch.zeros(t.steps)
        for step in range(t.steps):
            tokens = _batch(spec, ctx.seeds.data, "train", step, 0, t.batch_size).to(ctx.device)
            loss = _lm_loss(model(tokens).logits, tokens).mean() + bridge.aux_loss()
            losses[step] = check_finite(loss, step)
            if optimiser is not None:
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            ctx.tick(step + 1, t.steps)
        gate.eval()
        found = _evaluate(model, spec, held_out, bridge)
        diagnostics = diagnostics_summary(bridge.diagnostics().get(spec.model.layer_index, {}))
    finally:
        bridge.detach()
    per_step = found.pop("per_step")
    steps, values = thin(losses)
    metrics = {k: v for k, v in found.items()}
    metrics["base_bpc_all"] = base["bpc_all"]
    switch = float(spec.data.switch_at - 1)
    return RunOutput(
        metrics=metrics,
        arrays={
            "bpc_by_position": ArrayResult(
                per_step.tolist(), {"step": list(range(len(per_step)))}, {"switch": switch}
            ),
            "train_loss": ArrayResult(values, {"step": steps}),
        },
        diagnostics=diagnostics,
        data_fingerprint=texts_fingerprint(tuple(spec.data.domains), spec.data.train_share),
    )
