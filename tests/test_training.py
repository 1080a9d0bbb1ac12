"""The training and evaluation commands, end to end on a slice of real writers (minutes, not hours)."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hwotp import signature, trajectory
from hwotp.models import IMAGE_ONLINE, STROKES, ModelBundle
from hwotp.onnx_model import OnnxModel, sha256_of
from training import quantize, strokes, unipen
from training.evaluate_signatures import default_data
from tests.commands import run_module
from tests.data_slice import write_slice

pytestmark = pytest.mark.integration  # starts processes


@pytest.fixture(scope="module")
def slice_dir(tmp_path_factory):
    return write_slice(tmp_path_factory.mktemp("slice"), {"train": 4, "val": 3, "test": 5})


def _run(*args: str) -> subprocess.CompletedProcess:
    result = run_module(*args, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.mark.parametrize("command", [
    ["training.train_recognizer"],
    ["training.train_verifier", "--method", "cosface"],
    ["training.train_verifier", "--method", "contrastive"],
])
def test_tiny_training_run_exports_a_loadable_model(slice_dir, tmp_path, command):
    onnx = tmp_path / "model.onnx"
    result = _run(*command, "--data", str(slice_dir), "--epochs", "1", "--onnx", str(onnx))
    assert "epoch 1:" in result.stdout
    model = OnnxModel(onnx)
    out = model(np.zeros((3, 1, 28, 28), dtype="float32"))
    assert out.shape[0] == 3 and out.shape[1] in (10, 128)


def test_evaluate_writes_a_well_formed_report(slice_dir, tmp_path):
    _run("training.evaluate", "--data", str(slice_dir), "--out", str(tmp_path), "--lengths", "1,4,6")
    report = json.loads((tmp_path / "report.json").read_text())
    assert (tmp_path / "det.png").stat().st_size > 1000
    assert 0.9 <= report["recognition"]["accuracy"] <= 1.0
    assert set(report["recognition"]["per_series"]) <= {"census_employees", "high_school_students"}
    verification = report["verification"]
    assert verification["enrolled_per_digit"] == 3
    assert verification["writers_enrolled"] + verification["writers_skipped"] == 12
    for length in ("1", "4", "6"):
        figures = verification["lengths"][length]
        assert 0 <= figures["eer"] <= 0.5
        assert figures["genuine_attempts"] > 0 and figures["impostor_attempts"] > 0
        assert {"far_at_frr_5pct", "frr_at_far_1pct"} <= set(figures)
    assert {"frr", "far", "lockout_window", "step_up"} <= set(report["system"])
    lockout = report["system"]["lockout_window"]
    for figures in (lockout, lockout["without_active_defence"]):
        assert 0 <= figures["accepted_within_5"] <= figures["accepted_within_50"] <= 1


def test_a_session_id_names_its_writer():
    assert unipen.writer_name("ibm", "r02-04") == unipen.writer_name("ibm", "r04-04") == "ibm/04"
    assert unipen.writer_name("ibm", "notes") == "ibm/notes"  # not a session id: kept as it is
    assert unipen.writer_name("apb", "r02-04") == "apb/r02-04"  # other labs' ids name writers


def test_the_same_ink_twice_is_one_sample_and_ink_under_two_writers_none():
    def sample(writer, digit, offset):
        return strokes.StrokeSample(writer, digit, [np.array([[0, 0], [offset, 9]], dtype=np.float32)])

    read = [sample("a", 1, 1), sample("a", 1, 1), sample("a", 7, 1), sample("a", 1, 2),
            sample("b", 3, 5), sample("c", 3, 5), sample("c", 3, 6)]
    kept = unipen.distinct(read)
    assert [(s.writer, s.digit, float(s.strokes[0][1, 0])) for s in kept] == [
        ("a", 1, 1.0), ("a", 7, 1.0), ("a", 1, 2.0), ("c", 3, 6.0)]


def test_every_stroke_set_writer_is_in_one_part_of_the_split(stroke_samples):
    parts = strokes.load_split()
    part_of = {}
    for part, names in parts.items():
        for name in names:
            assert name not in part_of, f"{name} is in both {part_of[name]} and {part}"
            part_of[name] = part
    writers = {sample.writer for sample in stroke_samples}
    assert writers <= set(part_of)
    assert len({name for name in writers if name.startswith("ibm/")}) == 12  # as include/ibm/ibm0.doc counts


@pytest.fixture(scope="module")
def stroke_slice(stroke_samples, tmp_path_factory):
    """A few writers of each part of models/unipen-split.json, as a stroke-set file."""
    chosen = []
    for part, count in (("train", 6), ("val", 3), ("test", 4)):
        names = sorted(strokes.load_split()[part])[:count]
        chosen += [s for s in strokes.samples_of(stroke_samples, part) if s.writer in names]
    path = tmp_path_factory.mktemp("strokes") / "slice.jsonl"
    strokes.write_stroke_set(chosen, path)
    return path


def test_tiny_online_training_run_exports_a_path_embedder(stroke_slice, tmp_path):
    onnx = tmp_path / "online.onnx"
    result = _run("training.train_online", "--strokes", str(stroke_slice), "--epochs", "1", "--members", "conv,recurrent",
                  "--onnx", str(onnx))
    assert result.stdout.count("epoch 1: validation one-digit EER") == 2  # each member trained
    out = OnnxModel(onnx)(np.zeros((3, trajectory.CHANNELS, trajectory.POINTS), dtype="float32"))
    assert out.shape == (3, 2 * 128)  # the two builds' embeddings side by side
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)


def test_tiny_online_recognizer_run_exports_a_path_reader_and_its_weight(stroke_slice, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(ModelBundle.load().directory, models, ignore=shutil.ignore_patterns("torch"))
    result = _run("training.train_online_recognizer", "--strokes", str(stroke_slice), "--epochs", "1",
                  "--models", str(models))
    assert "epoch 1: validation accuracy of the path alone" in result.stdout
    entry = json.loads((models / "models.json").read_text())["online_recognizer"]
    assert entry["sha256"] == sha256_of(models / entry["file"])
    searched = {row["path_weight"]: row["val_accuracy"] for row in entry["validation"]["path_weight_search"]}
    assert entry["path_weight"] in searched and searched[entry["path_weight"]] == max(searched.values())
    assert ModelBundle.load(models).online_recognizer(
        np.zeros((3, trajectory.CHANNELS, trajectory.POINTS), dtype="float32")).shape == (3, 10)


def test_the_scoring_study_compares_template_and_nearest_sample_scoring(stroke_slice):
    result = _run("training.compare_enrolled_scoring", "--strokes", str(stroke_slice), "--enroll", "1",
                  "--lengths", "1,4")
    rows = {line[:38].strip(): line[38:].split() for line in result.stdout.splitlines()[1:]}
    assert list(rows) == ["template, deployed scoring", "nearest sample, raw cosine",
                          "nearest sample, cohort-normalised", "two nearest samples, raw cosine"]
    assert all(len(eers) == 2 and all(e.endswith("%") for e in eers) for eers in rows.values())
    # one enrolled sample: the nearest one is the only one
    assert rows["two nearest samples, raw cosine"] == rows["nearest sample, raw cosine"]


def test_strokes_evaluation_reports_each_modality_and_the_dtw_baseline(stroke_slice, tmp_path):
    _run("training.evaluate", "--strokes", str(stroke_slice), "--writers", "test", "--enroll", "1",
         "--lengths", "1,4", "--out", str(tmp_path))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["domain"] == "strokes" and report["modalities"] == "image+online"
    assert {"accuracy", "image_alone", "path_alone"} <= set(report["recognition"])  # the two readings, and each
    assert (tmp_path / "det.png").stat().st_size > 1000
    for length in ("1", "4"):
        figures = report["verification"]["lengths"][length]
        assert set(figures["eer_by_modality"]) == {"image", "online"}
        assert all(0 <= v <= 0.6 for v in [figures["eer"], figures["eer_dtw_baseline"],
                                           *figures["eer_by_modality"].values()])
    assert report["system"]["modalities"] == "image+online" and report["system"]["policy"] == "fused_mean"


def test_signature_evaluation_fits_on_some_users_and_reports_on_the_others(tmp_path):
    out = tmp_path / "signatures"
    _run("training.evaluate_signatures", "--fit-users", "1-2", "--users", "3-5", "--draws", "1", "--out", str(out),
         "--save", str(tmp_path))
    report = json.loads((out / "report.json").read_text())
    assert report["users"] == [3, 4, 5] and report["fit_users"] == [1, 2] and report["references"] == 5
    assert 0 <= report["skilled"]["eer"] <= 0.6 and 0 <= report["random"]["eer"] <= 0.6
    assert report["skilled"]["forgeries"] == 3 * 20 and report["random"]["forgeries"] == 3 * 2
    saved = signature.SignatureModel.load(tmp_path)  # what the verifier service would load
    assert list(saved.weights) == report["verifier"]["weights"] and saved.threshold == report["verifier"]["threshold"]
    assert saved.weights[0] < 0  # the shape distance: the larger, the less likely the enrolled user
    assert (out / "det.png").stat().st_size > 1000
    folded = tmp_path / "folds"
    _run("training.evaluate_signatures", "--folds", "3", "--draws", "1", "--out", str(folded))
    report = json.loads((folded / "report.json").read_text())
    assert report["users"] == list(range(1, 31)) and [f["users"] for f in report["folds"]] == \
        [list(range(1, 11)), list(range(11, 21)), list(range(21, 31))]
    assert report["skilled"]["genuine"] == 30 * 10 and 0 <= report["skilled"]["eer"] <= 0.6
    overlapping = run_module("training.evaluate_signatures", "--fit-users", "1-3", "--users", "3-5",
                             "--out", str(tmp_path / "x"))
    assert overlapping.returncode == 1 and "overlap" in overlapping.stderr and "Traceback" not in overlapping.stderr


def test_signature_evaluation_leaves_out_what_cannot_be_signed_and_says_so(tmp_path):
    """Any SVC2004-format folder: a file without a pen-down point and a user missing a file are
    left out, named in the report and on the console, and the others evaluated."""
    folder = tmp_path / "svc" / "Task2"  # as the archive unpacks: in a subfolder
    folder.mkdir(parents=True)
    with zipfile.ZipFile(default_data()) as archive:
        for name in archive.namelist():
            if re.search(r"U[2-5]S\d+\.TXT$", name):
                (folder / Path(name).name).write_bytes(archive.read(name))
    (folder / "U3S7.TXT").unlink()
    count, *rows = (folder / "U4S2.TXT").read_text().split("\n")
    pen_up = [" ".join(v if i != 3 else "0" for i, v in enumerate(row.split())) for row in rows if row.strip()]
    (folder / "U4S2.TXT").write_text("\n".join([count, *pen_up]) + "\n")
    finished = run_module("training.evaluate_signatures", "--data", str(folder.parent), "--draws", "1",
                          "--out", str(tmp_path / "out"))
    assert finished.returncode == 0, finished.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["users"] == [2, 5] and report["left_out"]["users"] == [3, 4]
    assert "U4S2" in report["left_out"]["signatures"] and "U4S2 left out" in finished.stdout
    empty = run_module("training.evaluate_signatures", "--data", str(tmp_path / "out"), "--out", str(tmp_path / "x"))
    assert empty.returncode == 1 and "no U{u}S{s}.TXT signatures" in empty.stderr and "Traceback" not in empty.stderr


def test_strokes_and_online_calibration_write_what_the_services_load(stroke_slice, tmp_path):
    """calibrate_strokes then calibrate_online on a copy of the committed models: the strokes
    domain and the online verifier's calibration are rewritten from the slice's writers and load."""
    models = tmp_path / "models"
    shutil.copytree(ModelBundle.load().directory, models, ignore=shutil.ignore_patterns("torch"))
    meta = json.loads((models / "models.json").read_text())
    meta["online_verifier"]["version"] = "online-verifier-2000-01-01"  # an earlier day's calibration of this file
    (models / "models.json").write_text(json.dumps(meta))
    _run("training.calibrate_strokes", "--strokes", str(stroke_slice), "--models", str(models))
    result = _run("training.calibrate_online", "--strokes", str(stroke_slice), "--models", str(models))
    assert "image weight" in result.stdout
    bundle = ModelBundle.load(models)
    assert bundle.online_version == "online-verifier-2000-01-01"  # the same file: users' templates stay valid
    assert bundle.has_online and bundle.image_weight() in (0.25, 0.5, 1.0)
    config, _ = bundle.online_scoring()
    assert config.digit_slope is not None and len(config.digit_slope) == 10
    assert all(np.isfinite(bundle.threshold("fused_mean", n, domain=STROKES, modalities=IMAGE_ONLINE))
               for n in range(1, 11))
    # fitted on the slice, not copied: the calibration differs from the committed one
    assert bundle.meta["domains"]["strokes"]["online"]["cohort"]["writers"] != \
        ModelBundle.load().meta["domains"]["strokes"]["online"]["cohort"]["writers"]


def test_a_new_online_model_file_gets_a_new_version_even_on_the_same_day():
    from training.calibrate_online import online_version

    day = datetime.date(2026, 12, 1)
    earlier = {"sha256": "ab" * 32, "version": "online-verifier-2026-12-01"}
    assert online_version(earlier, "ab" * 32, day) == "online-verifier-2026-12-01"
    assert online_version(earlier, "cd" * 32, day) not in (earlier["version"], online_version(earlier, "ef" * 32, day))


def test_quantize_turns_a_float_model_to_int8_and_renames_the_entry_that_describes_it(slice_dir, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(ModelBundle.load().directory, models, ignore=shutil.ignore_patterns("torch"))
    shutil.copy(models / "baseline-verifier.onnx", models / "verifier.onnx")  # a float model in the served place
    meta = json.loads((models / "models.json").read_text())
    meta["verifier"].update(sha256=sha256_of(models / "verifier.onnx"), version="verifier-float")
    (models / "models.json").write_text(json.dumps(meta))
    result = _run("training.quantize", "--data", str(slice_dir), "--models", str(models))
    assert "recognizer: already int8" in result.stdout and "verifier: quantised to int8" in result.stdout
    assert quantize.is_quantized(models / "verifier.onnx")
    entry = json.loads((models / "models.json").read_text())["verifier"]
    assert entry["version"] == "verifier-float-int8" and entry["sha256"] == sha256_of(models / "verifier.onnx")
    float_out = OnnxModel(models / "baseline-verifier.onnx")(np.full((2, 1, 28, 28), 0.5, dtype="float32"))
    int8_out = OnnxModel(models / "verifier.onnx")(np.full((2, 1, 28, 28), 0.5, dtype="float32"))
    assert (float_out * int8_out).sum(axis=1).min() > 0.9  # the same model, nearly the same output
