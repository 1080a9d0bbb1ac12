"""BENCHMARKS.md as the benchmark writes it from its figures (no servers)."""

from __future__ import annotations

from bench.run import write_markdown


def test_report_states_the_figures_and_the_ceiling_the_cpu_per_login_allows(tmp_path):
    result = {
        "machine": {"cores": 2, "cpu": "Test CPU", "python": "3.11"}, "ink": "strokes",
        "online_verifier": True, "online_recognizer": True,
        "cpu_ms_per_login_outside_models": 15.0, "challenge_length": 6, "model_only_auth_per_s": 400.0, "e2e_auth_per_s": 90.0,
        "e2e_best_concurrency": 8, "ratio": 0.225, "p50_ms_at_half": 20.0, "p99_ms_at_half": 80.0,
        "p50_ms_at_max": 70.0, "p99_ms_at_max": 150.0, "errors": 0, "seconds_per_run": 20.0, "users": 16,
        "sweep": {"8": {"auth_per_s": 90.0, "p99_ms": 150.0}},
        "cpu_ms_per_login_at_max": {"gateway": 8.0, "verifier": 7.0, "redis": 5.0},
        "service_cpus": {"gateway": "0"}, "bare_rpc_cpu_ms": 0.3,
        "per_call_ms_at_half": {"SubmitChallenge": {"p50_ms": 15.0, "p99_ms": 60.0}},
        "late_ms_at_half": {"p50_ms": 1.0, "p99_ms": 6.0},
    }
    path = tmp_path / "BENCHMARKS.md"
    write_markdown(result, "make bench", path)
    text = path.read_text()
    assert "| ratio end to end / model only | 0.225 |" in text
    assert "| errors (non-OK status codes) | 0 |" in text
    assert "recognizer + verifier + online verifier + online recognizer inference" in text
    assert "boxes written as strokes" in text
    assert "minus the model-only CPU per authentication) | 15.0 ms |" in text
    assert "after its scheduled arrival (counted in the login), p50 / p99 | 1.0 / 6.0 ms |" in text
    # 20 ms of CPU per login on 2 cores: at most 100 logins/s, a quarter of 400.
    assert "spend 20.0 ms per login" in text and "allows 100 logins/s, a ratio of 0.25" in text
