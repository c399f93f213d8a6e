"""One rank of the distributed tests (run by torchrun from test_distributed.py).

usage: worker.py MODE OUT_DIR [EPOCHS]
"""

import os
import sys

import torch
import torch.nn.functional as F

import ferrotorch as ft
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.callbacks import CSVLogger
from ferrotorch.data import DataLoader
from ferrotorch.nn import GELU, Dropout, LayerNorm, Linear
from ferrotorch.optim import SGD, Adam

mode, out = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
torch.set_num_threads(1)
ft.distributed.init()
rank, world = ft.distributed.rank(), ft.distributed.world_size()


def data():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(96, 6, generator=g)
    return x, x @ torch.randn(6, 3, generator=g)


def model(width=16, dropout=False):
    ft.manual_seed(100 + rank)  # every rank starts elsewhere: the broadcast must fix it
    b = FlowBuilder.from_(Linear(6, width)).through(GELU()).through(LayerNorm(width))
    if dropout:
        b.through(Dropout(0.3))
    return b.through(Linear(width, 3)).build()


def save_params(g, tag=""):
    torch.save([p.detach().clone() for p in g.parameters()], os.path.join(out, f"params{tag}_{rank}.pt"))


if mode == "train":  # clipping, a schedule, accumulation-free global-batch equivalence
    g = model()
    tr = Trainer(
        g, Adam(g.parameters(), 1e-2), clip_grad_norm=0.5, scheduler=ft.sched.CosineScheduler(1e-2, 1e-3, 40)
    )
    torch.save([p.detach().clone() for p in g.parameters()], os.path.join(out, f"start_{rank}.pt"))
    h = tr.fit(
        DataLoader(data(), 8, seed=3),
        epochs=epochs,
        checkpoint_dir=os.path.join(out, "ckpt"),
        callbacks=[CSVLogger(os.path.join(out, "log.csv"))],
    )
    save_params(g)
    if tr.is_main:  # the one writer: a plain floDl file, as one process would write it
        g.save_checkpoint(os.path.join(out, "model.fdl"))
    torch.save(
        {"losses": h.losses, "steps": h.steps, "step_losses": h.step_losses},
        os.path.join(out, f"hist_{rank}.pt"),
    )
elif mode == "resume":  # dropout: each rank's RNG differs and must come back
    g = model(dropout=True)
    tr = Trainer(g, Adam(g.parameters(), 1e-2), grad_accumulation=2)
    tr.fit(
        DataLoader(data(), 8, seed=3), epochs=epochs, checkpoint_dir=os.path.join(out, "ckpt"), resume=True
    )
    save_params(g, f"_e{epochs}")
elif mode == "fail":
    g = model()
    calls = [0]

    def loss(pred, target):
        calls[0] += 1
        if rank == 1 and calls[0] == 3:
            raise ValueError("rank 1 fails on purpose")
        return F.mse_loss(pred, target)

    tr = Trainer(g, SGD(g.parameters(), 0.1), loss=loss)
    tr.fit(DataLoader(data(), 8), epochs=2)
elif mode == "mismatch":
    g = model(width=16 if rank == 0 else 17)
    Trainer(g, SGD(g.parameters(), 0.1))
elif mode == "flodl":
    x, y = data()
    state = (
        Trainer.builder(lambda d: model(), lambda p: SGD(p, 0.1), lambda m, b: F.mse_loss(m(b[0]), b[1]))
        .dataset((x, y))
        .batch_size(8)
        .num_epochs(2)
        .run()
        .join()
    )
    torch.save(state.params, os.path.join(out, f"builder_{rank}.pt"))
    g = model()
    Trainer.setup(g, None, lambda p: SGD(p, 0.1), verbose=False)
    for i in range(0, 96, 16):
        xb, yb = x[i + 8 * rank : i + 8 * rank + 8], y[i + 8 * rank : i + 8 * rank + 8]
        F.mse_loss(g(xb), yb).backward()
        g.step()
    save_params(g, "_setup")
ft.distributed.barrier()
print(f"rank {rank} done", flush=True)
