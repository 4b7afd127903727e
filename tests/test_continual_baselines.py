"""The continual-learning routers (baselines/continual/): contract and behaviour."""

from __future__ import annotations

import pytest
import torch

from baselines.continual._common import NEEDS_SEQUENCE
from suite.contract import Gate, TaskInfo
from suite.gates.conformance import run_conformance
from suite.gates.entries import get_gate

IDS = ["seq-lora", "moe-lora", "moses", "grip-router", "frozen-router", "ewc", "joint"]
D, E, T = 16, 6, 8
INFO = TaskInfo(d_model=D, n_experts=E, seq_len=T, extras={"n_tasks": 5, "top_k": 2})
TASK_AWARE = TaskInfo(
    d_model=D, n_experts=E, seq_len=T, inputs=("x", "task_id"), extras={"n_tasks": 5, "top_k": 2}
)


def build(gate_id: str, info: TaskInfo = INFO, seed: int = 0, **overrides) -> Gate:
    torch.manual_seed(seed)
    return get_gate(gate_id).build(info, overrides)


def adam_steps(gate: Gate, x: torch.Tensor, loss_fn, steps: int, lr: float = 0.05) -> None:
    """Train as the family does: a fresh Adam per task, over the gate and the adapters (here one
    stand-in parameter, so that a router with nothing to train still has a loss to minimise)."""
    gate.train()
    adapter = torch.nn.Parameter(torch.zeros(()))
    params = [p for p in gate.parameters() if p.requires_grad] + [adapter]
    optimizer = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        out = gate(x)
        loss = loss_fn(out.logits) + adapter.square()
        if out.aux_loss is not None:
            loss = loss + out.aux_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def task_inputs(center: torch.Tensor, n: int = 32, noise: float = 0.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(center.abs().sum() * 1000) % 2**31)
    return center + noise * torch.randn(n, T, center.shape[-1], generator=g)


@pytest.mark.parametrize("info", [INFO, TASK_AWARE], ids=["plain", "task-aware"])
@pytest.mark.parametrize("gate_id", IDS)
def test_passes_conformance(gate_id: str, info: TaskInfo):
    report = run_conformance(get_gate(gate_id), info, None, seed=0)
    assert report.passed, report.reason()


@pytest.mark.parametrize("gate_id", IDS)
def test_refuses_tasks_without_a_sequence(gate_id: str):
    plain = TaskInfo(d_model=D, n_experts=E, seq_len=T)
    assert get_gate(gate_id).supports(plain) == (False, NEEDS_SEQUENCE)
    assert get_gate(gate_id).supports(INFO) == (True, "")


def test_regimes_and_ceiling():
    assert get_gate("ewc").cls.regime == "ewc"
    assert build("ewc").ewc_lambda == 100.0
    assert build("ewc", ewc_lambda=3).ewc_lambda == 3.0
    assert get_gate("joint").cls.regime == "joint" and get_gate("joint").ceiling
    for gate_id in IDS:
        if gate_id not in ("ewc", "joint"):
            assert getattr(get_gate(gate_id).cls, "regime", "sequential") == "sequential"
            assert not get_gate(gate_id).ceiling


def test_seq_lora_routes_every_token_to_expert_0():
    gate = build("seq-lora")
    assert not list(gate.parameters())
    logits = gate(torch.randn(3, T, D)).logits
    assert (logits.argmax(-1) == 0).all()
    top2 = torch.softmax(logits.topk(2, dim=-1).values, dim=-1)
    assert (top2[..., 1] < 1e-12).all()


# -- grip-router ----------------------------------------------------------------------------------


def _grip_after_task_0(seed: int = 0) -> tuple[Gate, torch.Tensor]:
    gate = build("grip-router", seed=seed)
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(D, 3, generator=g))[0]  # task 0 lies in 3 directions
    x0 = torch.randn(64, T, 3, generator=g) @ basis.T
    gate.begin_task(0)
    adam_steps(gate, x0, lambda y: (y[..., 0] - y[..., 1]).mean(), steps=5)
    gate.end_task(0)
    return gate, x0


def test_grip_router_keeps_earlier_tasks_routing_exactly():
    gate, x0 = _grip_after_task_0()
    assert int(gate.rank) == 4  # the 3 input directions and the bias coordinate
    basis = gate.basis
    assert torch.allclose(basis.T @ basis, torch.eye(4), atol=1e-5)
    gate.eval()
    with torch.no_grad():
        before = gate(x0).logits.clone()
        fresh = torch.randn(16, T, D)
        fresh_before = gate(fresh).logits.clone()
    gate.begin_task(1)
    x1 = torch.randn(64, T, D) + 0.5
    target = torch.randn(E)
    adam_steps(gate, x1, lambda y: ((y - 10 * target) ** 2).mean(), steps=100)
    gate.eval()
    with torch.no_grad():
        assert torch.allclose(gate(x0).logits, before, atol=1e-5, rtol=0)
        assert (gate(fresh).logits - fresh_before).abs().max() > 0.5


def test_grip_router_gradient_is_the_projected_gradient():
    gate, _ = _grip_after_task_0()
    gate.train()
    gate.zero_grad(set_to_none=True)
    z = torch.randn(4, T, D)
    gate(z).logits.square().sum().backward()
    P = torch.eye(D + 1) - gate.U @ gate.U.T
    plain = build("moe-lora")
    plain.W.data.copy_(gate.weight().detach())
    plain(z).logits.square().sum().backward()
    assert torch.allclose(gate.W.grad, plain.W.grad @ P, atol=1e-4)


def test_grip_router_end_task_keeps_the_function_and_caps_the_rank():
    gate = build("grip-router", energy=1.0)
    for task in range(3):
        x = torch.randn(64, T, D)
        gate.begin_task(task)
        adam_steps(gate, x, lambda y, e=task: y[..., e].mean(), steps=3)
        gate.eval()
        with torch.no_grad():
            before = gate(x).logits
            gate.end_task(task)
            assert torch.allclose(gate(x).logits, before, atol=1e-5)
    assert int(gate.rank) == D + 1  # full rank: the router is frozen from here on


def _trained_build(gate_id: str, seed: int = 0):
    """A gate after two tasks, for conformance with non-trivial continual state."""

    def make() -> Gate:
        gate = build(gate_id, seed=seed)
        with torch.enable_grad():  # conformance builds under no_grad
            for task in range(2):
                x = task_inputs(torch.full((D,), float(task + 1)))
                gate.begin_task(task)
                adam_steps(gate, x, lambda y: y[..., 0].mean(), steps=3)
                gate.end_task(task)
        return gate.eval()

    return make


@pytest.mark.parametrize("gate_id", ["grip-router", "moses", "frozen-router"])
def test_conformance_after_two_tasks(gate_id: str):
    report = run_conformance(get_gate(gate_id), INFO, None, seed=0, build=_trained_build(gate_id))
    assert report.passed, report.reason()


# -- frozen-router --------------------------------------------------------------------------------


def test_frozen_router_stops_learning_after_the_first_task():
    gate = build("frozen-router")
    x = torch.randn(8, T, D)
    gate.begin_task(0)
    start = gate(x).logits.detach().clone()
    adam_steps(gate, x, lambda y: y[..., 0].mean(), steps=5)
    trained = gate(x).logits.detach().clone()
    assert (trained - start).abs().max() > 1e-3  # it learns during task 0
    gate.end_task(0)
    gate.begin_task(1)
    gate.train()
    gate.zero_grad(set_to_none=True)
    assert not gate(x).logits.requires_grad  # no gradient reaches W, so Adam skips it
    adam_steps(gate, torch.randn(8, T, D), lambda y: y[..., 1].mean(), steps=20)
    assert torch.equal(gate(x).logits.detach(), trained)


# -- moses ----------------------------------------------------------------------------------------


def _pull(gate: Gate, x: torch.Tensor) -> float:
    return float(gate(x).aux_loss.detach())


def test_moses_forces_the_task_expert_in_training():
    gate = build("moses")
    x = torch.randn(4, T, D)
    for task in range(3):
        gate.begin_task(task)
        gate.train()
        out = gate(x)
        assert (out.logits.argmax(-1) == task).all()
        assert out.aux_loss is not None and out.aux_loss.ndim == 0
        gate.end_task(task)
    gate.eval()
    assert gate(x).aux_loss is None


def test_moses_pull_loss_decreases_when_keys_train():
    gate = build("moses")
    x = task_inputs(torch.randn(D))
    gate.begin_task(0)
    gate.train()
    before = _pull(gate, x)
    adam_steps(gate, x, lambda y: y.sum() * 0, steps=50)
    after = _pull(gate, x)
    assert after < before * 0.5, (before, after)
    assert gate.keys.grad[1:].abs().max() == 0  # only the task's own key is pulled


def test_moses_routes_each_task_to_its_own_expert_at_evaluation():
    gate = build("moses")
    g = torch.Generator().manual_seed(1)
    centers = 3.0 * torch.linalg.qr(torch.randn(D, 2, generator=g))[0].T  # orthogonal centres
    data = [task_inputs(c) for c in centers]
    for task, x in enumerate(data):
        gate.begin_task(task)
        adam_steps(gate, x, lambda y: y.sum() * 0, steps=100)
        gate.end_task(task)
    gate.eval()
    with torch.no_grad():
        for task, x in enumerate([*data, torch.randn(32, T, D)]):
            logits = gate(x).logits
            assert torch.isfinite(logits).all()
            assert set(logits.topk(2, dim=-1).indices.unique().tolist()) <= {0, 1}
            if task < 2:
                assert (logits.argmax(-1) == task).all()


def test_moses_streams_in_training_mode_too():
    """Conformance runs in eval mode; forced routing in training must stream alike."""
    gate = build("moses")
    gate.begin_task(2)
    gate.train()
    x = torch.randn(4, T, D)
    out = gate(x)
    state, stepped = gate.initial_state(4), []
    for t in range(T):
        step = gate.step(x[:, t], state)
        stepped.append(step.logits)
        state = step.state
    assert torch.allclose(torch.stack(stepped, 1), out.logits)
    assert all(torch.allclose(a, b) for a, b in zip(out.state, state, strict=True))
    first = gate(x[:, :3])
    second = gate(x[:, 3:], first.state)
    assert torch.allclose(torch.cat([first.logits, second.logits], 1), out.logits)


def test_moses_needs_a_sub_expert_per_task():
    info = TaskInfo(d_model=D, n_experts=4, seq_len=T, extras={"n_tasks": 5, "top_k": 2})
    ok, reason = get_gate("moses").supports(info)
    assert not ok and "n_tasks (5) must be at most n_experts (4)" in reason
