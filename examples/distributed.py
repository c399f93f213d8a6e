"""Data-parallel training with torchrun: the same script on 1 or N processes.

    torchrun --standalone --nproc_per_node=2 examples/distributed.py     # 2 CPU processes (gloo)
    torchrun --standalone --nproc_per_node=8 examples/distributed.py     # 8 GPUs of one host (NCCL)
    python examples/distributed.py                                       # one process

Each rank trains on its slice of every global batch (batch_size x world
size); gradients are averaged inside the Rust step, so N processes train
like one process with the global batch. Rank 0 alone prints and writes the
checkpoint. `make demo-ddp` runs it on 2 CPU processes.
"""

import os
import sys
import tempfile

import torch
from sklearn.datasets import load_digits

import ferrotorch as ft
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.data import DataLoader
from ferrotorch.metrics import accuracy
from ferrotorch.nn import GELU, LayerNorm, Linear
from ferrotorch.optim import Adam

EPOCHS = 15
BATCH = 32  # per rank


def main() -> int:
    torch.set_num_threads(1)
    ft.distributed.init()  # reads torchrun's environment; a no-op in one process
    world = ft.distributed.world_size()
    ft.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    test, train = perm[: len(x) // 5], perm[len(x) // 5 :]
    model = (
        FlowBuilder.from_(Linear(64, 128))
        .through(GELU())
        .through(LayerNorm(128))
        .through(Linear(128, 10))
        .build()
    )
    trainer = Trainer(model, Adam(model.parameters(), 3e-3), loss="cross_entropy", clip_grad_norm=1.0)
    ckpt = os.path.join(tempfile.gettempdir(), "ferrotorch-ddp-demo")
    history = trainer.fit(
        DataLoader((x[train], y[train]), BATCH, seed=1),  # sharded per rank by the Trainer
        epochs=EPOCHS,
        checkpoint_dir=ckpt,
        progress=True,
    )
    acc = accuracy(trainer.predict(x[test]), y[test])
    if trainer.is_main:
        print(
            f"{world} process(es), global batch {BATCH * world}: {history.steps} steps, "
            f"final loss {history.losses[-1]:.4f}, held-out accuracy {acc:.2%}"
        )
    return 0 if acc > 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
