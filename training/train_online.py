"""Train the online writer embedding: pen paths (hwotp.trajectory) of a stroke set's training writers.

python -m training.train_online [--strokes FILE] [--epochs 30] [--seed 1]
                                [--members conv,conv,conv] [--onnx models/online-verifier.onnx]

An ensemble of path embedders trained from different seeds (SEED, SEED+1,
...), their embeddings side by side (nets.PathEmbedderEnsemble): with a few
hundred training writers one network's errors depend on its seed as much as
on its design, and the members' errors differ. A member is of one of the
builds of nets.PATH_EMBEDDERS (the README says how a recurrent one fared).
Each member learns with a
cosine-margin softmax over writer x digit classes plus one over writers, as
for the image embedding (training.train_verifier). Every epoch sees each
training sample's strokes anew under a small random affine change and point
thinning, so that the network learns the path and not one tablet's sampling.
The one-cycle schedule runs to its end and the last weights are kept: the
validation writers' one-digit EER (one enrolled sample per digit,
models/unipen-split.json; test writers are never read) is printed each epoch to
watch, not to choose an epoch by (with a few dozen writers it swings by more
between epochs than training gains, and stopping at an early dip kept a model
that had never seen the small learning rates).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hwotp import scoring
from hwotp.trajectory import CHANNELS, POINTS, path_features
from training import common, nets, protocol, strokes, unipen

DEFAULT_ONNX = Path(__file__).resolve().parent.parent / "models" / "online-verifier.onnx"
VALIDATION_ENROL = 1
MEMBERS = ("conv", "conv", "conv")


def distorted(sample: strokes.StrokeSample, rng: np.random.Generator) -> np.ndarray:
    """The sample's path under a random small rotation, shear, aspect change and thinning."""
    angle, shear = np.radians(rng.uniform(-8, 8)), rng.uniform(-0.12, 0.12)
    sx, sy = np.exp(rng.uniform(-0.1, 0.1, size=2))
    matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.array(
        [[sx, shear], [0.0, sy]])
    step = int(rng.integers(1, 3))
    moved = []
    for stroke in sample.strokes:
        points = stroke[:, :2] @ matrix.T
        moved.append(points[::step] if len(points) > 2 * step else points)
    return path_features(moved)


def one_digit_eer(model: torch.nn.Module, features: np.ndarray, digits: np.ndarray, writers: np.ndarray) -> float:
    embeddings = embed(model, features)
    enrolment = protocol.enrol(digits, writers, VALIDATION_ENROL)
    scores = protocol.score_matrix(embeddings, enrolment, None, scoring.ScoringConfig())
    genuine = enrolment.probe_owner[:, None] == np.arange(len(enrolment.writers))[None, :]
    return protocol.eer(scores[genuine], scores[~genuine])


@torch.no_grad()
def embed(model: torch.nn.Module, features: np.ndarray, batch: int = 1024) -> np.ndarray:
    model.eval()
    return np.concatenate([model(torch.from_numpy(features[i : i + batch])).numpy()
                           for i in range(0, len(features), batch)])


def validation_set(val_samples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The validation writers' paths, digits and writer indices (for one_digit_eer)."""
    return (strokes.paths_of(val_samples), np.array([s.digit for s in val_samples]),
            np.unique([s.writer for s in val_samples], return_inverse=True)[1])


def fit(model: torch.nn.Module, parameters, samples, epochs: int, seed: int, loss_of, end_of_epoch, name: str,
        batch: int = 128, lr: float = 3e-3) -> list[dict]:
    """The training loop of the path networks: AdamW under a one-cycle schedule run to its end,
    every epoch each sample's strokes under a new small distortion (distorted), in random
    batches. loss_of(inputs, idx): a batch's loss; end_of_epoch(epoch): that epoch's history
    entry (the model is then in eval mode)."""
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=5e-4)
    per_epoch = (len(samples) + batch - 1) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * per_epoch)
    history = []
    for epoch in range(epochs):
        inputs = torch.from_numpy(np.stack([distorted(s, rng) for s in samples]))
        model.train()
        order = torch.randperm(len(samples))
        progress = tqdm(range(0, len(order), batch), desc=f"{name} epoch {epoch + 1}/{epochs}", leave=False)
        for start in progress:
            loss = loss_of(inputs, order[start : start + batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            progress.set_postfix(loss=f"{loss.item():.3f}")
        model.eval()
        history.append(end_of_epoch(epoch + 1))
    return history


def train(train_samples, validation, epochs: int, seed: int, kind: str = "conv"):
    """One path embedder of a kind of nets.PATH_EMBEDDERS; validation: validation_set(...),
    watched each epoch."""
    names = sorted({s.writer for s in train_samples})
    writer_class = np.array([names.index(s.writer) for s in train_samples])
    writer_digit_class = writer_class * 10 + np.array([s.digit for s in train_samples])
    model = nets.PATH_EMBEDDERS[kind](CHANNELS, POINTS)
    by_writer_digit = nets.CosineMarginHead(model.dim, len(names) * 10)
    by_writer = nets.CosineMarginHead(model.dim, len(names))

    def loss_of(inputs, idx):
        embedding = model(inputs[idx])
        return (by_writer_digit(embedding, torch.from_numpy(writer_digit_class[idx.numpy()]))
                + 0.5 * by_writer(embedding, torch.from_numpy(writer_class[idx.numpy()])))

    def end_of_epoch(epoch: int) -> dict:
        eer = one_digit_eer(model, *validation)
        print(f"epoch {epoch}: validation one-digit EER {eer:.4f}", flush=True)
        return {"epoch": epoch, "val_eer_1": eer}

    parameters = [*model.parameters(), *by_writer_digit.parameters(), *by_writer.parameters()]
    history = fit(model, parameters, train_samples, epochs, seed, loss_of, end_of_epoch, "online")
    return model.eval(), history


def members_of(text: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in text.split(","))
    unknown = [kind for kind in kinds if kind not in nets.PATH_EMBEDDERS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"kinds are {', '.join(nets.PATH_EMBEDDERS)}; got {text!r}")
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=Path, default=unipen.STROKE_SET)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--members", type=members_of, default=",".join(MEMBERS),
                        help=f"the members' kinds, comma-separated ({' or '.join(nets.PATH_EMBEDDERS)}); "
                             "seeds SEED, SEED+1, ... (default: %(default)s)")
    parser.add_argument("--onnx", type=Path, default=DEFAULT_ONNX)
    args = parser.parse_args()
    strokes.exit_if_missing(args.strokes)
    samples = strokes.read_stroke_set(args.strokes)
    split = strokes.load_split()
    train_samples = [s for s in samples if s.writer in set(split["train"])]
    val_samples = [s for s in samples if s.writer in set(split["val"])]
    print(f"paths: {len(train_samples)} training, {len(val_samples)} validation", flush=True)
    started = time.time()
    validation = validation_set(val_samples)
    model, history = nets.PathEmbedderEnsemble(args.members, channels=CHANNELS, points=POINTS), []
    for member, kind in enumerate(args.members):
        common.seed_everything(args.seed + member)
        trained, member_history = train(train_samples, validation, args.epochs, args.seed + member, kind)
        model.members[member].load_state_dict(trained.state_dict())
        history.append({"member": member, "kind": kind, "seed": args.seed + member, "epochs": member_history})
    model.eval()
    minutes = (time.time() - started) / 60
    eer = one_digit_eer(model, *validation)
    history.append({"ensemble_val_eer_1": eer})
    print(f"trained in {minutes:.1f} min; the ensemble's validation one-digit EER {eer:.4f}")
    common.save(model, args.onnx, "embedding", history, minutes, torch.zeros(2, CHANNELS, POINTS), "path")


if __name__ == "__main__":
    main()
