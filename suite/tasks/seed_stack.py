"""The seeds of one (task, router) pair trained as one vectorised job.

On GateBench's small tasks a training step costs mostly framework overhead, paid per operator
call; S seeds stacked along a leading axis pay it once. Each seed keeps what makes it a seed: its
gate is built by the harness under its own initialisation seed, its data stream is its own, and
its optimiser state is its own (Adam is elementwise, so one Adam over stacked tensors is S
independent Adams). The loss is the sum of the seeds' losses, so each seed's gradient is its own
loss's gradient.

``VmapStack`` stacks the gates' parameters and buffers (``torch.func.stack_module_state``) and
runs ``vmap`` over ``functional_call`` of one gate. Each seed's own module is then re-pointed at
its slice of the stacked tensors, so ``observe``, ``diagnostics`` and the harness's audits act on
the seed's live parameters. Batched kernels compute each slice on its own, so a seed's numbers do
not depend on which seeds share its stack: a seed run alone (a stack of one) is bit-identical to
the same seed run beside four others (tests check this).

``LoopStack`` calls each gate in turn: the path of every gate that cannot be vectorised (a gate
in its own process, data-dependent Python control flow, randomness inside ``forward``, or state
that ``functional_call`` cannot see). ``stack_gates`` picks one and says why it fell back.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from suite.contract import Feedback, GateOutput, Side, deliver_feedback
from suite.gates.audit import AuditedGate
from suite.gates.kinds import check_forward, kinds, takes_side
from suite.tasks.family import NonFiniteError
from suite.tasks.training import adam, make_optimizer

TRIAL_TOLERANCE = 1e-4  # relative: the vmapped trial call against each gate's own forward
VECTORISE_ON_CPU = False
"""On CPU the seeds run in a loop: measured on 2 cores (``nox -s bench``, item 9), the vmapped
pass costs what the loop costs once a process is warm, while the loop gives every gate the same
numbers in the harness's process, behind the proxy and as a submission. The tests and the bench
switch this on to check and time the GPU's path on CPU."""


def vectorising(device: torch.device | str) -> bool:
    """Whether seeds are stacked into one vmapped pass on ``device``."""
    return torch.device(device).type == "cuda" or VECTORISE_ON_CPU


class NotStackable(Exception):
    """These gates cannot share one vectorised pass; the message says why."""


@dataclass
class StackOutput:
    logits: Tensor  # (S, B, T, E)
    aux_loss: Tensor  # (S,): zeros where a gate returns none
    outputs: list[Any] | None = None  # each seed's own output (None where failed); loop only


def _inner(gate: Any) -> Any:
    return gate.inner if isinstance(gate, AuditedGate) else gate


def _side_fields(side: Side | None) -> dict[str, Tensor] | None:
    if side is None:
        return None
    fields = {k: v for k, v in side._asdict().items() if v is not None}
    return fields or None


def _seed_side(side: Side | None, s: int) -> Side | None:
    if side is None:
        return None
    return Side(**{k: (v[s] if v is not None else None) for k, v in side._asdict().items()})


class GateStack(ABC):
    """S gates (one per seed) called as one: inputs and outputs carry a leading seed axis."""

    reason = ""  # why the seeds run one after another ("" when vectorised)

    def __init__(self, gates: list[Any], info: Any) -> None:
        self.gates = gates  # as the family was given them (possibly audited)
        self.info = info
        self.kind = kinds.get(info.kind)
        self.failed: dict[int, BaseException] = {}  # seed position -> why it stopped

    def alive(self) -> list[int]:
        return [s for s in range(self.n) if s not in self.failed]

    def fail(self, s: int, exc: BaseException) -> None:
        """Seed ``s`` stops here; the others go on. The last one failing raises."""
        self.failed.setdefault(s, exc)
        if not self.alive():
            raise exc

    def total_loss(self, losses: Tensor, step: int) -> Tensor:
        """The sum of the alive seeds' losses (S,) -> (); a seed whose loss is NaN or infinite
        fails alone. One host sync per step."""
        values = losses.detach().cpu().tolist()
        for s in self.alive():
            if not math.isfinite(values[s]):
                self.fail(s, NonFiniteError(f"the training loss became {values[s]} at step {step}"))
        keep = torch.tensor([s not in self.failed for s in range(self.n)], device=losses.device)
        return torch.where(keep, losses, torch.zeros_like(losses)).sum()

    def _checked(self, logits: Tensor, aux: Tensor, x: Tensor) -> StackOutput:
        for s in self.alive():
            try:
                one = GateOutput(logits[s], None, aux[s])
                check_forward(self.gates[s], one, self.info, x.shape[1], x.shape[2])
            except ValueError as exc:
                self.fail(s, exc)
        return StackOutput(logits, aux)

    @property
    def n(self) -> int:
        return len(self.gates)

    @abstractmethod
    def __call__(self, x: Tensor, side: Side | None = None) -> StackOutput:
        """x (S, B, T, D); side fields (S, B, T)."""

    @abstractmethod
    def optimizer(self, lr: float, extra: list[Tensor] = ()) -> Any:
        """Adam over every seed's trainable parameters and ``extra`` (e.g. a ``ModuleStack``'s);
        None if there are none."""

    def observe(self, feedback: list[Feedback]) -> None:
        for s in self.alive():
            deliver_feedback(self.gates[s], feedback[s])

    def train(self, mode: bool = True) -> None:
        for gate in self.gates:
            gate.train(mode)


class LoopStack(GateStack):
    """One gate after another: any gate, including one in its own process."""

    def __call__(self, x: Tensor, side: Side | None = None) -> StackOutput:
        logits: list[Tensor | None] = [None] * self.n
        aux = [x.new_zeros(())] * self.n
        outputs: list[Any] = [None] * self.n
        for s in self.alive():
            try:
                out = self.kind.forward(self.gates[s], x[s], None, _seed_side(side, s))
                check_forward(self.gates[s], out, self.info, x.shape[1], x.shape[2])
            except Exception as exc:  # this seed's gate failed; the others go on
                if self.n == 1:
                    raise
                self.fail(s, exc)
                continue
            logits[s], outputs[s] = out.logits, out
            if out.aux_loss is not None:
                aux[s] = out.aux_loss
        shape = next(t for t in logits if t is not None)
        filled = [t if t is not None else torch.zeros_like(shape).detach() for t in logits]
        return StackOutput(torch.stack(filled), torch.stack(aux), outputs)

    def optimizer(self, lr: float, extra: list[Tensor] = ()) -> Any:
        return make_optimizer(lr, self.gates, extra)


class VmapStack(GateStack):
    """The gates' parameters stacked, one ``vmap`` over ``functional_call``."""

    def __init__(self, gates: list[Any], info: Any) -> None:
        super().__init__(gates, info)
        inner = [_inner(g) for g in gates]
        if len({type(m) for m in inner}) != 1:
            raise NotStackable("the seeds' gates are not all of one class")
        if any(hasattr(m, "remote_optimizer") for g in inner for m in g.modules()):
            raise NotStackable("the gate runs in its own process")
        self.inner = inner
        self.params, self.buffers = torch.func.stack_module_state(inner)
        self.template = copy.deepcopy(inner[0]).to("meta")
        self.with_side = takes_side(inner[0])

        def one(params: dict, buffers: dict, x: Tensor, side: dict | None) -> tuple:
            args = (x, None, Side(**side)) if self.with_side and side is not None else (x,)
            out = torch.func.functional_call(self.template, (params, buffers), args)
            aux = out.aux_loss if out.aux_loss is not None else x.new_zeros(())
            return out.logits, aux

        self._one = one

    def _point_modules_at_slices(self) -> None:
        """Each seed's module now reads (and its in-place updates write) its stacked slice."""
        for s, module in enumerate(self.inner):
            for name, stacked in self.params.items():
                owner, leaf = _owner(module, name)
                owner._parameters[leaf] = nn.Parameter(stacked.detach()[s], requires_grad=False)
            for name, stacked in self.buffers.items():
                owner, leaf = _owner(module, name)
                owner._buffers[leaf] = stacked[s]

    def _resync_buffers(self) -> None:
        """A gate that replaced a buffer (instead of updating it in place) is copied back."""
        for s, module in enumerate(self.inner):
            for name, stacked in self.buffers.items():
                owner, leaf = _owner(module, name)
                mine = owner._buffers[leaf]
                if mine is not None and mine.data_ptr() != stacked[s].data_ptr():
                    stacked[s].copy_(mine)
                    owner._buffers[leaf] = stacked[s]

    def __call__(self, x: Tensor, side: Side | None = None) -> StackOutput:
        for s in self.alive():
            gate = self.gates[s]
            if isinstance(gate, AuditedGate):
                try:
                    gate.before_call(x[s], None, _seed_side(side, s))
                except Exception as exc:  # an audit violation stops this seed only
                    self.fail(s, exc)
        fields = _side_fields(side)
        in_dims = (0, 0, 0, None if fields is None else 0)
        logits, aux = torch.func.vmap(self._one, in_dims=in_dims)(
            self.params, self.buffers, x, fields
        )
        return self._checked(logits, aux, x)

    def optimizer(self, lr: float, extra: list[Tensor] = ()) -> Any:
        params = [p for p in self.params.values() if p.requires_grad]
        params += [p for p in extra if p.requires_grad]
        return adam(params, lr) if params else None

    def observe(self, feedback: list[Feedback]) -> None:
        super().observe(feedback)
        self._resync_buffers()

    def train(self, mode: bool = True) -> None:
        super().train(mode)
        self.template.train(mode)

    def trial(self, x: Tensor, side: Side | None = None) -> None:
        """One vmapped call against each gate's own forward on the same inputs, outputs and
        gradients (RNG forked); raises ``NotStackable`` where vectorising would change what the
        gate computes or learns. Only then are the seeds' modules pointed at their slices."""
        fields = _side_fields(side)
        in_dims = (0, 0, 0, None if fields is None else 0)
        names = [n for n, p in self.params.items() if p.requires_grad]
        with torch.random.fork_rng(devices=[]):
            try:
                batched, aux = torch.func.vmap(self._one, in_dims=in_dims)(
                    self.params, self.buffers, x, fields
                )
            except Exception as exc:  # any vmap failure means: run the seeds one by one
                first = (str(exc).strip().splitlines() or [""])[0][:160]
                raise NotStackable(f"vmap cannot run it ({type(exc).__name__}: {first})") from exc
            probe = torch.randn(batched.shape[1:], generator=torch.Generator().manual_seed(0))
            probe = probe.to(batched)
            grads = _grads((batched * probe).sum() + aux.sum(), [self.params[n] for n in names])
            for s, module in enumerate(self.inner):
                out = self.kind.forward(module, x[s], None, _seed_side(side, s))
                if any(getattr(out, r, None) is not None for r in ("samples", "probes")):
                    raise NotStackable(
                        "it asks the family for samples or probes (suite.contract, Requests), "
                        "which the vectorised pass does not carry"
                    )
                own = dict(module.named_parameters())
                loss = (out.logits * probe).sum()
                if out.aux_loss is not None:
                    loss = loss + out.aux_loss
                own_grads = _grads(loss, [own[n] for n in names])
                pairs = [(batched[s], out.logits)] + [
                    (g[s], o) for g, o in zip(grads, own_grads, strict=True)
                ]
                for mine, theirs in pairs:
                    gap, size = _gap(mine, theirs)
                    if not gap <= TRIAL_TOLERANCE * (size + 1.0):
                        raise NotStackable(
                            f"its vmapped outputs or gradients differ from its own by {gap:.3g}"
                        )
        self._point_modules_at_slices()


def _gap(mine: Tensor, theirs: Tensor) -> tuple[float, float]:
    """Largest difference where both are finite (inf where only one is: a seed that is already
    NaN, e.g. diverged, must not stop the others from stacking) and the size of ``theirs``."""
    finite = torch.isfinite(theirs)
    if not torch.equal(finite, torch.isfinite(mine)):
        return math.inf, 0.0
    if not bool(finite.any()):
        return 0.0, 0.0
    mine, theirs = mine.detach()[finite], theirs.detach()[finite]
    return (mine - theirs).abs().max().item(), theirs.abs().max().item()


def _grads(loss: Tensor, params: list[Tensor]) -> list[Tensor]:
    if not params or not loss.requires_grad:
        return [torch.zeros_like(p) for p in params]
    found = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, found, strict=True)]


def _owner(module: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    *path, leaf = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    return module, leaf


def stack_gates(
    gates: list[Any], info: Any, x: Tensor, side: Side | None = None, vectorise: bool = True
) -> GateStack:
    """A ``VmapStack`` where the gates allow it (checked on ``x``, the first real batch), else a
    ``LoopStack`` whose ``reason`` says why the gate could not be vectorised ("" where the
    family chose the loop: ``vectorise`` False)."""
    reason = ""
    vectorise = vectorise and vectorising(x.device)
    if vectorise and info.kind == "router":
        try:
            stack = VmapStack(gates, info)
            stack.trial(x, side)
            return stack
        except NotStackable as exc:
            reason = str(exc)
    elif vectorise:
        reason = f"seeds of a {info.kind} gate are not vectorised"
    loop = LoopStack(gates, info)
    loop.reason = reason
    return loop


class _Method(nn.Module):
    """``module.<name>(*args, **fixed)`` as a module's forward, for ``functional_call``."""

    def __init__(self, module: nn.Module, name: str, fixed: dict[str, Any]) -> None:
        super().__init__()
        self.m = module
        self.name, self.fixed = name, fixed

    def forward(self, *args: Any) -> Any:
        return getattr(self.m, self.name)(*args, **self.fixed)


class ModuleStack:
    """A family's own per-seed modules (e.g. the model around the gate) stacked like the
    gates: ``call(method, *args)`` maps every tensor argument's leading seed axis; without
    ``vectorise`` it calls each seed's module in turn and stacks the results."""

    def __init__(self, modules: list[nn.Module], vectorise: bool = True) -> None:
        self.modules = modules
        device = next((p.device for m in modules for p in m.parameters()), torch.device("cpu"))
        self.vectorised = vectorise = vectorise and vectorising(device)
        if vectorise:
            params, buffers = torch.func.stack_module_state(modules)
            self.params = {f"m.{k}": v for k, v in params.items()}
            self.buffers = {f"m.{k}": v for k, v in buffers.items()}
            self.template = copy.deepcopy(modules[0]).to("meta")
            for s, module in enumerate(modules):  # each seed's module reads its slice
                for name, stacked in params.items():
                    owner, leaf = _owner(module, name)
                    owner._parameters[leaf] = nn.Parameter(stacked.detach()[s], requires_grad=False)
                for name, stacked in buffers.items():
                    owner, leaf = _owner(module, name)
                    owner._buffers[leaf] = stacked[s]

    def parameters(self) -> list[Tensor]:
        if self.vectorised:
            return [p for p in self.params.values() if p.requires_grad]
        return [p for m in self.modules for p in m.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> None:
        for m in self.modules:
            m.train(mode)
        if self.vectorised:
            self.template.train(mode)

    def call(self, method: str, *args: Tensor, **fixed: Any) -> Any:
        if not self.vectorised:
            outs = [
                getattr(m, method)(*(a[s] for a in args), **fixed)
                for s, m in enumerate(self.modules)
            ]
            if isinstance(outs[0], tuple):
                return tuple(torch.stack(parts) for parts in zip(*outs, strict=True))
            return torch.stack(outs)
        wrapper = _Method(self.template, method, fixed)

        def one(params: dict, buffers: dict, *a: Tensor) -> Any:
            return torch.func.functional_call(wrapper, (params, buffers), a)

        return torch.func.vmap(one)(self.params, self.buffers, *args)

    def call_one(self, s: int, method: str, *args: Tensor) -> Any:
        """Seed ``s``'s module alone (differentiable in its stacked slice when vectorised)."""
        if not self.vectorised:
            return getattr(self.modules[s], method)(*args)
        params = {k: v[s] for k, v in self.params.items()}
        buffers = {k: v[s] for k, v in self.buffers.items()}
        wrapper = _Method(self.template, method, {})
        return torch.func.functional_call(wrapper, (params, buffers), args)
