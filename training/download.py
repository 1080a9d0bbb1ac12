"""Download the public originals of the mnist-writers layout (for machines without ../shared/data).

python -m training.download [--out data/mnist-writers]

Full MNIST training set (60,000 digits) and QMNIST's extended labels, which
name the NIST writer of every digit. The 100 writers sealed for hwotp's
evaluation are among them, so figures measured on a downloaded set are not
held-out figures for those writers.
"""

from __future__ import annotations

import argparse
import urllib.request
from pathlib import Path

from training.data import IMAGES, LABELS, QMNIST, REPO_ROOT

SOURCES = {
    IMAGES: "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
    LABELS: "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
    QMNIST: "https://raw.githubusercontent.com/facebookresearch/qmnist/master/qmnist-train-labels.tsv.gz",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "data" / "mnist-writers")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, url in SOURCES.items():
        target = args.out / name
        if target.exists():
            print(f"{target} already there")
            continue
        print(f"downloading {url}", flush=True)
        partial = target.with_suffix(".part")
        urllib.request.urlretrieve(url, partial)
        partial.rename(target)
    print(f"done: set HWOTP_DATA_DIR={args.out} (or pass --data) to use it")


if __name__ == "__main__":
    main()
