"""Evaluate the signature verifier: python -m training.evaluate_signatures --data DIR --out OUT
                                       [--users 16-30] [--fit-users 1-15] [--draws 10]

DIR is a folder (or zip archive) of SVC2004 `U{u}S{s}.TXT` files (default:
$HWOTP_SVC2004, else the SVC2004 Task 2 archive beside the data directory,
../shared/data/svc2004-task2/Task2-U1-U30.zip).

Protocol, per user and draw: 5 references drawn at random from S1-S10; genuine
probes S11-S20; skilled forgeries S21-S40; random forgeries one genuine
signature (S1-S20) of each of up to 20 other users. Scores of every user and
draw are pooled and judged against one global threshold: `skilled.eer` (genuine
against skilled forgeries) and `random.eer` (genuine against random ones). With
--fit-users the verifier's duration weight is chosen on those users (mean of
both EERs) and the figures are reported on --users only, who were not fitted
on. Writes OUT/report.json and OUT/det.png.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from training import data, protocol, signatures



def default_data() -> Path:
    """$HWOTP_SVC2004, else the archive beside the digit data directory ($HWOTP_DATA_DIR's parent,
    or ../shared/data)."""
    if os.environ.get("HWOTP_SVC2004"):
        return Path(os.environ["HWOTP_SVC2004"])
    scans = os.environ.get("HWOTP_DATA_DIR")
    return (Path(scans).parent if scans else data.SHARED_DATA_DIR.parent) / "svc2004-task2" / "Task2-U1-U30.zip"

REFERENCES = 5
RANDOM_FORGERIES = 20
DURATION_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
PROTOCOL = ("per user and draw: 5 references drawn from S1-S10; genuine S11-S20; skilled forgeries S21-S40; "
            "random forgeries: one genuine signature (S1-S20) of each of up to 20 other users; scores pooled over "
            "users and draws; one global threshold")


def users_of(spec: str | None, found: list[int]) -> list[int]:
    """"1-15", "16,18,20" or None (every user found)."""
    if not spec:
        return found
    chosen = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        chosen |= set(range(int(low), int(high or low) + 1))
    missing = sorted(chosen - set(found))
    if missing:
        raise SystemExit(f"error: no signatures of users {missing} in the data")
    return sorted(chosen)


def parts(features: dict, users: list[int], draws: int, seed: int,
          verifier: signatures.DtwVerifier) -> dict[str, np.ndarray]:
    """Per probe kind, (n, 2) score parts (shape, duration) over every user and draw."""
    rng = np.random.default_rng(seed)
    out = {"genuine": [], "skilled": [], "random": []}
    for user in users:
        others = [u for u in users if u != user]
        for _ in range(draws):
            references = rng.choice(np.arange(1, 11), REFERENCES, replace=False)
            enrolled = verifier.enrol([features[(user, int(s))] for s in references])
            out["genuine"] += [enrolled.parts(features[(user, s)]) for s in range(11, 21)]
            out["skilled"] += [enrolled.parts(features[(user, s)]) for s in signatures.FORGERIES]
            chosen = rng.choice(others, min(RANDOM_FORGERIES, len(others)), replace=False)
            out["random"] += [enrolled.parts(features[(int(u), int(rng.integers(1, 21)))]) for u in chosen]
    return {kind: np.asarray(rows) for kind, rows in out.items()}


def scores(measured: dict[str, np.ndarray], weight: float) -> dict[str, np.ndarray]:
    return {kind: -rows[:, 0] - weight * rows[:, 1] for kind, rows in measured.items()}


def eers(scored: dict[str, np.ndarray]) -> dict[str, float]:
    return {kind: protocol.eer(scored["genuine"], scored[kind]) for kind in ("skilled", "random")}


def plot_det(scored: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 5))
    for kind in ("skilled", "random"):
        far, frr = protocol.det_points(scored["genuine"], scored[kind])
        keep = (far > 0) & (frr > 0)
        axes.loglog(far[keep] * 100, frr[keep] * 100, label=f"{kind} forgeries")
    axes.plot([0.01, 100], [0.01, 100], ":", color="grey", linewidth=0.8, label="EER line")
    axes.set(xlim=(0.05, 100), ylim=(0.05, 100), xlabel="false accept rate (%)", ylabel="false reject rate (%)",
             title="hwotp signature verification (DET)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--users", default=None, help="users to report on, like 16-30 (default: all)")
    parser.add_argument("--fit-users", default=None, help="users to choose the verifier's settings on, like 1-15")
    parser.add_argument("--draws", type=int, default=10, help="reference draws per user")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.data = args.data or default_data()
    if not args.data.exists():
        raise SystemExit(f"error: no signatures at {args.data}: SVC2004 Task 2 comes from the competition's site "
                         "(see ../shared/data/README.md); pass --data DIR")
    started = time.time()
    raw = signatures.read_signatures(args.data)
    found = sorted({user for user, _ in raw})
    report_users = users_of(args.users, found)
    fit_users = users_of(args.fit_users, found) if args.fit_users else []
    if set(fit_users) & set(report_users):
        raise SystemExit("error: --users and --fit-users overlap: report only on users not fitted on")
    features = {key: signatures.features(rows) for key, rows in raw.items() if key[0] in set(report_users + fit_users)}
    verifier, fit = signatures.DtwVerifier(), {}
    if fit_users:
        measured = parts(features, fit_users, args.draws, args.seed + 1, verifier)
        fit = {str(w): eers(scores(measured, w)) for w in DURATION_WEIGHTS}
        weight = min(DURATION_WEIGHTS, key=lambda w: np.mean(list(fit[str(w)].values())))
        verifier = signatures.DtwVerifier(duration_weight=weight)
        print(f"fitted on users {fit_users[0]}-{fit_users[-1]}: duration weight {weight}", flush=True)
    scored = scores(parts(features, report_users, args.draws, args.seed, verifier), verifier.duration_weight)
    figures = eers(scored)
    args.out.mkdir(parents=True, exist_ok=True)
    plot_det(scored, args.out / "det.png")
    report = {
        "data": str(args.data), "users": report_users, "fit_users": fit_users, "protocol": PROTOCOL,
        "references": REFERENCES, "draws": args.draws,
        "verifier": {"method": "DTW over local features, per-user normalised, duration penalty",
                     "window": verifier.window, "duration_weight": verifier.duration_weight},
        "fit": fit,
        "skilled": {"eer": figures["skilled"], "genuine": int(len(scored["genuine"])),
                    "forgeries": int(len(scored["skilled"]))},
        "random": {"eer": figures["random"], "genuine": int(len(scored["genuine"])),
                   "forgeries": int(len(scored["random"]))},
        "seconds": round(time.time() - started, 1),
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"skilled forgeries EER {figures['skilled']:.4f}, random forgeries EER {figures['random']:.4f} "
          f"(users {report_users[0]}-{report_users[-1]}, {args.draws} draws); wrote {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
