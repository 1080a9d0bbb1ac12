"""Train the digit recognizer on the training writers, early-stop on the validation writers.

python -m training.train_recognizer [--data DIR] [--epochs 20] [--members 2] [--onnx models/recognizer.onnx]
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from training import augment, common, data, nets

DEFAULT_ONNX = Path(__file__).resolve().parent.parent / "models" / "recognizer.onnx"


def train(train_set, val_set, epochs: int, patience: int, batch: int = 128, lr: float = 3e-3) -> tuple[nets.Recognizer, list[dict]]:
    model = nets.Recognizer()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(train_set) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    images, labels = common.tensor(train_set.images), torch.from_numpy(train_set.digits)
    best, best_accuracy, stale, history = None, -1.0, 0, []
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
        accuracy = float((common.predict(model, val_set.images).argmax(1) == val_set.digits).mean())
        history.append({"epoch": epoch + 1, "val_accuracy": accuracy})
        print(f"epoch {epoch + 1}: validation accuracy {accuracy:.4%}", flush=True)
        if accuracy > best_accuracy:
            best, best_accuracy, stale = copy.deepcopy(model.state_dict()), accuracy, 0
        else:
            stale += 1
            if stale >= patience:
                print(f"early stop: no gain for {patience} epochs", flush=True)
                break
    model.load_state_dict(best)
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
    args = parser.parse_args()
    data.exit_if_missing(args.data)
    parts = common.load_split_data(args.data, args.limit)
    started = time.time()
    model, history = nets.RecognizerEnsemble(args.members), []
    for member in range(args.members):
        common.seed_everything(args.seed + member)
        trained, member_history = train(parts["train"], parts["val"], args.epochs, args.patience)
        model.members[member].load_state_dict(trained.state_dict())
        history.append({"member": member, "seed": args.seed + member, "epochs": member_history})
    model.eval()
    minutes = (time.time() - started) / 60
    accuracy = float((common.predict(model, parts["val"].images).argmax(1) == parts["val"].digits).mean())
    history.append({"ensemble_val_accuracy": accuracy})
    print(f"trained in {minutes:.1f} min; ensemble validation accuracy {accuracy:.4%}")
    common.save(model, args.onnx, "logits", history, minutes)


if __name__ == "__main__":
    main()
