"""One logged epoch (:class:`EpochRecord`) and the metric forms ``Monitor.log`` accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional

from ..errors import InputTypeError


@dataclass
class EpochRecord:
    """One logged epoch: ``epoch`` counts from 0 (as floDl's), ``metrics`` keeps logging order.

    ``resources`` has ``cpu_pct``, ``ram_used``, ``ram_total``, ``gpu_pct``,
    ``vram_alloc``, ``vram_total``; each is ``None`` when unavailable.
    """

    epoch: int
    duration_secs: float
    metrics: Dict[str, float] = field(default_factory=dict)
    resources: Dict[str, Optional[float]] = field(default_factory=dict)


def to_metrics(metrics: Any) -> Dict[str, float]:
    """dict | [(k, v), ...] | object with latest_metrics() | (that object, extras)."""
    if isinstance(metrics, tuple) and len(metrics) == 2 and hasattr(metrics[0], "latest_metrics"):
        base = to_metrics(metrics[0])
        base.update(to_metrics(metrics[1]))
        return base
    if hasattr(metrics, "latest_metrics"):
        metrics = metrics.latest_metrics()
    if metrics is None:
        return {}
    if isinstance(metrics, dict):
        pairs: Iterable[Any] = metrics.items()
    elif isinstance(metrics, (str, bytes)):
        raise InputTypeError(f"Monitor.log: metrics must be a dict or (name, value) pairs, got {metrics!r}")
    else:
        try:
            pairs = list(metrics)
        except TypeError:
            raise InputTypeError(
                "Monitor.log: metrics must be a dict, a list of (name, value) pairs or an object "
                f"with latest_metrics(), got {type(metrics).__name__}"
            ) from None
    out: Dict[str, float] = {}
    for item in pairs:
        try:
            name, val = item
        except (TypeError, ValueError):
            raise InputTypeError(
                f"Monitor.log: each metric must be a (name, value) pair, got {item!r}"
            ) from None
        try:
            out[str(name)] = float(val)
        except (TypeError, ValueError):
            raise InputTypeError(
                f"Monitor.log: metric {name!r} must be a number, got {type(val).__name__}"
            ) from None
    return out
