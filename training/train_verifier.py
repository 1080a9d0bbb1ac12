"""Train the writer-verification embedding (one twin of the Siamese pair).

Two methods:
  contrastive  the paper's baseline: contrastive loss on same-writer /
               different-writer pairs of the same digit, Euclidean distance.
  cosface      a cosine-margin softmax over the training writers' digit
               classes (writer x digit) plus one over writers, cosine scoring
               with cohort normalisation (see hwotp/scoring.py).
Early stopping on the one-digit EER of the validation writers.

python -m training.train_verifier --method cosface [--epochs 30] [--onnx models/verifier.onnx]
                                  [--strokes FILE] [--init PT] [--lr 2e-3]

--strokes adds a stroke set's training writers (rendered by hwotp.ink with
several pens and point densities) as writer classes of their own, and early
stopping then looks at the mean of both domains' validation EER (strokes with
one enrolled sample per digit); --init starts from trained weights.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hwotp import scoring
from training import augment, common, data, nets, protocol, strokes

DEFAULT_ONNX = Path(__file__).resolve().parent.parent / "models" / "verifier.onnx"
VALIDATION_ENROL = 3


def _distort(x: torch.Tensor) -> torch.Tensor:
    # Milder than for recognition: slant and size are part of a writer's style.
    return augment.random_affine(x, rotate_deg=3, scale=0.04, shear=0.04, shift_px=1.5)


def validation_eer(model, val_set, method: str) -> float:
    """The one-digit EER of each domain in the set (scans, strokes), averaged."""
    eers = []
    domains = {"strokes": val_set.series == strokes.ONLINE_SERIES}
    domains["scans"] = ~domains["strokes"]
    for name, mask in domains.items():
        if mask.any():
            part = val_set.subset(mask)
            eers.append(_eer(model, part, method, 1 if name == "strokes" else VALIDATION_ENROL))
    return float(np.mean(eers))


def _eer(model, val_set, method: str, enrol: int) -> float:
    embeddings = common.predict(model, val_set.images)
    enrolment = protocol.enrol(val_set.digits, val_set.writers, enrol)
    config = scoring.ScoringConfig(metric="euclidean" if method == "contrastive" else "cosine")
    scores = protocol.score_matrix(embeddings, enrolment, None, config)
    genuine_mask = enrolment.probe_owner[:, None] == np.arange(len(enrolment.writers))[None, :]
    return protocol.eer(scores[genuine_mask], scores[~genuine_mask])


class CosFaceObjective(torch.nn.Module):
    def __init__(self, train_set, dim: int):
        super().__init__()
        writers, self.writer_class = np.unique(train_set.writers, return_inverse=True)
        self.writer_digit_class = self.writer_class * 10 + train_set.digits
        self.by_writer = nets.CosineMarginHead(dim, len(writers))
        self.by_writer_digit = nets.CosineMarginHead(dim, len(writers) * 10)

    def batches(self, count: int, batch: int):
        order = torch.randperm(count)
        for start in range(0, count, batch):
            yield order[start : start + batch]

    def loss(self, model, images, idx) -> torch.Tensor:
        embedding = model(_distort(images[idx]))
        writer = torch.from_numpy(self.writer_class[idx.numpy()])
        writer_digit = torch.from_numpy(self.writer_digit_class[idx.numpy()])
        return self.by_writer_digit(embedding, writer_digit) + 0.5 * self.by_writer(embedding, writer)


class ContrastiveObjective(torch.nn.Module):
    """Pairs of the same digit: half by the same writer, half by different writers."""

    margin = 1.0

    def __init__(self, train_set, dim: int):
        super().__init__()
        del dim
        self.digits, self.writers = train_set.digits, train_set.writers
        self.same_group = {}
        for i, key in enumerate(zip(self.writers, self.digits)):
            self.same_group.setdefault(key, []).append(i)
        self.by_digit = [np.flatnonzero(self.digits == d) for d in range(10)]
        self.rng = np.random.default_rng(0)

    def batches(self, count: int, batch: int):
        order = torch.randperm(count)
        for start in range(0, count, batch):
            yield order[start : start + batch]

    def loss(self, model, images, idx) -> torch.Tensor:
        anchors = idx.numpy()
        partners, same = [], []
        for n, a in enumerate(anchors):
            if n % 2 == 0:
                group = self.same_group[(self.writers[a], self.digits[a])]
                partners.append(self.rng.choice(group))
            else:
                while True:
                    b = self.rng.choice(self.by_digit[self.digits[a]])
                    if self.writers[b] != self.writers[a]:
                        break
                partners.append(b)
            same.append(float(self.writers[partners[-1]] == self.writers[a]))
        left = model(_distort(images[idx]))
        right = model(_distort(images[torch.from_numpy(np.asarray(partners))]))
        distance = (left - right).norm(dim=1)
        y = torch.tensor(same)
        return (y * distance**2 + (1 - y) * F.relu(self.margin - distance) ** 2).mean()


OBJECTIVES = {"cosface": CosFaceObjective, "contrastive": ContrastiveObjective}


def train(train_set, val_set, method: str, epochs: int, patience: int, batch: int = 128, lr: float = 2e-3,
          init: dict | None = None):
    model = nets.Embedder()
    if init is not None:
        model.load_state_dict(init)
    objective = OBJECTIVES[method](train_set, 128)
    parameters = list(model.parameters()) + list(objective.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=5e-4)
    steps = epochs * ((len(train_set) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    images = common.tensor(train_set.images)
    best, history = common.BestEpoch(patience), []
    for epoch in range(epochs):
        model.train()
        progress = tqdm(objective.batches(len(train_set), batch), total=steps // epochs,
                        desc=f"verifier[{method}] epoch {epoch + 1}/{epochs}", leave=False)
        for idx in progress:
            loss = objective.loss(model, images, idx)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            progress.set_postfix(loss=f"{loss.item():.3f}")
        eer = validation_eer(model, val_set, method)
        history.append({"epoch": epoch + 1, "val_eer_1": eer})
        print(f"epoch {epoch + 1}: validation one-digit EER {eer:.4f}", flush=True)
        if best.saw(model, eer):
            break
    model.load_state_dict(best.best)
    return model.eval(), history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--method", choices=sorted(OBJECTIVES), default="cosface")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N digits (smoke runs)")
    parser.add_argument("--onnx", type=Path, default=DEFAULT_ONNX)
    parser.add_argument("--strokes", type=Path, default=None, help="a stroke set (training.strokes) to train on too")
    parser.add_argument("--init", type=Path, default=None, help="torch weights of an embedder to start from")
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()
    data.exit_if_missing(args.data)
    common.seed_everything(args.seed)
    parts = common.load_split_data(args.data, args.limit)
    train_set, val_set = parts["train"], parts["val"]
    if args.strokes:
        online, augmented = strokes.load_parts(args.strokes, augment=True)
        train_set, val_set = common.concat(train_set, augmented["train"]), common.concat(val_set, online["val"])
        print(f"with strokes: {len(train_set)} training and {len(val_set)} validation digits", flush=True)
    started = time.time()
    init = torch.load(args.init) if args.init else None
    model, history = train(train_set, val_set, args.method, args.epochs, args.patience, lr=args.lr, init=init)
    minutes = (time.time() - started) / 60
    print(f"trained in {minutes:.1f} min; best validation one-digit EER {min(h['val_eer_1'] for h in history):.4f}")
    common.save(model, args.onnx, "embedding", history, minutes)


if __name__ == "__main__":
    main()
