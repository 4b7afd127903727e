"""A gate's own process: it holds the gate, its optimiser and nothing else.

The harness (``suite.gates.proxy``) sends the inputs a family declares, the gradient of its loss
with respect to the gate's outputs and the feedback; this process runs the gate's code on them and
sends outputs back. It never sees data seeds, labels, losses, metrics or records, so a submitted
gate has nothing to read but its own inputs. It runs confined (``suite.runs.sandbox``): writes only
in its scratch folder, reads only code and its own submission's folder.

Commands that need an answer get one (``{"ok": ...}`` or ``{"error": ...}``); one-way notices
(optimiser steps, feedback, task hooks) are answered by nothing, and an error in one is reported
with the next answer.
"""

from __future__ import annotations

import copy
import socket
import sys
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from suite.contract import Gate, TaskInfo, deliver_feedback
from suite.gates.entries import GateEntry
from suite.gates.kinds import kinds
from suite.gates.resolve import resolve_ref
from suite.gates.violations import AuditViolation
from suite.gates.wire import Channel, PeerGone, decode, encode, flatten, map_tensors
from suite.seeding import seeded_global_rng

MAX_GRAPHS = 4096  # graphs of calls kept for a backward that may still come


def autograd_leaves(outputs: list[Tensor]) -> list[Tensor]:
    """The tensors a backward through ``outputs`` would accumulate gradients into."""
    leaves = [o for o in outputs if o.requires_grad and o.grad_fn is None]
    stack, seen = [o.grad_fn for o in outputs if o.grad_fn is not None], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):  # AccumulateGrad: a leaf that requires grad
            leaves.append(node.variable)
        stack.extend(child for child, _ in node.next_functions)
    return leaves


def check_trainables(gate: Gate, budget: int, inputs: list[Tensor], outputs: list[Tensor]) -> None:
    """Everything the gate trains is a parameter counted when it was built: the parameter
    budget cannot be escaped by parameters created later (on the first real batch, after the
    checks) or by tensors that take gradients without being parameters."""
    params = list(gate.parameters())
    total = sum(p.numel() for p in params)
    if total > budget:
        raise AuditViolation(
            f"the gate holds {total} parameters, {budget} when it was built and its parameter "
            "budget checked: create every parameter in __init__"
        )
    known = {id(t) for t in [*params, *inputs]}
    for leaf in autograd_leaves(outputs):
        if id(leaf) not in known:
            raise AuditViolation(
                f"the gate's outputs take gradients into a tensor of shape {tuple(leaf.shape)} "
                "that is not one of its parameters, so the parameter budget does not count it: "
                "make it an nn.Parameter created in __init__"
            )


class GateHost:
    """Serves one run's (or one conformance check's) gates over ``channel``."""

    def __init__(self, channel: Channel, ref: dict[str, Any]) -> None:
        self.channel = channel
        self.ref = ref
        self.entry: GateEntry | None = None
        self.gates: dict[int, Gate] = {}
        self.forked: set[int] = set()  # twins whose calls leave the RNG as they found it
        self.optimizers: dict[int, torch.optim.Optimizer] = {}
        self.graphs: dict[int, tuple[list[Tensor], list[Tensor]]] = {}  # call -> (inputs, outputs)
        self.budgets: dict[int, int] = {}  # handle -> parameters when built (and checked)
        self.rng_before: Tensor | None = None  # the random state before the last real call
        self.calls = 0
        self.deferred: str | None = None  # an error in a notice, reported with the next answer

    def serve(self) -> None:
        while True:
            try:
                header, tensors = self.channel.recv()
            except PeerGone:
                return
            command = header.get("cmd")
            if command == "close":
                return
            for before, args in header.get("before", []):  # deferred notices come first
                self._run(before, decode(args, tensors), reply=False)
            self._run(command, decode(header.get("args", {}), tensors), bool(header.get("reply")))

    def _run(self, command: str, args: dict[str, Any], reply: bool) -> None:
        """Run one command; answer it when asked, else keep its error for the next answer."""
        try:
            result = getattr(self, f"do_{command}")(**args)
        except Exception as exc:  # the gate's failure is the harness's finding, not ours
            last = traceback.extract_tb(exc.__traceback__)[-1]
            text = f"{type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})"
            if reply:
                self._answer({"error": text, "detail": traceback.format_exc()}, [])
            else:
                self.deferred = self.deferred or f"in {command}: {text}"
            return
        if not reply:
            return
        if self.deferred is not None:
            self._answer({"error": self.deferred, "detail": ""}, [])
            self.deferred = None
            return
        tensors_out: list[Tensor] = []
        self._answer({"ok": encode(result, tensors_out)}, tensors_out)

    def _answer(self, header: dict[str, Any], tensors: list[Tensor]) -> None:
        self.channel.send(header, tensors)

    # -- gates ----------------------------------------------------------------------------------

    def do_build(self, handle: int, info: dict[str, Any], overrides: Any, seed: int, device: str):
        if self.entry is None:
            self.entry = resolve_ref(self.ref)
        task = TaskInfo.from_dict(info)
        with seeded_global_rng(seed):
            gate = self.entry.build(task, overrides).to(torch.device(device))
        self.gates[handle] = gate
        self.budgets[handle] = sum(p.numel() for p in gate.parameters())
        trainable = sum(p.numel() for p in gate.parameters() if p.requires_grad)
        return {
            "trainable": trainable,
            "causal": bool(gate.causal),
            "cls": type(gate).__name__,
            "layer": None if gate.layer is None else str(gate.layer),
        }

    def do_clone(self, handle: int, new: int) -> None:
        """A twin for side calls: its calls never change the real gate or its RNG draws."""
        self.gates[new] = copy.deepcopy(self.gates[handle])
        self.budgets[new] = self.budgets[handle]
        self.forked.add(new)

    def do_drop(self, handle: int) -> None:
        self.gates.pop(handle, None)
        self.budgets.pop(handle, None)
        self.optimizers.pop(handle, None)
        self.forked.discard(handle)

    def do_call(
        self, handle: int, method: str, args: list[Any], needs: list[bool], grad: bool, train: bool
    ) -> dict[str, Any]:
        gate = self.gates[handle]
        gate.train(train)
        kind = kinds.get(gate.info.kind)
        _, inputs = flatten(args)
        wanted = [t for t, need in zip(inputs, needs, strict=False) if need]
        for t in wanted:
            t.requires_grad_(True)
        x, state, side = args
        device = next((p.device for p in gate.parameters()), torch.device("cpu"))
        if device.type != "cpu":
            x, state, side = map_tensors((x, state, side), lambda t: t.to(device))
        twin = handle in self.forked
        if not twin:  # a twin's calls (audits, after a real call) draw what that call drew
            self.rng_before = torch.get_rng_state()
        fork = torch.random.fork_rng(devices=[]) if twin else nullcontext()
        with fork, torch.set_grad_enabled(grad):
            if twin and self.rng_before is not None:
                torch.set_rng_state(self.rng_before)
            if method == "forward":
                out = kind.forward(gate, x, state, side)
            elif method == "step":
                out = kind.step(gate, x, state, side)
            else:
                raise ValueError(f"unknown gate method {method}")
        node, outputs = flatten(out)
        call = None
        if grad and any(o.requires_grad for o in outputs):
            check_trainables(gate, self.budgets[handle], wanted, outputs)
            self.calls += 1
            call = self.calls
            self.graphs[call] = (wanted, outputs)
            while len(self.graphs) > MAX_GRAPHS:  # never backpropagated: let the oldest go
                self.graphs.pop(next(iter(self.graphs)))
        detached = decode(node, [o.detach() for o in outputs])
        return {"out": detached, "call": call, "diff": [o.requires_grad for o in outputs]}

    def do_initial_state(self, handle: int, batch: int) -> Any:
        return map_tensors(self.gates[handle].initial_state(batch), Tensor.detach)

    def do_backward(self, call: int, grads: list[Tensor | None]) -> list[Tensor | None]:
        """``outputs.backward(grads)`` for one call; the gradients of its inputs that need one."""
        if call not in self.graphs:
            raise RuntimeError(
                f"backward through gate call {call} came after an optimiser step or more than "
                f"{MAX_GRAPHS} later calls; backpropagate each call's outputs before stepping"
            )
        inputs, outputs = self.graphs.pop(call)
        pairs = [
            (o, g.to(o.device, o.dtype))
            for o, g in zip(outputs, grads, strict=False)
            if g is not None and o.requires_grad
        ]
        if pairs:
            torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return [None if t.grad is None else t.grad.detach() for t in inputs]

    def do_optimizer(self, handle: int, lr: float) -> None:
        params = [p for p in self.gates[handle].parameters() if p.requires_grad]
        if params:  # the harness's Adam (suite.tasks.training.adam), not imported here
            self.optimizers[handle] = torch.optim.Adam(params, lr=lr, foreach=True)

    def do_zero_grad(self, handle: int) -> None:
        for p in self.gates[handle].parameters():
            p.grad = None

    def do_step(self, handle: int) -> None:
        if handle in self.optimizers:
            self.optimizers[handle].step()
        self.graphs.clear()  # graphs of calls never backpropagated are stale after a step

    def do_observe(self, handle: int, feedback: Any) -> None:
        deliver_feedback(self.gates[handle], feedback)

    def do_begin_task(self, handle: int, index: int) -> None:
        self.gates[handle].begin_task(index)

    def do_end_task(self, handle: int, index: int) -> None:
        self.gates[handle].end_task(index)

    def do_diagnostics(self, handle: int) -> dict[str, Tensor]:
        return {str(k): v.detach() for k, v in self.gates[handle].diagnostics().items()}

    def do_state_dict(self, handle: int) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.gates[handle].state_dict().items()}

    def do_grads(self, handle: int) -> list[Tensor]:
        """The parameters' accumulated gradients (zeros where none), then cleared."""
        params = [p for p in self.gates[handle].parameters() if p.requires_grad]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]
        for p in params:
            p.grad = None
        return grads

    def do_ping(self) -> None:
        return None

    def do_finish(self) -> int:
        """Stop what the gate left running; how many processes that was."""
        from suite.runs.sandbox import stop_descendants

        return stop_descendants()


def host_main(
    sock: socket.socket, ref: dict[str, Any], scratch: str, memory_mb: int | None, threads: int
) -> None:
    """The gate process's entry point: confine, then serve until the harness closes."""
    from suite.runs.jobs import job_readable, pin_threads
    from suite.runs.sandbox import confine, stop_descendants

    confine(Path(scratch), memory_mb, job_readable({"gate": ref}))
    pin_threads(threads)
    channel = Channel(sock)
    try:
        GateHost(channel, ref).serve()
    finally:
        stop_descendants()
        channel.close()


def main(argv: list[str]) -> None:
    """``python -m suite.gates.host FD SCRATCH MEMORY_MB THREADS REF_JSON`` (the launcher used
    where a forkserver is not at hand, e.g. inside a Dask worker)."""
    import json

    fd, scratch, memory, threads, ref = argv
    sock = socket.socket(fileno=int(fd))
    host_main(sock, json.loads(ref), scratch, int(memory) or None, int(threads))


if __name__ == "__main__":
    main(sys.argv[1:])
