"""Faults under load on a real 6-node Redis Cluster (bench.faults, shortened): a primary killed,
the verifier killed and restarted, every Redis node restarted; no attack accepted, no
challenge redeemed twice, no acknowledged enrolment lost, and logins accepted again after each."""

from __future__ import annotations

import pytest

from bench.faults import FAULTS, run_faults

pytestmark = pytest.mark.integration  # starts processes


def test_faults_under_load_accept_no_attack_redeem_nothing_twice_and_lose_no_enrolment():
    report = run_faults(seconds=2, users=4, threads=2)
    assert set(report["faults"]) == set(FAULTS)
    for fault, figures in report["faults"].items():
        assert figures["seconds_to_recover"] is not None, f"logins never came back after {fault}"
        assert figures["false_accepts"] == 0 and figures["double_redemptions"] == 0, fault
    assert min(report["calls"][kind] for kind in ("impostor", "attack", "again")) > 0 and report["genuine_accepted"] > 0
    assert report["false_accepts"] == 0
    assert report["double_redemptions"] == 0
    assert report["acknowledged_enrolments"] > 0 and report["enrolments_lost"] == 0
