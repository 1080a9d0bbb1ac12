"""`make run`, `make up` and `make down` (python -m local.stack), run as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from local.stack import REPO, SERVICES, Stack, wait_serving
from tests.commands import run_module

pytestmark = pytest.mark.integration  # starts processes


def _environment(tmp_path: Path, **env: str) -> dict[str, str]:
    """A run directory of its own and every port free, so that the stack cannot meet one of `make up`."""
    free_ports = {f"HWOTP_{name.upper()}_{port}": "0" for name, _ in SERVICES for port in ("PORT", "METRICS_PORT")}
    return {**os.environ, "HWOTP_RUN_DIR": str(tmp_path / "run"), "HWOTP_CPUS": "", "HWOTP_DEMO_PORT": "0",
            **free_ports, **env}


def _stack_command(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_module("local.stack", command, env=env)


def _make_run(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, Path]:
    env = _environment(tmp_path, **env)
    out = tmp_path / "make-run.out"
    with open(out, "wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "local.stack", "run"], cwd=REPO, env=env,
                                   stdout=handle, stderr=subprocess.STDOUT)
    return process, out


def _wait_serving(process: subprocess.Popen, out: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = out.read_text()
        if "serving; Ctrl-C stops" in text:
            return text
        if process.poll() is not None:
            raise AssertionError(f"make run exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"make run did not start serving within {timeout} s:\n{out.read_text()[-3000:]}")


def _ctrl_c(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_make_run_shows_an_accepted_and_a_rejected_login_then_stops_on_ctrl_c(tmp_path):
    process, out = _make_run(tmp_path)
    try:
        text = _wait_serving(process, out)
        web = re.search(r"demo relying party: (http://127\.0\.0\.1:\d+)", text)
        home = urllib.request.urlopen(web.group(1) + "/", timeout=10).read().decode() if web else ""
    finally:
        code = _ctrl_c(process)
    assert re.search(r"enrolled demo-user-[0-9a-f]{6}: \d+ samples", text)
    assert "Sign up" in home  # the web demo serves beside the stack
    assert re.search(r"genuine user: challenge \d{6,10} -> ACCEPT", text)  # a decoy step-up may lengthen it
    assert re.search(r"impostor \(right digits, another hand\): challenge \d{6,10} -> REJECT \(WRITER_MISMATCH\)", text)
    assert "signature by the signer: ACCEPT (ACCEPTED)" in text
    assert "signature by a skilled forger: REJECT (WRITER_MISMATCH)" in text
    assert code == 0
    assert not (tmp_path / "run" / "stack.json").exists()


def test_make_run_without_data_serves_and_says_how_to_get_the_demo(tmp_path):
    no_data = tmp_path / "no-data"
    no_data.mkdir()
    process, out = _make_run(tmp_path, HWOTP_DATA_DIR=str(no_data))
    try:
        text = _wait_serving(process, out)
        state = json.loads((tmp_path / "run" / "stack.json").read_text())
        wait_serving(state["addresses"]["gateway"], timeout=10)
    finally:
        code = _ctrl_c(process)
    assert f"no demo: data directory {no_data} lacks" in text
    assert "make data" in text
    assert "Traceback" not in text
    assert code == 0


def test_a_second_up_is_refused_and_down_stops_the_first(tmp_path):
    env = _environment(tmp_path)
    assert _stack_command("up", env).returncode == 0
    try:
        pids = json.loads((tmp_path / "run" / "stack.json").read_text())["pids"]
        second = _stack_command("up", env)
        assert second.returncode != 0
        assert "hwotp is already up" in second.stderr and "make down" in second.stderr
        assert json.loads((tmp_path / "run" / "stack.json").read_text())["pids"] == pids
    finally:
        down = _stack_command("down", env)
    assert down.returncode == 0
    assert all(f"stopped {name} (pid {pid})" in down.stdout for name, pid in pids.items())
    for pid in pids.values():
        _wait_gone(pid)


def test_down_leaves_alone_a_pid_that_now_runs_another_program(tmp_path):
    env = _environment(tmp_path)
    (tmp_path / "run").mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "run" / "stack.json").write_text(json.dumps({"pids": {"gateway": other.pid}}))
        down = _stack_command("down", env)
        assert down.returncode == 0
        assert "stopped" not in down.stdout
        assert other.poll() is None
        assert _stack_command("up", env).returncode == 0  # a stale stack.json does not block a new stack
    finally:
        other.kill()
        _stack_command("down", env)


@pytest.mark.parametrize("detach", [False, True])
def test_a_stack_that_fails_to_start_leaves_no_process_behind(tmp_path, detach):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = _environment(tmp_path, HWOTP_GATEWAY_PORT=str(taken.getsockname()[1]))
        stack = Stack(tmp_path / "run", env=env, fixed_ports=True, detach=detach)
        try:
            with pytest.raises(RuntimeError, match="gateway did not start"):
                stack.start()
            started = [service.process for service in stack.services.values()] + [stack.redis.process]
            assert len(started) == 5
            assert all(process.poll() is not None for process in started)
        finally:
            stack.stop()  # should this test fail, what it started must not outlive it


def _wait_gone(pid: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        assert time.monotonic() < deadline, f"pid {pid} still runs {timeout} s after make down"
        time.sleep(0.1)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"
