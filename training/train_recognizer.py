"""Train the digit recognizer on the training writers, early-stop on the validation writers.

python -m training.train_recognizer [--data DIR] [--strokes FILE] [--epochs 20] [--members 2]
                                    [--init PT] [--onnx models/recognizer.onnx]

--strokes adds a stroke set's training writers (rendered by hwotp.ink, with
several pens and point densities) to the scans' and reports validation
accuracy on both domains; --init starts from trained weights (a fine-tune).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training import augment, common, data, nets, strokes

DEFAULT_ONNX = Path(__file__).resolve().parent.parent / "models" / "recognizer.onnx"


def train(train_set, val_set, epochs: int, patience: int, batch: int = 128, lr: float = 3e-3,
          init: dict | None = None) -> tuple[nets.Recognizer, list[dict]]:
    model = nets.Recognizer()
    if init is not None:
        model.load_state_dict(init)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(train_set) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    images, labels = common.tensor(train_set.images), torch.from_numpy(train_set.digits)
    best, history = common.BestEpoch(patience, higher_is_better=True), []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(labels))
        progress = tqdm(range(0, len(order), batch), desc=f"recognizer epoch {epoch + 1}/{epochs}", leave=False)
        for start in progress:
            idx = order[start : start + batch]
            x = augment.random_affine(images[idx], rotate_deg=12, scale=0.12, shear=0.2, shift_px=2)
            loss = F.cross_entropy(model(x), labels[idx], label_smoothing=0.05)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            progress.set_postfix(loss=f"{loss.item():.3f}")
        correct = common.predict(model, val_set.images).argmax(1) == val_set.digits
        # every domain counts the same, however many digits each has
        accuracy = float(np.mean([correct[val_set.series == s].mean() for s in np.unique(val_set.series)]))
        history.append({"epoch": epoch + 1, "val_accuracy": accuracy})
        print(f"epoch {epoch + 1}: validation accuracy {accuracy:.4%} (mean over domains)", flush=True)
        if best.saw(model, accuracy):
            break
    model.load_state_dict(best.best)
    return model.eval(), history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--members", type=int, default=2, help="ensemble members, seeds SEED, SEED+1, ...")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N digits (smoke runs)")
    parser.add_argument("--onnx", type=Path, default=DEFAULT_ONNX)
    parser.add_argument("--strokes", type=Path, default=None, help="a stroke set (training.strokes) to train on too")
    parser.add_argument("--init", type=Path, default=None, help="torch weights of an ensemble to start from")
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    data.exit_if_missing(args.data)
    parts = common.load_split_data(args.data, args.limit)
    train_set, val_set = parts["train"], parts["val"]
    if args.strokes:
        online, augmented = strokes.load_parts(args.strokes, augment=True)
        train_set, val_set = common.concat(train_set, augmented["train"]), common.concat(val_set, online["val"])
        print(f"with strokes: {len(train_set)} training and {len(val_set)} validation digits", flush=True)
    start = torch.load(args.init) if args.init else None
    started = time.time()
    model, history = nets.RecognizerEnsemble(args.members), []
    for member in range(args.members):
        common.seed_everything(args.seed + member)
        init = {k.split(".", 2)[2]: v for k, v in start.items() if k.startswith(f"members.{member}.")} if start else None
        trained, member_history = train(train_set, val_set, args.epochs, args.patience, lr=args.lr, init=init)
        model.members[member].load_state_dict(trained.state_dict())
        history.append({"member": member, "seed": args.seed + member, "epochs": member_history})
    model.eval()
    minutes = (time.time() - started) / 60
    accuracy = float((common.predict(model, val_set.images).argmax(1) == val_set.digits).mean())
    history.append({"ensemble_val_accuracy": accuracy})
    print(f"trained in {minutes:.1f} min; ensemble validation accuracy {accuracy:.4%}")
    common.save(model, args.onnx, "logits", history, minutes)


if __name__ == "__main__":
    main()
