"""Write models/MODEL_CARD.md from models.json and the training logs (the last step of `make train`).

python -m training.model_card
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from hwotp.config import ChallengeSettings, VerifierSettings
from hwotp.models import META_FILE, models_dir
from training import calibrate, split

PAPER = {"recognition": 0.9858, "eer": {"1": 0.19, "4": 0.07, "6": 0.06, "8": 0.05}}
LENGTHS = ("1", "4", "6", "8")


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _span(interval: list[float]) -> str:
    return f"{100 * interval[0]:.2f}-{100 * interval[1]:.2f}"


def _eer(figures: dict) -> str:
    """The EER with its writer-bootstrap interval (training.protocol.eer_interval) when reported."""
    interval = figures.get("eer_90pct_writer_interval")
    return _pct(figures.get("eer")) + (f" ({_span(interval)})" if interval else "")


def _far(system: dict) -> str:
    """The deployed FAR with its writer-bootstrap interval (training.protocol.far_interval) when reported."""
    interval = system.get("far_90pct_writer_interval")
    return _pct(system.get("far")) + (f" (another draw of as many writers: {_span(interval)}%)" if interval else "")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _note(entry: dict) -> str:
    note = entry.get("validation", {}).get("note")
    return f"Recognizer: {note}.\n\n" if note else ""


def _strokes_rows(lengths: dict) -> str:
    def by(d: dict, kind: str):
        return d.get("eer_by_modality", {}).get(kind)

    return "\n".join(f"| {n} | {_eer(d)} | {_pct(by(d, 'image'))} | {_pct(by(d, 'online'))} | "
                     f"{_pct(d.get('eer_dtw_baseline'))} | {_pct(d.get('frr_at_far_1pct'))} | "
                     f"{_pct(d.get('frr_at_far_0.1pct'))} | {d.get('genuine_attempts')} / {d.get('impostor_attempts')} |"
                     for n, d in sorted(lengths.items(), key=lambda kv: int(kv[0])))


def _readings(meta: dict, recognition: dict) -> str:
    """How the strokes were read: the picture and the path (the online recognizer), and each alone."""
    if "path_alone" not in recognition:
        return ""
    entry = meta["online_recognizer"]
    return (f", read from the picture and the pen's path together (`{entry['file']}`, {entry['version']}, a "
            f"1-D CNN of the online verifier's build trained on the training writers' digits by `python -m "
            f"training.train_online_recognizer`; its log-probabilities weighted {entry['path_weight']} beside the "
            f"picture's, as chosen on validation writers: `hwotp.recognition`); the picture alone "
            f"{_pct(recognition['image_alone'])}, the path alone {_pct(recognition['path_alone'])}")


def _strokes_section(meta: dict, online_log: dict) -> str:
    """Touchscreen strokes (UNIPEN test writers as the server receives them), when evaluated."""
    figures = meta["figures"].get("deployed/test/strokes")
    if not figures:
        return ""
    system = figures.get("system", {})
    more = meta["figures"].get("deployed/test/strokes/enrol3")
    enrol3 = "" if not more else f"""
With {more['verification']['enrolled_per_digit']} enrolled samples per digit (`--enroll 3`; only
{more['verification']['writers_enrolled']} test writers have three samples of every digit to enrol; their
further samples are the probes), scored by the
calibration fitted on validation writers enrolled as deep (models.json `depths`; the
verifier picks the deepest calibration a user's enrolment reaches):

| digits | EER (fused) | image alone | path alone | DTW baseline | FRR at FAR 1% | FRR at FAR 0.1% | genuine / impostor attempts |
|---|---|---|---|---|---|---|---|
{_strokes_rows(more['verification']['lengths'])}

At the deployed default: FRR {_pct(more.get('system', {}).get('frr'))}, FAR {_far(more.get('system', {}))}.
"""
    online = meta.get("online_verifier")
    scoring = meta["domains"]["strokes"].get("online", {})
    members = [(entry.get("kind", "conv"), entry["seed"]) for entry in online_log.get("history", []) if "seed" in entry]
    recurrent = "" if all(kind == "conv" for kind, _ in members) else """; a recurrent
member a conv 1-D (64 channels) and a 2-layer bidirectional GRU (96 per
direction), its outputs' mean and maximum over the path, FC 128, unit length"""
    model = "" if not online else f"""
The online verifier (`{online['file']}`, {online['version']}) embeds the pen's path:
`hwotp.trajectory.path_features` joins a box's strokes in writing order, the
pen-up jumps included, scales them by the bounding box's longer side and
resamples them to 64 points evenly spaced along the path; each point carries
x, y, the direction of travel (cos, sin), the turning since the last point
(cos, sin), a pen-up flag and the pen's speed there relative to its mean speed
over the digit (log, clipped to ±3; 0 in the air). It sees the path's shape,
order, direction and where the hand hurries or slows. UNIPEN records no
timestamps, but its tablets sample at a steady rate while the pen moves, so
the spacing of the points gives relative speed; a touchscreen's t_ms gives it
when the client sends a clock. It does not see pressure, absolute speed or the
time the pen spends in the air (none of them would transfer from the tablets).
Network: an ensemble of {len(members)} members trained from seeds {', '.join(f"{seed} ({kind})" for kind, seed in members)},
their unit-length embeddings side by side and scaled to unit length (a cosine
is the mean of the members'); a conv member is 5 conv 1-D (96-192 channels,
batch norm, pool after the 2nd and 4th), FC 128, unit length{recurrent}; each learns with CosFace
over UNIPEN training writer x digit classes + 0.5 x over writers; each epoch sees every
path under a fresh small rotation (±8°), shear (±0.12), aspect change (±10%)
and point thinning, for the whole one-cycle schedule, keeping the last
weights (`python -m training.train_online`). Its scores are
normalised against a cohort of training writers, calibrated per digit into a
log-likelihood ratio on the validation writers, and a box's score is
{scoring.get('image_weight', '—')} x the image's ratio + the path's
(`python -m training.calibrate_online`; the weight chosen on validation writers).
"""
    return f"""
## Touchscreen strokes

UNIPEN 1a test writers of `models/unipen-split.json`, as the server receives
them: rendered by `hwotp.ink` for the recognizer and the image verifier (in its
strokes domain), and their pen paths for the online recognizer and verifier, with
{figures['verification']['enrolled_per_digit']} enrolled sample per digit
(`python -m training.evaluate --strokes build/unipen-1a.jsonl --writers test --enroll 1`).
Digit recognition: **{_pct(figures['recognition']['accuracy'])}** on {figures['recognition']['digits']} digits{_readings(meta, figures['recognition'])}.
{model}
| digits | EER (fused, deployed) | image alone | path alone | DTW baseline | FRR at FAR 1% | FRR at FAR 0.1% | genuine / impostor attempts |
|---|---|---|---|---|---|---|---|
{_strokes_rows(figures['verification']['lengths'])}
{enrol3}
The deployed decision at {system.get('length')} digits ({system.get('policy')}, target FAR {_pct(system.get('target_far'))}):
FRR {_pct(system.get('frr'))}, FAR {_far(system)}.
"""


def render(meta: dict, logs: dict[str, dict], split_doc: dict) -> str:
    deployed = meta["figures"].get("deployed/test", {})
    baseline = meta["figures"].get("baseline/test", {})
    lengths_d = deployed.get("verification", {}).get("lengths", {})
    lengths_b = baseline.get("verification", {}).get("lengths", {})
    rows = []
    for n in LENGTHS:
        d, b = lengths_d.get(n, {}), lengths_b.get(n, {})
        rows.append(f"| {n} | {_pct(PAPER['eer'][n])} | {_pct(b.get('eer'))} | {_eer(d)} "
                    f"| {_pct(d.get('eer_all_pass'))} | {_pct(d.get('far_at_frr_5pct'))} | {_pct(d.get('frr_at_far_1pct'))} "
                    f"| {d.get('genuine_attempts', '—')} / {d.get('impostor_attempts', '—')} |")
    decision = meta["decision"]
    system = deployed.get("system", {})
    system_rows = "\n".join(
        f"| {_pct(float(far))} | {policy}{' (deployed)' if policy == VerifierSettings().writer_policy and float(far) == decision['target_far'] else ''} "
        f"| {_pct(row.get('frr'))} | {_pct(row.get('far'))} |"
        for far, by_policy in sorted(system.get("by_target_far", {}).items(), key=lambda kv: -float(kv[0]))
        for policy, row in by_policy.items())
    recognition = deployed.get("recognition", {})
    per_series = recognition.get("per_series", {})
    strokes = _strokes_section(meta, logs.get("online-verifier", {}))
    scoring = meta["verifier"]["scoring"]
    minutes = {name: log.get("minutes") for name, log in logs.items()}
    epochs = {name: " + ".join(str(len(h["epochs"])) for h in log["history"] if "epochs" in h)
              or len(log.get("history", [])) for name, log in logs.items()}
    counts = split_doc["counts"]
    return f"""# hwotp models

Generated by `python -m training.model_card` from `models.json` and
`models/torch/*.json`; every figure comes from the commands named here.

## Data and split

Writer-labelled MNIST digits (`../shared/data/mnist-writers`: MNIST training
images + QMNIST writer labels, 439 NIST writers, both series). Writers are split
disjointly, stratified by series, with seed {split_doc['seed']}
(`models/split.json`): {counts['train']} training, {counts['val']} validation,
{counts['test']} test writers. Training uses the training writers only; early
stopping, the scoring choice and every threshold use the validation writers
only; the test writers are read only by `training.evaluate`.

## Models

| | recognizer (`recognizer.onnx`) | verifier (`verifier.onnx`, kept) | baseline verifier (`baseline-verifier.onnx`) |
|---|---|---|---|
| version | {meta['recognizer']['version']} | {meta['verifier']['version']} | {meta['baseline_verifier']['version']} |
| network | ensemble of 2 (seeds 1, 2; mean probability) of: 4 conv 3x3 (32, 32, 64, 64; batch norm; 2x2 max pool after every second), FC 256 + dropout 0.4, FC 10 | 6 conv 3x3 (32-128, batch norm, pool after 2nd and 4th), FC 128, unit length | same as the kept verifier |
| loss | cross-entropy (label smoothing 0.05) | CosFace (s=30, m=0.35) over training writer x digit classes + 0.5 x over writers | contrastive (margin 1) on same-digit pairs, half same writer |
| augmentation | affine: rotation ±12°, scale ±12%, shear ±0.2, shift ±2 px (no flips) | milder affine (rotation ±3°, scale ±4%, shift ±1.5 px): slant and size are style | same as the kept verifier |
| scoring | softmax | cosine to the direction of the user's per-digit mean embedding{' + ' + str(scoring['cross_digit_weight']) + ' x other digits' if scoring['cross_digit_weight'] else ''}{', z-normalised against the top ' + str(scoring['cohort_top']) + ' of a ' + str(meta['verifier']['cohort']['writers']) + '-writer cohort of training writers (`cohort.npz`)' if scoring['cohort_top'] else ''}{', then per digit class a linear log-likelihood ratio fitted on the validation writers' if scoring.get('digit_slope') else ''} | — | Euclidean distance to the per-digit mean template |
| epochs run (early stopping) | {epochs.get('recognizer', '—')} | {epochs.get('verifier', '—')} | {epochs.get('baseline-verifier', '—')} |
| training time, 2 CPU cores | {minutes.get('recognizer', '—')} min | {minutes.get('verifier', '—')} min | {minutes.get('baseline-verifier', '—')} min |

{_note(meta["recognizer"])}Input of all three: `(batch, 1, 28, 28)` float32 in [0, 1], the MNIST
normalisation done by `hwotp.preprocess` (shared by training and serving).
The served recognizer and verifier are quantised to int8 after training
(`python -m training.quantize`: onnxruntime static quantisation, per-channel
weights, activation ranges from training writers' digits); cohorts and
thresholds are fitted on the quantised models.
Machine: {_cpu()}.

## Figures on the test writers

`python -m training.evaluate --writers test --out build/eval/test` (and
`--verifier baseline`), 3 enrolled samples per digit, attempts built from real
probes of held-out writers: a genuine attempt is n probes of n distinct digits
by the enrolled writer, an impostor attempt the same digits written by another
test writer. `eer` scores an attempt by the mean of its digits' scores;
`all-pass EER` by its weakest digit (the deployed rule). In parentheses beside
the kept EER: the central 90% of the EERs of 400 draws of as many writers again,
with replacement (`training.protocol.eer_interval`): a writer's attempts are not
independent, and these intervals say how far another set of writers could move
the figure.

Digit recognition: **{_pct(recognition.get('accuracy'))}** on {recognition.get('digits', '—')} test digits
(census employees {_pct(per_series.get('census_employees', {}).get('accuracy'))},
high-school students {_pct(per_series.get('high_school_students', {}).get('accuracy'))}); paper: {_pct(PAPER['recognition'])}.

| digits | paper EER | baseline EER | kept EER | kept all-pass EER | FAR at FRR 5% | FRR at FAR 1% | genuine / impostor attempts |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

## The deployed decision

Policy `{VerifierSettings().writer_policy}`: every digit must be recognised as the challenge
digit, the mean of the boxes' calibrated writer scores must pass the threshold
and no box may score at or below `HWOTP_BOX_FLOOR` ({VerifierSettings().box_floor}); `all_pass`, set by
`HWOTP_WRITER_POLICY`, asks every digit to pass its threshold instead. Thresholds were
chosen on the validation writers for a target FAR per attempt of 1% and of
0.1%, for every length 1-10 (`models.json` → `decision.thresholds`): for each,
the threshold that holds the target on {calibrate.THRESHOLD_CONFIDENCE:.0%} of writer-bootstrap resamples
of those writers (`training.protocol.threshold_holding_far`). The
default is {_pct(decision['target_far'])} (`HWOTP_TARGET_FAR` picks the other). On the
test writers, at the default length {ChallengeSettings().challenge_length}:

| target FAR | policy | FRR (genuine rejected, recognition errors included) | FAR (impostors writing the right digits, accepted) |
|---|---|---|---|
{system_rows}

At the default: FAR {_far(system)}.
{strokes}
## Limits

- Random forgeries only: the impostors write their own natural digits. Skilled
  forgers who imitate a victim's digits were not measured (no such data for digits).
- The image verifier's embedding network was trained on scans only; on strokes it
  runs with a cohort and calibration of their own (below the scans' accuracy),
  and the pen's path carries most of the writer evidence there.
- The online verifier saw no clock and no pressure: its speed channel comes from
  the tablets' steady sampling, and UNIPEN's writers wrote on tablets with a pen,
  not on phones with a finger (whose speed profile may differ); a client whose
  clock stalls or repeats is read by the order of its points.
"""


def main() -> None:
    directory = models_dir()
    meta = json.loads((directory / META_FILE).read_text())
    logs = {p.stem: json.loads(p.read_text()) for p in (directory / "torch").glob("*.json")}
    split_doc = json.loads(split.SPLIT_FILE.read_text())
    (directory / "MODEL_CARD.md").write_text(render(meta, logs, split_doc))
    print(f"wrote {directory / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
