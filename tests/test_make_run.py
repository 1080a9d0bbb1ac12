"""`make run` (python -m local.stack run), the README's first command, run as a user runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from local.stack import REPO, SERVICES, wait_serving


def _make_run(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, Path]:
    """Start it in a run directory of its own, every port free, so that it cannot meet a `make up` stack."""
    env = {**os.environ, "HWOTP_RUN_DIR": str(tmp_path / "run"), "HWOTP_CPUS": "", **env}
    for name, _ in SERVICES:
        env[f"HWOTP_{name.upper()}_PORT"] = env[f"HWOTP_{name.upper()}_METRICS_PORT"] = "0"
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
    finally:
        code = _ctrl_c(process)
    assert re.search(r"enrolled demo-user: \d+ samples", text)
    assert re.search(r"genuine user: challenge \d{6} -> ACCEPT", text)
    assert re.search(r"impostor \(right digits, another hand\): challenge \d{6} -> REJECT \(WRITER_MISMATCH\)", text)
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
