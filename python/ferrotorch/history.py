"""What ``Trainer.fit`` did: per-epoch logs, every optimizer step's loss,
and how it ended."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional


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
    def check(d: Any) -> Optional[str]:
        """What is wrong with a saved history (``to_dict``'s layout), or None."""
        if not isinstance(d, dict):
            return f"not a dict ({type(d).__name__})"
        fields = {"losses", "step_losses", "epochs_logs", "steps", "skipped", "start_step", "start_epoch"}
        if set(d) != fields:
            missing, extra = sorted(fields - set(d)), sorted(set(d) - fields)
            return f"fields differ (missing {missing}, unexpected {extra})"
        number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
        for key in ("losses", "step_losses"):
            if not isinstance(d[key], list) or not all(number(v) for v in d[key]):
                return f"'{key}' must be a list of numbers"
        if not isinstance(d["epochs_logs"], list) or not all(isinstance(e, dict) for e in d["epochs_logs"]):
            return "'epochs_logs' must be a list of dicts"
        for key in ("steps", "skipped", "start_step", "start_epoch"):
            v = d[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                return f"'{key}' must be a non-negative int, got {v!r}"
        if len(d["step_losses"]) > d["steps"] or len(d["losses"]) != len(d["epochs_logs"]):
            return "its lengths disagree (step_losses vs steps, losses vs epochs_logs)"
        return None

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
