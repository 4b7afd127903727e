"""GateBench gates inside real Mixture-of-Experts models of Hugging Face ``transformers`` (5.x).

    from suite.integrations.hf import attach
    bridge = attach(model, "beta+ant")             # every MoE layer; or layers=[0, 3]
    out = model(input_ids, labels=labels)
    loss = out.loss + bridge.aux_loss()             # the gates' auxiliary losses
    ...
    bridge.detach()                                 # the model's own routers again, bit for bit

The architectures whose sparse blocks call ``self.gate(hidden)`` then ``self.experts(hidden,
top_k_index, top_k_weights)`` are supported: OLMoE, Mixtral, Qwen2-MoE (with its shared expert)
and Qwen3-MoE. The model's router sees flattened tokens; a GateBench gate sees each layer's
hidden states as sequences ``(B, T, D)``, so the bridge replaces the block's forward: the gate's
logits go through the block's own softmax, top-k (``num_experts_per_tok``) and renormalisation
(``norm_topk_prob``; Mixtral always renormalises), and the model's own experts compute.

A *router* gate replaces the block's router. An *updater* gate keeps the model's router and
writes per-position LoRA factors for the experts' two matrices (``gate_up_proj``: D -> 2I and
``down_proj``: I -> D), shared by every expert as in the DeltaNet-LoRA retrofit. A stateful gate
carries its state through cached generation: a forward whose cache already holds positions
continues from the state the previous forward left, any other forward starts afresh, so
``generate(..., use_cache=True)`` gives the tokens of the same generation without a cache.

Gates come from the registry (an id), a submission folder (imported into this process: a
user's own script trusts the code it attaches; GateBench's runs keep untrusted code in its own
process), a gate class, or a factory ``info -> gate``. Non-causal gates (labelled ceilings that
read the future) are refused: a model generating text cannot give them the future.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from suite.contract import Gate, State, TaskInfo
from suite.errors import GateBenchError
from suite.integrations.hf_blocks import router_forward, updater_forward

SUPPORTED_BLOCKS = (
    "OlmoeSparseMoeBlock",
    "MixtralSparseMoeBlock",
    "Qwen2MoeSparseMoeBlock",
    "Qwen3MoeSparseMoeBlock",
)
GATE_ATTRIBUTE = "gatebench_gate"  # the gate is a submodule of its block while attached
DEFAULT_RANK = 4  # LoRA rank of an updater's factors, the preprint's


class BridgeError(GateBenchError):
    """A model or gate the bridge cannot join, with what was found and what would work."""


GateSource = str | Path | type | Callable[[TaskInfo], Gate]


@dataclass
class _Layer:
    index: int
    name: str
    block: nn.Module
    gate: Gate
    state: State = None
    aux: Tensor | None = None
    choices: Tensor | None = None  # the top-k experts of the last forward, (tokens, k)


@dataclass
class Bridge:
    """What ``attach`` returns: the attached gates and how to use, read and remove them."""

    model: nn.Module
    kind: str  # "router" or "updater"
    layers: list[_Layer]
    _hooks: list[Any] = field(default_factory=list)
    _continuing: bool = False
    _token_ids: Tensor | None = None

    @property
    def gates(self) -> dict[int, Gate]:
        """Layer index -> the gate in that layer's MoE block."""
        return {layer.index: layer.gate for layer in self.layers}

    def parameters(self) -> Iterator[nn.Parameter]:
        """The gates' parameters (to train them alone, the model frozen)."""
        for layer in self.layers:
            if isinstance(layer.gate, nn.Module):
                yield from layer.gate.parameters()

    def aux_loss(self) -> Tensor:
        """The sum of the gates' auxiliary losses in the last forward (0 without any)."""
        losses = [layer.aux for layer in self.layers if layer.aux is not None]
        if not losses:
            device = next(self.model.parameters()).device
            return torch.zeros((), device=device)
        return torch.stack([loss.float() for loss in losses]).sum()

    def diagnostics(self) -> dict[int, dict[str, Tensor]]:
        """Each gate's own diagnostics (learned decays, precisions, ...), by layer."""
        return {layer.index: dict(layer.gate.diagnostics()) for layer in self.layers}

    def choices(self, index: int) -> Tensor | None:
        """The experts layer ``index`` chose in the last forward, (tokens, k)."""
        return next((layer.choices for layer in self.layers if layer.index == index), None)

    def reset(self) -> None:
        """Forget every gate's carried state: the next forward starts a new sequence."""
        for layer in self.layers:
            layer.state = None

    def detach(self) -> None:
        """Put the model's own routing back: every block's forward and submodules as before."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        for layer in self.layers:
            block = layer.block
            if "forward" in block.__dict__:
                del block.forward  # the class's forward again
            if GATE_ATTRIBUTE in block._modules:
                del block._modules[GATE_ATTRIBUTE]
        self.layers = []

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


def _looks_like_moe(module: nn.Module) -> bool:
    """A block of experts the bridge does not know (e.g. Switch, DeepSeek, GPT-OSS layouts)."""
    cls = type(module).__name__
    has_parts = hasattr(module, "experts") and (
        hasattr(module, "gate") or hasattr(module, "router")
    )
    return has_parts or cls.endswith(("SparseMoeBlock", "MoeBlock", "MoE", "MoeLayer"))


def moe_blocks(model: nn.Module) -> list[tuple[int, str, nn.Module]]:
    """The supported sparse MoE blocks of ``model``: (layer index, module name, block).

    Raises a BridgeError naming what was found where a model has no MoE block, or MoE blocks of
    a layout the bridge does not know."""
    found, unknown = [], []
    for name, module in model.named_modules():
        cls = type(module).__name__
        if cls in SUPPORTED_BLOCKS:
            found.append((name, module))
        elif _looks_like_moe(module):
            unknown.append(cls)
    if not found:
        supported = ", ".join(SUPPORTED_BLOCKS)
        if unknown:
            raise BridgeError(
                f"{type(model).__name__} has MoE blocks of class {sorted(set(unknown))[0]}, which "
                f"the bridge does not support; supported blocks: {supported}."
            )
        raise BridgeError(
            f"{type(model).__name__} has no Mixture-of-Experts block to attach a gate to; "
            f"supported blocks: {supported}."
        )
    blocks = []
    for position, (name, module) in enumerate(found):
        match = re.search(r"(?:^|\.)layers\.(\d+)\.", name + ".")
        blocks.append((int(match.group(1)) if match else position, name, module))
    return blocks


def _router_info(block: nn.Module, config: Any, seq_len: int) -> TaskInfo:
    router = block.gate
    return TaskInfo(
        d_model=int(router.hidden_dim),
        n_experts=int(router.num_experts),
        seq_len=seq_len,
        kind="router",
        inputs=("x", "token_ids"),
        extras={
            "top_k": int(router.top_k),
            "vocab_size": int(getattr(config, "vocab_size", 0) or 0),
            "model": type(block).__name__,
        },
    )


def _updater_info(block: nn.Module, config: Any, seq_len: int, rank: int) -> TaskInfo:
    experts = block.experts
    d, i = int(experts.hidden_dim), int(experts.intermediate_dim)
    return TaskInfo(
        d_model=d,
        n_experts=int(experts.num_experts),
        seq_len=seq_len,
        kind="updater",
        extras={"rank": rank, "adapted": [(d, 2 * i), (i, d)], "model": type(block).__name__},
    )


def _builder(source: GateSource, hyper: dict[str, Any]) -> tuple[str, str, bool, Callable]:
    """(name, kind, causal, build(info)) for whatever names the gate."""
    if isinstance(source, str | Path) and (Path(source) / "submission.yaml").is_file():
        from suite.gates.submissions import register_submission

        entry = register_submission(Path(source))  # in this process: see the module docstring
        return entry.id, entry.kind, entry.causal, lambda info: _checked(entry, info, hyper)
    if isinstance(source, str):
        from suite.gates.entries import get_gate

        try:
            entry = get_gate(source)
        except GateBenchError as exc:
            raise BridgeError(str(exc)) from None
        return entry.id, entry.kind, entry.causal, lambda info: _checked(entry, info, hyper)
    if isinstance(source, type) and issubclass(source, Gate):
        name = source.__name__
        return name, source.kind, bool(source.causal), lambda info: source(info, **hyper)
    if callable(source):
        name = getattr(source, "__name__", "factory")
        return name, "", True, lambda info: source(info, **hyper)
    raise BridgeError(
        f"Cannot attach {source!r}: give a registered gate id, a submission folder, a gate class "
        "or a factory info -> gate."
    )


def _checked(entry: Any, info: TaskInfo, hyper: dict[str, Any]) -> Gate:
    ok, reason = entry.supports(info, hyper)
    if not ok:
        raise BridgeError(f"Gate '{entry.id}' cannot route a {info.get('model')}: {reason}.")
    return entry.build(info, hyper)


def attach(
    model: nn.Module,
    gate: GateSource,
    layers: Sequence[int] | None = None,
    seq_len: int = 64,
    rank: int = DEFAULT_RANK,
    **hyper: Any,
) -> Bridge:
    """Put ``gate`` (one fresh instance per layer) into the MoE blocks of ``model``.

    ``layers``: decoder layer indices (default every MoE layer). ``seq_len``: the sequence length
    the gates are told they train at. ``rank``: an updater's LoRA rank. ``hyper``: the gate's
    hyper-parameters."""
    name, kind, causal, build = _builder(gate, hyper)
    if not causal:
        raise BridgeError(
            f"Gate '{name}' is declared non-causal (it reads later positions): a model cannot "
            "give it the future, so it is not attached."
        )
    blocks = moe_blocks(model)
    if layers is not None:
        wanted = list(layers)
        have = {index for index, _, _ in blocks}
        missing = [i for i in wanted if i not in have]
        if missing:
            raise BridgeError(
                f"layers {missing} have no MoE block; MoE layers of this model: {sorted(have)}."
            )
        blocks = [b for b in blocks if b[0] in wanted]
    config = getattr(model, "config", None)
    bridge = Bridge(model, kind or "router", [])
    for index, module_name, block in blocks:
        probe_kind = kind or "router"
        info = (
            _updater_info(block, config, seq_len, rank)
            if probe_kind == "updater"
            else _router_info(block, config, seq_len)
        )
        instance = build(info)
        if not isinstance(instance, Gate):
            raise BridgeError(
                f"'{name}' built {type(instance).__name__}, not a suite.contract.Gate."
            )
        if not instance.causal:
            raise BridgeError(
                f"Gate '{name}' is declared non-causal (it reads later positions): a model cannot "
                "give it the future, so it is not attached."
            )
        if instance.kind != probe_kind:  # a factory of an updater: rebuild with its info
            instance = build(_updater_info(block, config, seq_len, rank))
        _install(bridge, index, module_name, block, instance)
    bridge._hooks.append(model.register_forward_pre_hook(_pre_hook(bridge), with_kwargs=True))
    return bridge


def attach_gate(model: nn.Module, gate: Any, layer: int, kind: str = "router") -> Bridge:
    """Put one built gate (a gate module, or the harness's proxy of a gate in its own process)
    into the MoE block of decoder layer ``layer``: how GateBench's own tasks use the bridge,
    where the harness builds, audits and confines the gate."""
    blocks = {index: (name, block) for index, name, block in moe_blocks(model)}
    if layer not in blocks:
        raise BridgeError(f"layer {layer} has no MoE block; MoE layers: {sorted(blocks)}.")
    bridge = Bridge(model, kind, [])
    _install(bridge, layer, *blocks[layer], gate)
    bridge._hooks.append(model.register_forward_pre_hook(_pre_hook(bridge), with_kwargs=True))
    return bridge


def _install(bridge: Bridge, index: int, module_name: str, block: nn.Module, gate: Any) -> None:
    if "forward" in block.__dict__:
        raise BridgeError(f"{module_name} already holds a GateBench gate: detach it first.")
    kind = getattr(gate, "kind", bridge.kind) or bridge.kind
    bridge.kind = kind
    if isinstance(gate, nn.Module):
        param = next(bridge.model.parameters())
        gate.to(device=param.device)
        block._modules[GATE_ATTRIBUTE] = gate  # moves and saves with the model while attached
    layer = _Layer(index, module_name, block, gate)
    forward = updater_forward if kind == "updater" else router_forward
    block.forward = types.MethodType(_bound(forward, bridge, layer), block)
    bridge.layers.append(layer)


def _pre_hook(bridge: Bridge) -> Callable:
    """Before each model forward: does it continue a cached sequence, and its token ids."""

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        bridge._continuing = _continues(kwargs)
        ids = kwargs.get("input_ids", args[0] if args and isinstance(args[0], Tensor) else None)
        bridge._token_ids = ids if isinstance(ids, Tensor) and ids.dim() == 2 else None
        if not bridge._continuing:
            bridge.reset()

    return hook


def _continues(kwargs: dict) -> bool:
    position = kwargs.get("cache_position")
    if isinstance(position, Tensor) and position.numel():
        return int(position.reshape(-1)[0]) > 0
    cache = kwargs.get("past_key_values", kwargs.get("cache"))
    if cache is not None and hasattr(cache, "get_seq_length"):
        return int(cache.get_seq_length()) > 0
    return False


def _bound(forward: Callable, bridge: Bridge, layer: _Layer) -> Callable:
    def method(block: nn.Module, hidden: Tensor) -> Tensor:
        return forward(block, hidden, bridge, layer)

    return method
