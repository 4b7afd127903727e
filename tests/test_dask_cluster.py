"""A real Dask cluster: a `dask scheduler` and two `dask worker` processes on localhost, as the
README starts them. The records equal a local run's, a worker killed mid-sweep costs nothing but
time, and an untrusted gate stays confined on a worker (its own process, Landlock)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from suite.gates.entries import get_gate
from suite.runs.records import iter_records
from suite.runs.setup import SweepOptions
from suite.runs.sweep import Sweep
from tests.confinement import need_landlock

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

TASK = "transition/anticipation"
DASK = str(Path(sys.executable).with_name("dask"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [DASK, *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
        start_new_session=True,  # its own process group: the nanny and its worker die together
    )  # fmt: skip


@pytest.fixture
def cluster(tmp_path):
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_start(["scheduler", "--host", "127.0.0.1", "--port", str(port),
                     "--dashboard-address", ":0"], tmp_path / "scheduler.log")]  # fmt: skip
    time.sleep(2)
    workers = [
        _start(["worker", address, "--nthreads", "1", "--nworkers", "1",
                "--preload", "suite.runs.warm",
                "--dashboard-address", ":0", "--local-directory", str(tmp_path / f"w{i}")],
               tmp_path / f"worker{i}.log")
        for i in range(2)
    ]  # fmt: skip
    procs += workers
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, workers
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _sweep(tasks, results: Path, gates: list[str], log=lambda msg: None, **options):
    opts = SweepOptions(profile="smoke", results=results, workers=2, **options)
    summary = Sweep(opts, log=log).run([tasks[TASK]], [get_gate(g) for g in gates])
    return summary, {r.key: r for r in iter_records(results)}


def test_a_real_cluster_matches_local_runs_and_survives_a_killed_worker(tasks, tmp_path, cluster):
    address, workers = cluster
    gates = ["affinity", "beta+ant", "gru", "test-honest-linear"]
    local, local_records = _sweep(tasks, tmp_path / "local", gates)
    killed = []

    def kill_one_worker(message: str) -> None:  # after the first finished run
        if not killed and " ok " in f" {message} ":
            os.killpg(workers[0].pid, signal.SIGKILL)
            killed.append(message)

    remote, remote_records = _sweep(
        tasks, tmp_path / "dask", gates, log=kill_one_worker, executor="dask", scheduler=address
    )
    assert killed, "no run finished before the worker was to be killed"
    assert (remote.ok, remote.failed) == (local.ok, local.failed) == (8, 0), remote.failures
    for key, record in remote_records.items():
        assert record.metrics == local_records[key].metrics
    linear = [r for r in remote_records.values() if r.gate.id == "test-honest-linear"]
    assert all("own process" in r.provenance.sandbox for r in linear)


def test_an_untrusted_gate_is_confined_on_a_worker(tasks, tmp_path, cluster):
    need_landlock(1, "confinement")
    address, _ = cluster
    secret = tmp_path / "results-of-others.json"
    secret.write_text("{}")
    task = tasks[TASK]
    tasks[TASK] = task.model_copy(update={"gate_params": {"test-reads": {"target": str(secret)}}})
    try:
        summary, records = _sweep(
            tasks, tmp_path / "r", ["test-reads"], executor="dask", scheduler=address
        )
    finally:
        tasks[TASK] = task
    assert summary.failed == 2
    assert all("PermissionError" in r.reason for r in records.values())
