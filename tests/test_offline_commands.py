"""The offline commands (make train, make evaluate, make bench, make loadtest) without the data:
each stops before any work with the reason and what to do, writes nothing, and shows no traceback."""

from __future__ import annotations

import os

import pytest

from tests.commands import run_module

pytestmark = pytest.mark.integration  # starts processes

# Every output goes under OUT, so that a command that wrongly ran on would show there.
COMMANDS = {
    "train recognizer": ["training.train_recognizer", "--onnx", "OUT/recognizer.onnx"],
    "train verifier": ["training.train_verifier", "--onnx", "OUT/verifier.onnx"],
    "calibrate": ["training.calibrate", "--models", "OUT/models"],
    "evaluate": ["training.evaluate", "--writers", "test", "--out", "OUT/eval"],
    "measure replay": ["training.measure_replay", "--out", "OUT/replay.json"],
    "split": ["training.split", "--out", "OUT/split.json"],
    "bench": ["bench.run", "--seconds", "1", "--out", "OUT/result.json", "--markdown", "OUT/BENCHMARKS.md"],
    "loadtest": ["bench.loadgen", "--start-stack", "--duration", "1", "--out", "OUT/loadtest"],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_without_the_data_says_how_to_get_it_and_writes_nothing(tmp_path, name):
    no_data, out = tmp_path / "no-data", tmp_path / "out"
    no_data.mkdir()
    out.mkdir()
    module, *args = COMMANDS[name]
    finished = run_module(module, *(a.replace("OUT", str(out)) for a in args),
                          env={**os.environ, "HWOTP_DATA_DIR": str(no_data)})
    assert finished.returncode == 1, finished.stderr
    assert finished.stderr.startswith(f"error: data directory {no_data} lacks train-images-idx3-ubyte.gz")
    assert "make data" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert list(out.iterdir()) == []


STROKE_COMMANDS = {
    "convert UNIPEN": ["training.unipen", "--archive", "OUT/missing.tar.xz", "--out", "OUT/set.jsonl"],
    "calibrate strokes": ["training.calibrate_strokes", "--strokes", "OUT/missing.jsonl", "--models", "OUT/models"],
    "evaluate strokes": ["training.evaluate", "--strokes", "OUT/missing.jsonl", "--out", "OUT/eval"],
    "train online": ["training.train_online", "--strokes", "OUT/missing.jsonl", "--onnx", "OUT/online.onnx"],
    "calibrate online": ["training.calibrate_online", "--strokes", "OUT/missing.jsonl", "--models", "OUT/models"],
    "train online recognizer": ["training.train_online_recognizer", "--strokes", "OUT/missing.jsonl",
                                "--models", "OUT/models"],
    "scoring study": ["training.compare_enrolled_scoring", "--strokes", "OUT/missing.jsonl"],
}


@pytest.mark.parametrize("name", STROKE_COMMANDS)
def test_a_stroke_command_without_its_data_says_where_to_get_it_and_writes_nothing(tmp_path, name):
    module, *args = STROKE_COMMANDS[name]
    finished = run_module(module, *(a.replace("OUT", str(tmp_path)) for a in args))
    assert finished.returncode == 1 and "Traceback" not in finished.stderr, finished.stderr
    assert "zenodo" in finished.stderr.lower() or "make data" in finished.stderr
    assert list(tmp_path.iterdir()) == []


def test_signature_evaluation_without_its_data_says_where_to_get_it_and_writes_nothing(tmp_path):
    finished = run_module("training.evaluate_signatures", "--data", str(tmp_path / "missing.zip"),
                          "--out", str(tmp_path / "out"))
    assert finished.returncode == 1 and "Traceback" not in finished.stderr, finished.stderr
    assert "SVC2004" in finished.stderr and "--data" in finished.stderr
    assert list(tmp_path.iterdir()) == []
