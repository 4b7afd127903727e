"""The harness's side of a gate that runs in its own process (``suite.gates.host``).

``GateProxy`` has the contract's interface, so families, audits and conformance call it as they
call an in-process gate. Each call sends the inputs across and returns the outputs; when autograd
is on, the outputs are joined to the harness's graph by a ``torch.autograd.Function``, whose
backward sends the gradient of the loss with respect to those outputs to the gate's process, which
runs ``outputs.backward(grad)`` there and returns the gradients of any inputs that need them. The
gate's parameters and optimiser live only in its process: ``make_optimizer`` gives a proxy a
``RemoteOptimizer`` that steps them there.

The helpers at the end (``trainable_count``, ``parameter_state``, ``parameter_grads``,
``side_twin``) are how checks read a gate wherever it lives.
"""

from __future__ import annotations

import contextlib
import copy
import socket
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from suite.contract import Feedback, Gate, Side, State, TaskInfo
from suite.gates.violations import AuditViolation
from suite.gates.wire import Channel, WireError, decode, encode, flatten, map_tensors


class GateProcessError(RuntimeError):
    """The gate's code raised in its own process (the message says what and where)."""


class GateClient:
    """One connection to a gate's process; builds proxies and carries their calls."""

    def __init__(self, sock: socket.socket, deadline: float | None = None) -> None:
        self.channel = Channel(sock)
        self.deadline = deadline
        self.handles = 0
        self.deferred: list[tuple[str, dict[str, Any]]] = []

    def request(self, command: str, **args: Any) -> Any:
        self._send(command, args, reply=True)
        header, tensors = self.channel.recv(self.deadline)
        if "error" in header:
            text = str(header["error"])[:2000]
            violation = f"{AuditViolation.__name__}: "
            if text.startswith(violation):  # a rule the gate's process found broken: rejected
                raise AuditViolation(text.removeprefix(violation))
            error = GateProcessError(text)
            detail = str(header.get("detail", ""))[-4000:]
            if detail:
                error.add_note(f"in the gate's process:\n{detail}")
            raise error
        if "ok" not in header:
            raise WireError("the gate's process answered something that is not an answer")
        return decode(header["ok"], tensors)

    def notify(self, command: str, **args: Any) -> None:
        self._send(command, args, reply=False)

    def defer(self, command: str, **args: Any) -> None:
        """A notice sent with the next message rather than alone (one wake-up fewer), for what
        only matters before the next call, such as clearing gradients before a backward."""
        self.deferred.append((command, args))

    def _send(self, command: str, args: dict[str, Any], reply: bool) -> None:
        tensors: list[Tensor] = []
        header = {"cmd": command, "args": encode(args, tensors), "reply": reply}
        if self.deferred:
            header["before"] = [[c, encode(a, tensors)] for c, a in self.deferred]
            self.deferred = []
        self.channel.send(header, tensors)

    def build(
        self, info: TaskInfo, overrides: Any, seed: int, device: str | torch.device = "cpu"
    ) -> GateProxy:
        self.handles += 1
        answer = self.request(
            "build",
            handle=self.handles,
            info=info.as_dict(),
            overrides=dict(overrides or {}),
            seed=int(seed),
            device=str(device),
        )
        return GateProxy(self, self.handles, info, answer, torch.device(device))

    def finish(self) -> int:
        """Ask the gate's process to stop what the gate left running; how many it stopped."""
        stopped = self.request("finish")
        return stopped if isinstance(stopped, int) else 0

    def close(self) -> None:
        with contextlib.suppress(OSError, WireError):
            self.channel.send({"cmd": "close"})
        self.channel.close()


class _RemoteCall(torch.autograd.Function):
    """One gate call as a node of the harness's graph: forward crosses to the gate's process,
    backward sends the outputs' gradients there."""

    @staticmethod
    def forward(ctx, proxy: GateProxy, method: str, tree: Any, box: dict, anchor, *inputs):  # type: ignore[override]
        needs = [t.requires_grad for t in box.pop("inputs")]
        answer = proxy.client.request(
            "call",
            handle=proxy.handle,
            method=method,
            args=decode(tree, list(inputs)),
            needs=needs,
            grad=True,
            train=proxy.training,
        )
        out_tree, outputs = flatten(answer["out"])
        ctx.proxy, ctx.call = proxy, answer["call"]
        ctx.input_meta = [(t.device, t.dtype) for t in inputs]
        ctx.needs = needs
        diff = answer["diff"] if isinstance(answer["diff"], list) else []
        device = inputs[0].device if inputs else proxy.device
        outputs = [o.to(device) for o in outputs]
        ctx.mark_non_differentiable(
            *[o for o, d in zip(outputs, diff + [False] * len(outputs), strict=False) if not d]
        )
        ctx.set_materialize_grads(False)
        box["tree"] = out_tree
        return tuple(outputs)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):  # type: ignore[override]
        if ctx.call is None or all(g is None for g in grads):
            return (None, None, None, None, None, *[None] * len(ctx.input_meta))
        ctx.proxy.unapplied = True
        back = ctx.proxy.client.request("backward", call=ctx.call, grads=list(grads))
        back = list(back) if isinstance(back, list) else []
        wanted = iter(back)
        result = []
        for (device, dtype), need in zip(ctx.input_meta, ctx.needs, strict=True):
            g = next(wanted, None) if need else None
            result.append(None if g is None else g.to(device, dtype))
        return (None, None, None, None, None, *result)


class GateProxy(nn.Module):
    """A gate in another process, called through the contract's interface."""

    def __init__(
        self,
        client: GateClient,
        handle: int,
        info: TaskInfo,
        built: dict[str, Any],
        device: torch.device,
    ) -> None:
        super().__init__()
        self.client, self.handle, self.info, self.device = client, handle, info, device
        self.causal = bool(built.get("causal", True))
        self.layer = None if built.get("layer") is None else str(built["layer"])
        self.trainable = int(built.get("trainable", 0))
        self.class_name = str(built.get("cls", "gate"))
        self.kind = info.kind
        # autograd needs one input that requires grad to join the remote outputs to the graph
        self.anchor = nn.Parameter(torch.zeros((), device=device))
        self.unapplied = False  # gradients sent to the gate's process and not yet stepped

    def __repr__(self) -> str:
        return f"GateProxy({self.class_name}, handle {self.handle})"

    # -- the contract -------------------------------------------------------------------------

    def forward(self, x: Tensor, state: State = None, side: Side | None = None) -> Any:
        return self._call("forward", x, state, side)

    def step(self, x_t: Tensor, state: State = None, side: Side | None = None) -> Any:
        return self._call("step", x_t, state, side)

    def initial_state(self, batch_size: int) -> State:
        return self._to_device(
            self.client.request("initial_state", handle=self.handle, batch=batch_size)
        )

    def observe(self, feedback: Feedback) -> None:
        self.client.notify("observe", handle=self.handle, feedback=feedback)

    def begin_task(self, index: int) -> None:
        self.client.notify("begin_task", handle=self.handle, index=int(index))

    def end_task(self, index: int) -> None:
        self.client.notify("end_task", handle=self.handle, index=int(index))

    def diagnostics(self) -> dict[str, Tensor]:
        found = self.client.request("diagnostics", handle=self.handle)
        return {str(k): v for k, v in found.items() if isinstance(v, Tensor)}

    # -- what checks and optimisers need --------------------------------------------------------

    def remote_optimizer(self, lr: float) -> RemoteOptimizer | None:
        """Adam in the gate's process; None when the gate has nothing to train."""
        if not self.trainable:
            return None
        self.client.notify("optimizer", handle=self.handle, lr=float(lr))
        return RemoteOptimizer(self)

    def remote_state(self) -> dict[str, Tensor]:
        found = self.client.request("state_dict", handle=self.handle)
        return {str(k): v for k, v in found.items() if isinstance(v, Tensor)}

    def remote_grads(self) -> list[Tensor]:
        self.unapplied = False
        return [
            g for g in self.client.request("grads", handle=self.handle) if isinstance(g, Tensor)
        ]

    def twin(self) -> GateProxy:
        """A copy for side calls (audits): its calls change neither this gate nor its RNG."""
        self.client.handles += 1
        self.client.notify("clone", handle=self.handle, new=self.client.handles)
        twin = copy.copy(self)
        nn.Module.__setattr__(twin, "handle", self.client.handles)
        return twin

    def drop(self) -> None:
        self.client.notify("drop", handle=self.handle)

    def __deepcopy__(self, memo: dict) -> GateProxy:
        return self.twin()

    # -- calls --------------------------------------------------------------------------------

    def _call(self, method: str, x: Tensor, state: State, side: Side | None) -> Any:
        tree, inputs = flatten([x, state, side])
        if self.unapplied and self.training and torch.is_grad_enabled():
            raise RuntimeError(
                "the gate's gradients from the last backward were never applied: its parameters "
                "live in its own process, so build the optimiser with "
                "suite.tasks.training.make_optimizer([...gate...]) rather than over "
                "gate.parameters()"
            )
        if torch.is_grad_enabled():
            box: dict[str, Any] = {"inputs": inputs}
            outputs = _RemoteCall.apply(self, method, tree, box, self.anchor, *inputs)
            return decode(box["tree"], list(outputs))
        answer = self.client.request(
            "call",
            handle=self.handle,
            method=method,
            args=[x, state, side],
            needs=[False] * len(inputs),
            grad=False,
            train=self.training,
        )
        return self._to_device(answer["out"], x.device)

    def _to_device(self, tree: Any, device: torch.device | None = None) -> Any:
        return map_tensors(tree, lambda t: t.to(device or self.device))


class RemoteOptimizer:
    """The optimiser of a gate in its own process, driven from the harness's training loop."""

    def __init__(self, proxy: GateProxy) -> None:
        self.proxy = proxy

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.proxy.unapplied = False
        self.proxy.client.defer("zero_grad", handle=self.proxy.handle)

    def step(self) -> None:
        self.proxy.unapplied = False
        self.proxy.client.notify("step", handle=self.proxy.handle)


# -- reading any gate ---------------------------------------------------------------------------


def trainable_count(gate: nn.Module) -> int:
    """Trainable parameters of a gate, in this process or its own."""
    if isinstance(gate, GateProxy):
        return gate.trainable
    return sum(p.numel() for p in gate.parameters() if p.requires_grad)


def parameter_state(gate: nn.Module) -> dict[str, Tensor]:
    if isinstance(gate, GateProxy):
        return gate.remote_state()
    return gate.state_dict()


def parameter_grads(gate: nn.Module, loss: Tensor) -> list[Tensor]:
    """Gradients of ``loss`` with respect to the gate's trainable parameters (zeros if unused)."""
    if isinstance(gate, GateProxy):
        gate.client.notify("zero_grad", handle=gate.handle)
        if loss.requires_grad:
            loss.backward()
        return gate.remote_grads()
    params = [p for p in gate.parameters() if p.requires_grad]
    if not params:
        return []
    if not loss.requires_grad:  # e.g. ReMix's logits: constant weights, trained by its samples
        return [torch.zeros_like(p) for p in params]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if d is None else d for p, d in zip(params, grads, strict=True)]


def side_twin(gate: Gate | GateProxy) -> Any:
    """A copy of a gate for side calls that must not change it."""
    return gate.twin() if isinstance(gate, GateProxy) else copy.deepcopy(gate)


def release(twin: Any) -> None:
    """Let a twin's process-side copy go (also inside a wrapper such as the audited gate)."""
    if isinstance(twin, GateProxy):
        twin.drop()
    elif isinstance(getattr(twin, "inner", None), nn.Module):
        release(twin.inner)
