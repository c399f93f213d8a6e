"""AxonML's MNIST training script, in ferrotorch form.

    MNIST::new("./data", true)  ->  Mnist(folder, train=True)
    DataLoader::new(ds, 64, true) -> DataLoader(ds, 64, shuffle=True)

An MLP (784 -> 128 -> ReLU -> 10) trained with Adam (lr 1e-3) on batches of
64, printing the loss and the test accuracy after each epoch. ferrotorch never
downloads: point it at a folder holding the four MNIST files
(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
t10k-labels-idx1-ubyte, raw or .gz, in the folder or in its MNIST/raw):

    python examples/mnist.py ./data [--epochs 5] [--limit N]

Without a folder holding MNIST it says so and exits 0. `--limit N` keeps the
first N training and test images (a quick check).
"""

import argparse
import sys
import time

import torch

import ferrotorch as ft
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.data import DataLoader, Mnist
from ferrotorch.nn import Flatten, Linear, ReLU
from ferrotorch.optim import Adam


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", help="folder holding the MNIST files")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N images of each split")
    args = ap.parse_args()

    if args.folder is None:
        print("MNIST: no folder given; run `python examples/mnist.py FOLDER` with the MNIST files in FOLDER.")
        return 0
    try:
        train = Mnist(args.folder, train=True)
        test = Mnist(args.folder, train=False)
    except ft.FileError as e:
        print(f"MNIST not found, nothing to train: {e}")
        return 0
    if args.limit is not None:
        for ds in (train, test):
            ds.data, ds.targets = ds.data[: args.limit], ds.targets[: args.limit]
    print(f"MNIST: {len(train)} training and {len(test)} test images from {args.folder}")

    ft.manual_seed(0)
    model = (
        FlowBuilder.from_(Flatten())
        .through(Linear(784, 128))
        .through(ReLU())
        .through(Linear(128, 10))
        .build()
    )
    trainer = Trainer(model, Adam(model.parameters(), 1e-3), loss="cross_entropy")
    train_loader = DataLoader(train, 64, shuffle=True)
    test_loader = DataLoader(test, 1000, shuffle=False)

    def report(epoch: int, loss: float) -> None:
        acc = trainer.evaluate(test_loader, metrics=["accuracy"])["accuracy"]
        print(f"epoch {epoch}/{args.epochs}: loss = {loss:.4f}  test accuracy = {100 * acc:.2f}%")

    start = time.perf_counter()
    trainer.fit(train_loader, epochs=args.epochs, report=report)
    final = trainer.evaluate(test_loader, metrics=["accuracy"])["accuracy"]
    print(f"final test accuracy: {100 * final:.2f}% ({time.perf_counter() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    sys.exit(main())
