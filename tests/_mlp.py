"""The small GELU MLP the Trainer tests share, and its torch.nn twin."""

import torch

import ferrotorch as ft
from ferrotorch import FlowBuilder
from ferrotorch.nn import GELU, Linear


def mlp(seed=0):
    """Linear(4, 8) → GELU → Linear(8, 3), seeded."""
    ft.manual_seed(seed)
    return FlowBuilder.from_(Linear(4, 8)).through(GELU()).through(Linear(8, 3)).build()


def torch_twin(g):
    """The same network in torch.nn, holding ``g``'s weights."""
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        for a, b in zip(ref.parameters(), g.parameters()):
            a.copy_(b)
    return ref
