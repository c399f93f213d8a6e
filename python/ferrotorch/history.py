"""What ``Trainer.fit`` did: per-epoch logs, every optimizer step's loss,
and how it ended."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List


@dataclass
class History:
    """Per-epoch logs (``loss``, ``val_loss``, metrics, ``lr``,
    ``duration``), the loss of every optimizer step (the mean over its
    accumulated micro-batches), and how ``fit`` ended. ``steps`` counts
    optimizer updates, as Lightning does; ``skipped`` those dropped for a
    non-finite loss or gradient (``on_nonfinite="skip"``)."""

    losses: List[float] = field(default_factory=list)
    step_losses: List[float] = field(default_factory=list)
    epochs_logs: List[dict] = field(default_factory=list)
    steps: int = 0
    skipped: int = 0
    stopped_early: bool = False
    interrupted: bool = False
    #: Engine counters when this fit began (a resumed fit keeps its own).
    start_step: int = 0
    start_epoch: int = 0

    @property
    def epochs(self) -> int:
        return len(self.losses)

    def metric(self, name: str) -> List[float]:
        """One logged value per epoch (e.g. ``history.metric("val_loss")``)."""
        return [e[name] for e in self.epochs_logs if name in e]

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        del d["stopped_early"], d["interrupted"]
        return d

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> History:
        return History(
            losses=[float(v) for v in d.get("losses", [])],
            step_losses=[float(v) for v in d.get("step_losses", [])],
            epochs_logs=[dict(e) for e in d.get("epochs_logs", [])],
            steps=int(d.get("steps", 0)),
            skipped=int(d.get("skipped", 0)),
            start_step=int(d.get("start_step", 0)),
            start_epoch=int(d.get("start_epoch", 0)),
        )
