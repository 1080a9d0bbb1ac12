"""Fit and evaluate the signature verifier (hwotp.signature):

    python -m training.evaluate_signatures --data DIR --out OUT [--users 16-30]
        [--fit-users 1-15 [--save MODELS_DIR] | --folds 3] [--draws 10]

DIR is a folder (or zip archive) of SVC2004 `U{u}S{s}.TXT` files (default:
$HWOTP_SVC2004, else the SVC2004 Task 2 archive beside the data directory,
../shared/data/svc2004-task2/Task2-U1-U30.zip). Every signature goes through
the same code as a signature sent to the gateway (as strokes).

Protocol, per user and draw: 5 references drawn at random from S1-S10; genuine
probes S11-S20; skilled forgeries S21-S40; random forgeries one genuine
signature (S1-S20) of each of up to 20 other users. Scores of every user and
draw are pooled and judged against one global threshold: `skilled.eer` (genuine
against skilled forgeries) and `random.eer` (genuine against random ones).

With --fit-users the verifier is fitted on those users (the global features'
population spread, the fusion's weights and the threshold at their
skilled-forgery EER) and reported on --users only, who must be others; --save
writes the fitted verifier to MODELS_DIR/signature.json (the served one is
fitted on users 1-30). With --folds K the users are split into K groups, each
reported by a verifier fitted on the other groups (each its own threshold),
and the scores of all pooled. Otherwise the served verifier
(models/signature.json) is evaluated. Writes OUT/report.json and OUT/det.png.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from hwotp import signature
from hwotp.errors import InvalidInput
from hwotp.models import models_dir
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


def parts(signed: dict, users: list[int], draws: int, seed: int,
          model: signature.SignatureModel) -> dict[str, np.ndarray]:
    """Per probe kind, (n, 3) score parts (hwotp.signature.PARTS) over every user and draw."""
    rng = np.random.default_rng(seed)
    out = {"genuine": [], "skilled": [], "random": []}
    for user in users:
        others = [u for u in users if u != user]
        for _ in range(draws):
            references = rng.choice(np.arange(1, 11), REFERENCES, replace=False)
            enrolled = model.enrol([signed[(user, int(s))] for s in references])
            out["genuine"] += [enrolled.parts(signed[(user, s)]) for s in range(11, 21)]
            out["skilled"] += [enrolled.parts(signed[(user, s)]) for s in signatures.FORGERIES]
            chosen = rng.choice(others, min(RANDOM_FORGERIES, len(others)), replace=False)
            out["random"] += [enrolled.parts(signed[(int(u), int(rng.integers(1, 21)))]) for u in chosen]
    return {kind: np.asarray(rows) for kind, rows in out.items()}


def usable(raw: dict, users: set[int]) -> tuple[dict, dict]:
    """The users' signatures as the verifier sees them, and {file: why} of those that cannot be
    signatures (hwotp.signature.problem: too few points, no ink)."""
    signed, unusable = {}, {}
    for (user, number), rows in raw.items():
        if user in users:
            try:
                signed[(user, number)] = signature.signature_of(signatures.strokes_of(rows))
            except InvalidInput as exc:
                unusable[f"U{user}S{number}"] = str(exc)
    for name, why in unusable.items():
        print(f"warning: {name} left out: {why}", flush=True)
    return signed, unusable


def logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """Weights and bias of a logistic regression, classes weighted equally (Newton steps)."""
    design = np.c_[x, np.ones(len(x))]
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    w = np.zeros(design.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-design @ w))
        gradient = design.T @ (weight * (p - y)) + l2 * np.r_[w[:-1], 0]
        hessian = (design * (weight * p * (1 - p))[:, None]).T @ design + l2 * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    return w[:-1], float(w[-1])


def eer_threshold(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The score at which the false reject and false accept rates meet."""
    candidates = np.unique(np.concatenate([genuine, impostor]))
    gaps = [abs(np.mean(genuine < t) - np.mean(impostor >= t)) for t in candidates]
    return float(candidates[int(np.argmin(gaps))])


def fit(signed: dict, users: list[int], draws: int, seed: int) -> signature.SignatureModel:
    """The global features' spread, the fusion (genuine against both kinds of forgery) and the
    threshold at the skilled-forgery EER, all from `users`' signatures."""
    population = np.array([s.globals for (user, _), s in signed.items() if user in set(users)])
    model = signature.SignatureModel((0.0,) * len(signature.PARTS), 0.0, 0.0, tuple(population.std(axis=0) + 1e-9))
    measured = parts(signed, users, draws, seed, model)
    x = np.concatenate([measured["genuine"], measured["skilled"], measured["random"]])
    y = np.r_[np.ones(len(measured["genuine"])), np.zeros(len(measured["skilled"]) + len(measured["random"]))]
    weights, bias = logistic(signature.fusion_inputs(x), y)
    model = signature.SignatureModel(tuple(weights.tolist()), bias, 0.0, model.global_spread)
    scored = scores(measured, model)
    return signature.SignatureModel(model.weights, bias, eer_threshold(scored["genuine"], scored["skilled"]),
                                    model.global_spread)


def scores(measured: dict[str, np.ndarray], model: signature.SignatureModel) -> dict[str, np.ndarray]:
    return {kind: model.fuse(rows) for kind, rows in measured.items()}


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
    parser.add_argument("--users", default=None, help="users to report on, like 16-30 (default: all not fitted on)")
    parser.add_argument("--fit-users", default=None, help="users to fit the verifier on, like 1-15")
    parser.add_argument("--save", type=Path, default=None, help="with --fit-users: write signature.json here")
    parser.add_argument("--folds", type=int, default=0,
                        help="cross-validation instead: users in this many groups, each reported by a verifier "
                             "fitted on the others")
    parser.add_argument("--draws", type=int, default=10, help="reference draws per user")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.data = args.data or default_data()
    if not args.data.exists():
        raise SystemExit(f"error: no signatures at {args.data}: SVC2004 Task 2 comes from the competition's site "
                         "(see ../shared/data/README.md); pass --data DIR")
    started = time.time()
    try:
        raw = signatures.read_signatures(args.data)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    found = sorted({user for user, _ in raw})
    if args.folds and (args.fit_users or args.users or args.save):
        raise SystemExit("error: --folds fits and reports on every user: without --users, --fit-users or --save")
    if args.folds and not 2 <= args.folds <= len(found):
        raise SystemExit(f"error: --folds must lie in 2-{len(found)}")
    fit_users = users_of(args.fit_users, found) if args.fit_users else []
    report_users = users_of(args.users, found) if args.users else [u for u in found if u not in fit_users]
    if set(fit_users) & set(report_users):
        raise SystemExit("error: --users and --fit-users overlap: report only on users not fitted on")
    chosen = set(found if args.folds else report_users + fit_users)
    signed, unusable = usable(raw, chosen)
    incomplete = sorted(u for u in chosen if any((u, n) not in signed for n in (*signatures.GENUINE,
                                                                               *signatures.FORGERIES)))
    if incomplete:
        print(f"warning: left out users {incomplete}: not all of S1-S40 are there and usable", flush=True)
        fit_users = [u for u in fit_users if u not in incomplete]
        report_users = [u for u in report_users if u not in incomplete]
        found = [u for u in found if u not in incomplete]
    report = {"data": str(args.data), "protocol": PROTOCOL, "references": REFERENCES, "draws": args.draws,
              "left_out": {"users": incomplete, "signatures": unusable},
              "method": "DTW over local features, duration and per-user global feature statistics, fused by "
                        "logistic regression"}
    if args.folds:
        # every user reported by a verifier fitted on the other folds' users only
        runs = []
        for group in np.array_split(np.array(found), args.folds):
            group = group.tolist()
            model = fit(signed, [u for u in found if u not in group], args.draws, args.seed + 1)
            runs.append((group, model))
            print(f"fold users {group[0]}-{group[-1]}: fitted on the other {len(found) - len(group)}", flush=True)
        report.update(folds=[{"users": group, "weights": list(model.weights), "threshold": model.threshold}
                             for group, model in runs])
    else:
        if fit_users:
            model = fit(signed, fit_users, args.draws, args.seed + 1)
            print(f"fitted on users {fit_users[0]}-{fit_users[-1]}: weights {np.round(model.weights, 3).tolist()}, "
                  f"threshold {model.threshold:.3f}", flush=True)
            if args.save:
                print(f"wrote {model.save(args.save, fit_users=fit_users, data=args.data.name)}")
        else:
            model = signature.SignatureModel.load(models_dir())
        report.update(fit_users=fit_users, verifier={"version": model.version, "weights": list(model.weights),
                                                     "threshold": model.threshold})
        runs = [(report_users, model)] if report_users else []
    if runs:
        scored = {kind: [] for kind in ("genuine", "skilled", "random")}
        accepted = {kind: [] for kind in scored}
        for group, model in runs:
            for kind, values in scores(parts(signed, group, args.draws, args.seed, model), model).items():
                scored[kind].append(values)
                accepted[kind].append(values >= model.threshold)
        scored = {kind: np.concatenate(values) for kind, values in scored.items()}
        accepted = {kind: np.concatenate(values) for kind, values in accepted.items()}
        figures = eers(scored)
        args.out.mkdir(parents=True, exist_ok=True)
        plot_det(scored, args.out / "det.png")
        users = sorted(u for group, _ in runs for u in group)
        report.update(users=users, **{kind: {
            "eer": figures[kind], "genuine": int(len(scored["genuine"])), "forgeries": int(len(scored[kind])),
            "far_at_threshold": float(accepted[kind].mean())} for kind in ("skilled", "random")},
            frr_at_threshold=float(1 - accepted["genuine"].mean()))
        print(f"skilled forgeries EER {figures['skilled']:.4f}, random forgeries EER {figures['random']:.4f} "
              f"(users {users[0]}-{users[-1]}, {args.draws} draws)")
    report["seconds"] = round(time.time() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
