"""Evaluate the committed ONNX models on scans (any data directory of the mnist-writers layout)
or on strokes (any stroke set, training.strokes).

python -m training.evaluate [--data DIR | --strokes FILE] --out OUTDIR [--enroll 3] [--lengths 1,4,6,8]
                            [--writers all|train|val|test] [--verifier deployed|baseline]

With --strokes the digits are rendered as the server renders strokes and
scored in the verifier's "strokes" domain (its own cohort, calibration and
thresholds); --writers then picks a part of models/unipen-split.json. Where
the models include the online verifier, a box's score is then the fused
image+online one the service computes, and each length also reports
`eer_by_modality` (image alone, online alone) and the DTW baseline's EER.

Loads only models/*.onnx and models/models.json (no torch). Writes
OUTDIR/report.json and OUTDIR/det.png. An attempt's score is the mean of its
digits' normalised scores (`eer`, the DET curves); `eer_all_pass` scores it by
its weakest digit, the rule the deployed per-digit all-pass decision uses.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hwotp import config, scoring
from hwotp.models import IMAGE, IMAGE_ONLINE, META_FILE, SCAN, STROKES, ModelBundle, models_dir
from training import data, dtw_baseline, protocol, split, strokes

# What is deployed by default: the verifier's writer policy and the challenge length.
POLICY = config.VerifierSettings().writer_policy
BOX_FLOOR = config.VerifierSettings().box_floor
LENGTH = config.ChallengeSettings().challenge_length

ATTEMPTS_PER_WRITER = 200


def recognition_report(predicted: np.ndarray, digits: data.DigitSet) -> dict:
    correct = predicted == digits.digits
    per_series = {
        {0: "census_employees", 4: "high_school_students", strokes.ONLINE_SERIES: "strokes"}.get(int(s), str(s)): {
            "accuracy": float(correct[digits.series == s].mean()),
            "digits": int((digits.series == s).sum()),
        }
        for s in np.unique(digits.series)
    }
    return {"accuracy": float(correct.mean()), "digits": int(len(correct)), "per_series": per_series}


def verification_scores(bundle: ModelBundle, which: str, digits: data.DigitSet, enroll: int, domain: str = SCAN):
    """Embed every digit and score every probe against every enrolled writer."""
    embedder, config, cohort = bundle.verifier(which, domain, enroll)
    embeddings = embedder(digits.images[:, None])
    enrolment = protocol.enrol(digits.digits, digits.writers, enroll)
    cohort_writers = bundle.cohort_writers(domain) if cohort is not None else None
    scores = protocol.score_matrix(embeddings, enrolment, cohort, config, cohort_writers)
    return enrolment, scores


def online_scores(bundle: ModelBundle, paths: np.ndarray, enrolment: protocol.Enrolment) -> np.ndarray:
    """The online verifier's calibrated scores (P, T), as the service computes them."""
    config, cohort = bundle.online_scoring(enrolment.depth)
    return protocol.score_matrix(bundle.online_verifier(paths), enrolment, cohort, config)


def dtw_scores(paths: np.ndarray, enrolment: protocol.Enrolment, stroke_set: Path) -> np.ndarray:
    """The DTW baseline's normalised scores (P, T), against a cohort of training writers."""
    train = strokes.samples_of(strokes.read_stroke_set(stroke_set), "train")
    names = sorted({s.writer for s in train})
    cohort = protocol.enrol(np.array([s.digit for s in train]), np.array([names.index(s.writer) for s in train]), 1)
    return dtw_baseline.score_matrix(paths, enrolment, strokes.paths_of(train), cohort)


def length_report(attempts: protocol.Attempts) -> dict:
    genuine, impostor = attempts.genuine.mean(axis=1), attempts.impostor.mean(axis=1)
    interval = protocol.eer_interval(genuine, impostor, attempts.genuine_targets, attempts.impostor_targets,
                                     attempts.impostor_writers)
    return {
        "eer": protocol.eer(genuine, impostor),
        "eer_90pct_writer_interval": list(interval),
        "far_at_frr_5pct": protocol.far_at_frr(genuine, impostor, 0.05),
        "frr_at_far_1pct": protocol.frr_at_far(genuine, impostor, 0.01),
        "frr_at_far_0.1pct": protocol.frr_at_far(genuine, impostor, 0.001),
        "eer_all_pass": protocol.eer(attempts.genuine.min(axis=1), attempts.impostor.min(axis=1)),
        "genuine_attempts": int(len(genuine)),
        "impostor_attempts": int(len(impostor)),
        "writers_skipped": attempts.skipped_writers,
    }


def _writer_ok(scores: np.ndarray, policy: str, threshold: float) -> np.ndarray:
    """The writer check on attempts (A, n) as hwotp.scoring.writer_check decides it."""
    if policy == "all_pass":
        return scores.min(axis=1) > threshold
    return (scores.mean(axis=1) > threshold) & (scores.min(axis=1) > BOX_FLOOR)


def system_report(bundle: ModelBundle, attempts: protocol.Attempts, enrolment, predicted, length: int,
                  domain: str = SCAN, modalities: str = IMAGE) -> dict:
    """The deployed decision: every digit recognised AND the writer check, at the stored thresholds
    (frr/far: the default policy and target FAR; the others beside them)."""
    depth = enrolment.depth
    recognised = predicted[enrolment.probe_index] == enrolment.probe_digit
    out = {"length": length, "policy": POLICY, "box_floor": BOX_FLOOR, "modalities": modalities,
           "target_far": bundle.target_far, "by_target_far": {}}
    for far in bundle.target_fars:
        rows = out["by_target_far"][str(far)] = {}
        for policy in ("all_pass", "fused_mean"):
            threshold = bundle.threshold(policy, length, far, domain, modalities, depth)
            genuine_ok = recognised[attempts.genuine_probes].all(axis=1) & _writer_ok(attempts.genuine, policy, threshold)
            impostor_ok = recognised[attempts.impostor_probes].all(axis=1) & _writer_ok(attempts.impostor, policy, threshold)
            rows[policy] = {"frr": float(1 - genuine_ok.mean()), "far": float(impostor_ok.mean()), "threshold": threshold}
            if far == bundle.target_far and policy == POLICY:
                out["far_90pct_writer_interval"] = list(protocol.far_interval(
                    impostor_ok, attempts.impostor_targets, attempts.impostor_writers))
    deployed = out["by_target_far"][str(bundle.target_far)][POLICY]
    out["frr"], out["far"] = deployed["frr"], deployed["far"]
    return out


class AttemptSimulator:
    """Sequences of real attempts by one hand against one enrolment (no independence assumed:
    the same hand retries), under the deployed decision."""

    def __init__(self, bundle: ModelBundle, enrolment, scores, predicted, seed: int, domain: str = SCAN,
                 modalities: str = IMAGE):
        self.rng = np.random.default_rng(seed)
        self.bundle, self.scores, self.domain, self.modalities = bundle, scores, domain, modalities
        self.depth = enrolment.depth
        self.recognised = predicted[enrolment.probe_index] == enrolment.probe_digit
        self.owners = len(enrolment.writers)
        self.probes_of: dict[tuple[int, int], list[int]] = {}
        for position, (owner, digit) in enumerate(zip(enrolment.probe_owner, enrolment.probe_digit)):
            self.probes_of.setdefault((int(owner), int(digit)), []).append(position)

    def digits_of(self, writer: int) -> list[int]:
        return [d for d in range(10) if (writer, d) in self.probes_of]

    def attempt(self, writer: int, victim: int, length: int, margin: float, rng,
                target_far: float | None = None) -> tuple[bool, bool]:
        """One attempt: (accepted, near miss) under the deployed policy (at target_far: at the default)."""
        chosen = rng.choice(self.digits_of(writer), length, replace=False)
        boxes = [rng.choice(self.probes_of[(writer, int(d))]) for d in chosen]
        threshold = self.bundle.threshold(POLICY, length, target_far, domain=self.domain, modalities=self.modalities,
                                          depth=self.depth)
        writer_ok, near_miss = scoring.writer_check(self.scores[boxes, victim], POLICY, threshold, margin, BOX_FLOOR)
        read = bool(self.recognised[boxes].all())
        return read and writer_ok, read and near_miss

    def first_success(self, writer: int, victim: int, attempts: int, length: int, step_up: int, margin: float,
                      seed: int | None = None, throttle_after: int | None = None):
        """Index of the first accepted attempt (None). With step_up > 0 the challenges grow by
        step_up digits after a near miss; given throttle_after, the deployed defence against
        brute force too: the answer whose claim makes throttle_after failures in a row, and
        every one after it, is judged at the strictest calibrated target FAR, and the
        challenges issued after it are stepped up. The same seed replays the same draws."""
        rng = self.rng if seed is None else np.random.default_rng(seed)
        current, strict = length, min(self.bundle.target_fars)
        for index in range(attempts):
            throttled = throttle_after is not None and index + 1 >= throttle_after
            if throttled and index >= throttle_after:
                current = min(10, length + step_up)
            accepted, near = self.attempt(writer, victim, current, margin, rng, strict if throttled else None)
            if accepted:
                return index
            if near and step_up:
                current = min(10, length + step_up)
        return None


def lockout_window_report(simulator: AttemptSimulator, length: int, extra: int, margin: float, throttle_after: int,
                          pairs: int = 1500) -> dict:
    """Brute force within the lockout: one impostor hand trying one victim again and again,
    fresh random digits each time. Share of (victim, impostor) pairs accepted at least once
    within 5 attempts (before any delay) and within 50 (before the factor is disabled), under
    the deployed active defence (step-up after a near miss; from `throttle_after` failures in
    a row the strict target and stepped-up challenges) and, on the same pairs and draws,
    without it. Every ordered pair of writers once (at most `pairs` of them, drawn), the
    impostor with digits enough for a stepped-up challenge."""
    stepped = min(10, length + extra)
    chosen = [(v, i) for v in range(simulator.owners) for i in range(simulator.owners)
              if v != i and len(simulator.digits_of(i)) >= stepped]
    if len(chosen) > pairs:
        chosen = [chosen[k] for k in sorted(simulator.rng.choice(len(chosen), pairs, replace=False))]
    out = {"pairs": len(chosen), "length": length, "active_defence": {
        "extra_digits": extra, "near_miss_margin": margin, "after_failures": throttle_after,
        "strict_target_far": min(simulator.bundle.target_fars)}}
    for mode, step, throttle in (("deployed", extra, throttle_after), ("without_active_defence", 0, None)):
        firsts = [simulator.first_success(i, v, 50, length, step, margin, seed=n, throttle_after=throttle)
                  for n, (v, i) in enumerate(chosen)]
        within = lambda n: float(np.mean([s is not None and s < n for s in firsts]))
        figures = {"accepted_within_5": within(5), "accepted_within_50": within(50)}
        if mode == "deployed":
            out.update(figures)
        else:
            out[mode] = figures
    # what the defence costs the owners: how many fail that often in a row, and how often
    # their stepped-up answers pass at the strict target
    owners = [v for v in range(simulator.owners) if len(simulator.digits_of(v)) >= stepped]
    throttled = [simulator.first_success(v, v, throttle_after, length, extra, margin, seed=n, throttle_after=throttle_after)
                 is None for n, v in enumerate(owners * 20)]
    rng, strict = np.random.default_rng(0), min(simulator.bundle.target_fars)
    passed = [simulator.attempt(v, v, stepped, margin, rng, strict)[0] for v in owners for _ in range(20)]
    out["genuine"] = {"throttled": float(np.mean(throttled)), "accepted_when_strict": float(np.mean(passed)),
                      "sequences": len(throttled)}
    return out


def step_up_report(simulator: AttemptSimulator, length: int, extra: int, margin: float, pairs: int = 3000) -> dict:
    """Active defence: after a near miss the next challenges are `extra` digits longer.
    Impostors: share of (victim, impostor) pairs accepted within 5 attempts; genuine users:
    share accepted at the first attempt and within 2; with and without step-up, on the same
    pairs and the same draws (paired)."""
    out = {"length": length, "extra_digits": extra, "near_miss_margin": margin}
    chosen = [tuple(int(w) for w in simulator.rng.choice(simulator.owners, 2, replace=False)) for _ in range(pairs)]
    chosen = [(v, i) for v, i in chosen if min(len(simulator.digits_of(v)), len(simulator.digits_of(i))) >= length + extra]
    for mode, step in (("without_step_up", 0), ("with_step_up", extra)):
        impostor = [simulator.first_success(i, v, 5, length, step, margin, seed=n) for n, (v, i) in enumerate(chosen)]
        genuine = [simulator.first_success(v, v, 2, length, step, margin, seed=n) for n, (v, _) in enumerate(chosen)]
        out[mode] = {
            "impostor_accepted_within_5": float(np.mean([s is not None for s in impostor])),
            "genuine_accepted_first_attempt": float(np.mean([s == 0 for s in genuine])),
            "genuine_accepted_within_2": float(np.mean([s is not None for s in genuine])),
            "impostor_sequences": len(impostor), "genuine_sequences": len(genuine),
        }
    return out


def plot_det(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 5))
    for label, (far, frr) in curves.items():
        keep = (far > 0) & (frr > 0)
        axes.loglog(far[keep] * 100, frr[keep] * 100, "--" if "alone" in label or "DTW" in label else "-",
                    label=label)
    axes.plot([0.01, 100], [0.01, 100], ":", color="grey", linewidth=0.8, label="EER line")
    axes.set(xlim=(0.05, 100), ylim=(0.05, 100), xlabel="false accept rate (%)", ylabel="false reject rate (%)",
             title=title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _digits(data_dir, stroke_set: Path | None, writers: str) -> tuple[data.DigitSet, np.ndarray | None]:
    """The digits, and for a stroke set their pen paths (same order)."""
    if stroke_set is None:
        digits = data.load(data_dir)
        return (digits if writers == "all" else digits.of_writers(split.load_split()[writers])), None
    samples = strokes.read_stroke_set(stroke_set)
    rendered, names = strokes.digit_set(samples)
    keep = np.ones(len(samples), dtype=bool)
    if writers != "all":
        keep = np.isin(rendered.writers, strokes.keys_of(names, strokes.load_split()[writers]))
    return rendered.subset(keep), strokes.paths_of([s for s, kept in zip(samples, keep) if kept])


def evaluate(data_dir, out: Path, enroll: int, lengths: list[int], writers: str, which: str, models_dir=None,
             stroke_set: Path | None = None) -> dict:
    started = time.time()
    bundle = ModelBundle.load(models_dir)
    domain = SCAN if stroke_set is None else STROKES
    digits, paths = _digits(data_dir, stroke_set, writers)
    print(f"{domain}: {len(digits)} digits of {len(np.unique(digits.writers))} writers", flush=True)
    predicted = bundle.digit_logits(digits.images[:, None], paths).argmax(axis=1)
    recognised = recognition_report(predicted, digits)
    if paths is not None and bundle.has_online_recognizer:  # each reading alone, beside the two together
        for name, logits in (("image_alone", bundle.recognizer(digits.images[:, None])),
                             ("path_alone", bundle.online_recognizer(paths))):
            recognised[name] = float((logits.argmax(axis=1) == digits.digits).mean())
    enrolment, scores = verification_scores(bundle, which, digits, enroll, domain)
    modalities, alone = IMAGE, {}
    if paths is not None and which == "deployed" and bundle.has_online:
        modalities = IMAGE_ONLINE
        alone = {"image": scores, "online": online_scores(bundle, paths, enrolment)}
        scores = bundle.image_weight(enroll) * alone["image"] + alone["online"]
        print("online verifier: fused with the image's; the DTW baseline beside it", flush=True)
        alone["dtw_baseline"] = dtw_scores(paths, enrolment, stroke_set)
    report = {
        "data": str(stroke_set or data_dir or data.data_dir()),
        "domain": domain,
        "writers": writers,
        "verifier": which,
        "modalities": modalities,
        "models": bundle.versions(),
        "recognition": recognised,
        "verification": {
            "enrolled_per_digit": enroll,
            "writers_enrolled": int(len(enrolment.writers)),
            "writers_skipped": enrolment.skipped_writers,
            "scoring": bundle.scoring_config(which, domain, enroll).to_dict(),
            "lengths": {},
        },
    }
    curves = {}
    for length in sorted(set(lengths) | {LENGTH}):
        attempts = protocol.build_attempts(enrolment, scores, length, ATTEMPTS_PER_WRITER, seed=length)
        if length in lengths:
            figures = report["verification"]["lengths"][str(length)] = length_report(attempts)
            name = f"{length} digit{'s' if length > 1 else ''}"
            curves[f"{name}, {modalities}" if alone else name] = protocol.det_points(
                attempts.genuine.mean(axis=1), attempts.impostor.mean(axis=1))
            for kind, kind_scores in alone.items():
                # the same attempts (same probes, same targets), scored by one view only
                genuine, impostor = _rescored(attempts, kind_scores)
                if kind == "dtw_baseline":
                    figures["eer_dtw_baseline"] = protocol.eer(genuine, impostor)
                else:
                    figures.setdefault("eer_by_modality", {})[kind] = protocol.eer(genuine, impostor)
                if length == LENGTH:
                    label = "DTW baseline" if kind == "dtw_baseline" else f"{kind} alone"
                    curves[f"{name}, {label}"] = protocol.det_points(genuine, impostor)
            print(f"length {length}: EER {figures['eer']:.4f} (writers drawn again: %.4f-%.4f)"
                  % tuple(figures["eer_90pct_writer_interval"])
                  + "".join(f", {k} {v:.4f}" for k, v in figures.get("eer_by_modality", {}).items())
                  + (f", DTW baseline {figures['eer_dtw_baseline']:.4f}" if "eer_dtw_baseline" in figures else ""),
                  flush=True)
        if length == LENGTH and which == "deployed":
            report["system"] = system_report(bundle, attempts, enrolment, predicted, length, domain, modalities)
            simulator = AttemptSimulator(bundle, enrolment, scores, predicted, seed=7, domain=domain,
                                         modalities=modalities)
            challenges, margin = config.ChallengeSettings(), config.VerifierSettings().near_miss_margin
            report["system"]["lockout_window"] = lockout_window_report(
                simulator, length, challenges.stepup_extra_digits, margin, challenges.lockout_throttle_after)
            report["system"]["step_up"] = step_up_report(simulator, length, challenges.stepup_extra_digits, margin)
    out.mkdir(parents=True, exist_ok=True)
    plot_det(curves, out / "det.png", f"hwotp writer verification, {domain} (DET)")
    report["seconds"] = round(time.time() - started, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / 'report.json'} and {out / 'det.png'}", flush=True)
    return report


def _rescored(attempts: protocol.Attempts, scores: np.ndarray):
    """Mean scores of the attempts' own probes against their own targets, from another score matrix."""
    genuine = scores[attempts.genuine_probes, attempts.genuine_targets[:, None]].mean(axis=1)
    impostor = scores[attempts.impostor_probes, attempts.impostor_targets[:, None]].mean(axis=1)
    return genuine, impostor


def record(report: dict, models=None) -> None:
    """Keep a report's headline figures in models.json, keyed by verifier and writers."""
    path = models_dir(models) / META_FILE
    meta = json.loads(path.read_text())
    domain = "" if report.get("domain", SCAN) == SCAN else f"/{report['domain']}"
    enrolled = report["verification"]["enrolled_per_digit"]
    if domain and enrolled != 1:  # strokes are reported with one enrolled sample per digit first
        domain += f"/enrol{enrolled}"
    meta["figures"][f"{report['verifier']}/{report['writers']}{domain}"] = {
        key: report[key] for key in ("recognition", "verification", "system") if key in report
    }
    path.write_text(json.dumps(meta, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="data directory (default: $HWOTP_DATA_DIR or ../shared/data/mnist-writers)")
    parser.add_argument("--strokes", type=Path, default=None, help="a stroke set (JSON Lines, training.strokes) instead")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--enroll", type=int, default=3)
    parser.add_argument("--lengths", default="1,4,6,8")
    parser.add_argument("--writers", choices=["all", "train", "val", "test"], default="all",
                        help="evaluate only one part of models/split.json (default: every writer in DIR)")
    parser.add_argument("--verifier", choices=["deployed", "baseline"], default="deployed")
    parser.add_argument("--models", default=None, help="models directory (default: the repository's models/)")
    parser.add_argument("--record", action="store_true", help="also store the figures in models.json")
    args = parser.parse_args()
    if args.strokes is None:
        data.exit_if_missing(args.data)
    else:
        strokes.exit_if_missing(args.strokes)
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    if not lengths or min(lengths) < 1 or max(lengths) > 10:
        parser.error("--lengths takes challenge lengths between 1 and 10")
    report = evaluate(args.data, args.out, args.enroll, lengths, args.writers, args.verifier, args.models, args.strokes)
    if args.record:
        record(report, args.models)
    print(json.dumps({"recognition": report["recognition"]["accuracy"],
                      "eer": {k: v["eer"] for k, v in report["verification"]["lengths"].items()},
                      "system": {k: report.get("system", {}).get(k) for k in ("frr", "far")}}))


if __name__ == "__main__":
    main()
