"""The run's sandbox: gates that reach outside their run (a TCP connection, a huge file, a process
left running) fail or are stopped, and the sweep goes on."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from tests.confinement import need_landlock

ANT = "transition/anticipation"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _with_params(tasks, params):
    task = tasks[ANT]
    tasks[ANT] = task.model_copy(update={"gate_params": params})
    return task


def test_a_gate_cannot_open_a_tcp_connection(sweep, tasks):
    need_landlock(4, "denying TCP")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    port = server.getsockname()[1]
    task = _with_params(tasks, {"test-connects": {"port": port}})
    try:
        _, records = sweep([ANT], ["affinity", "test-connects"], seeds=1)
    finally:
        tasks[ANT] = task
    with pytest.raises(TimeoutError):
        server.accept()  # nothing ever connected
    server.close()
    by_gate = {r.gate.id: r for r in records}
    sandbox = by_gate["affinity"].provenance.sandbox
    assert by_gate["affinity"].ok and "no TCP" in sandbox and "reads only code" in sandbox
    assert by_gate["test-connects"].status == "failed"
    assert "PermissionError" in by_gate["test-connects"].reason


def test_a_gate_cannot_write_a_huge_file(sweep):
    _, records = sweep([ANT], ["test-big-file"], seeds=1)
    (record,) = records
    assert record.status == "failed" and "File too large" in record.reason


def test_processes_a_gate_leaves_running_are_stopped(sweep):
    _, records = sweep([ANT], ["test-leaves-child"], seeds=1)
    (record,) = records
    assert record.ok, record.reason
    pid = int(record.diagnostics["child_pid"])
    assert pid > 0
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"process {pid} started by the gate is still running"
    # (an audit at the acting call runs side calls on copies of the gate, which may start more:
    # how many depends on the sweep's secret audit seed)
    assert any(re.search(r"stopped [1-9]\d* process", note) for note in record.notes), record.notes


def test_confinement_tests_fail_instead_of_skipping_when_confinement_is_required(monkeypatch):
    import tests.confinement as confinement

    monkeypatch.setattr(confinement, "landlock_abi", lambda: 0)
    monkeypatch.delenv("GATEBENCH_REQUIRE_SANDBOX", raising=False)
    with pytest.raises(pytest.skip.Exception, match="ABI is 0"):
        confinement.need_landlock(1, "confinement")
    monkeypatch.setenv("GATEBENCH_REQUIRE_SANDBOX", "1")
    with pytest.raises(pytest.fail.Exception, match="GATEBENCH_REQUIRE_SANDBOX=1"):
        confinement.need_landlock(1, "confinement")
    monkeypatch.setattr(confinement, "landlock_abi", lambda: 7)
    confinement.need_landlock(4, "denying TCP")  # present: runs
