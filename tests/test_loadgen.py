"""The load generator against the real stack: bounded, loopback only, JSON and plot written."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from itertools import islice

import pytest

from bench.loadgen import (
    Handwriting,
    LoadGenerator,
    Record,
    arrival_gaps,
    plot,
    require_loopback,
    summarise,
)
from tests.commands import run_module

pytestmark = pytest.mark.integration


def _loadgen(*arguments: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "HWOTP_API_KEY"} | env
    return run_module("bench.loadgen", *arguments, env=environment)


def test_bounded_closed_and_open_loop_runs(stack, tmp_path):
    generator = LoadGenerator(stack.gateway, stack.api_key, Handwriting(4), users=4, impostors=0.5)
    closed = asyncio.run(generator.run(4, None, None, count=24))
    assert closed["logins"] >= 24 and closed["errors"] == 0
    decided = sum(closed["decisions"]["genuine"].values()) + sum(closed["decisions"]["impostor"].values())
    assert decided == closed["logins"]
    assert closed["latency"]["SubmitChallenge"]["count"] == closed["logins"]
    opened = asyncio.run(generator.run(None, 20.0, 1.5, None, enrol=False))
    assert opened["errors"] == 0 and 10 <= opened["logins"] <= 60
    assert opened["latency"]["late"]["count"] == opened["logins"]
    plot(closed, tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").stat().st_size > 1000


@pytest.mark.parametrize("target", ["10.1.2.3:50051", "8.8.8.8:443"])
def test_only_loopback_targets(target):
    with pytest.raises(SystemExit, match="only loopback"):
        require_loopback(target)


def test_loopback_targets_pass():
    require_loopback("127.0.0.1:50051")
    require_loopback("localhost:50051")


def test_open_loop_arrivals_repeat_for_a_seed_at_the_asked_rate():
    first, again, other = (list(islice(arrival_gaps(40.0, seed), 20000)) for seed in (1, 1, 2))
    assert first == again
    assert first != other
    assert sum(first) / len(first) == pytest.approx(1 / 40.0, rel=0.03)


def test_a_login_counts_from_its_scheduled_arrival():
    sent_late = Record(0.0, latency={"BeginChallenge": 0.005, "SubmitChallenge": 0.020}, late=0.010)
    on_time = Record(0.5, latency={"BeginChallenge": 0.005, "SubmitChallenge": 0.020})
    result = summarise([sent_late, on_time], 1.0, {})
    assert result["latency"]["login"]["max_ms"] == pytest.approx(35.0)
    assert result["latency"]["login"]["mean_ms"] == pytest.approx(30.0)
    assert result["latency"]["late"]["max_ms"] == pytest.approx(10.0)
    assert result["latency"]["SubmitChallenge"]["max_ms"] == pytest.approx(20.0)


def test_without_a_key_or_a_local_stack_it_says_what_to_do(tmp_path):
    run = _loadgen("--count", "1", HWOTP_RUN_DIR=str(tmp_path))
    assert run.returncode == 2
    assert "no API key for 127.0.0.1:50051" in run.stderr and "make up" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_refused_enrolment_stops_the_run_with_its_reason(stack, tmp_path):
    run = _loadgen("--target", stack.gateway, "--api-key", "not-a-registered-key", "--users", "2", "--count", "1",
                   "--out", str(tmp_path))
    assert run.returncode == 1
    assert re.search(rf"enrolling loadtest-[0-9a-f]{{6}}-user-0 at {stack.gateway} failed: UNAUTHENTICATED", run.stderr)
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "result.json").exists()
