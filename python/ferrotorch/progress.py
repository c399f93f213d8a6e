"""A live progress bar for training loops, and floDl's epoch line for ``fit``.

On a terminal (``stream.isatty()``) :class:`ProgressBar` redraws one line in
place with ``\\r``::

    train:  420/1000 |############----------------|  85.3 steps/s  ETA 6.8s  loss=0.1234

When the stream is not a terminal (a log file, CI, a notebook capture) it
prints plain lines instead, with no control characters: one each time another
``every`` fraction of the total is reached (default 10%), or ``interval``
seconds have passed since the last line, and always at the end::

    train: 100/1000 (10%)  85.3 steps/s  ETA 10.5s  loss=0.1234

API::

    bar = ProgressBar(total=len(loader), desc="epoch 1/5")
    for x, y in loader:
        loss = trainer.step(x, y)
        bar.update(1, loss=loss)          # metrics are optional keyword arguments
    bar.close()                           # or: with ProgressBar(...) as bar: ...

``update(n, **metrics)`` advances by ``n`` steps and replaces the shown value
of each metric passed; ``set_metrics(**metrics)`` only replaces values.
Reading a loss is a host sync, so a loop that cares can call
``bar.update(k, loss=...)`` every ``k`` steps instead of every step. A bar
with ``total=None`` counts steps without a bar or an ETA. ``FLODL_VERBOSITY=0``
silences it, like the monitor.

For ``Trainer.fit(progress=True)``:

* per step: one :class:`ProgressBar` per epoch, as above, with
  ``desc=epoch_desc(epoch, epochs)`` (``"epoch 3/10"``); close it before
  printing the epoch line;
* per epoch: :func:`fit_progress_line` returns floDl's epoch line (the
  string ``Trainer.fit`` has been printing)::

      print(fit_progress_line(epoch, epochs, epoch_secs, {"loss": loss}, elapsed=secs_since_start))
      # "  epoch  3/10  loss=0.1234  [1.5s  ETA 10.5s]"  (no ETA on the last epoch)
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any, Dict, Optional

from .errors import ConfigError, InputTypeError
from .monitor.format import epoch_counter, epoch_line, format_duration, format_number
from .monitor.output import verbosity

__all__ = ["ProgressBar", "fit_progress_line", "epoch_desc"]

#: floDl's epoch line (``monitor.epoch_line``) under the name ``fit`` uses.
fit_progress_line = epoch_line


def epoch_desc(epoch: int, epochs: int) -> str:
    """The bar label for epoch ``epoch`` (from 0) of ``epochs``: ``"epoch  3/10"``."""
    return epoch_counter(epoch, epochs)


def _clean(text: str) -> str:
    """Drops control characters so a label cannot break the line discipline."""
    return "".join(c if c.isprintable() else " " for c in text)


def _rate(steps: int, secs: float) -> str:
    if secs <= 0 or steps <= 0:
        return "? steps/s"
    r = steps / secs
    if r >= 100:
        return f"{r:.0f} steps/s"
    if r >= 1:
        return f"{r:.1f} steps/s"
    return f"{1 / r:.1f} s/step"


class ProgressBar:
    """Step counter with a bar, rate, ETA and metrics; in-place on a terminal, plain lines otherwise.

    Args:
        total: steps expected (``None``: unknown; no bar, no ETA).
        desc: a label printed first.
        stream: where to write (default ``sys.stdout`` at construction).
        width: characters of the bar on a terminal.
        every: on a non-terminal, print each time this fraction of ``total`` is passed.
        interval: on a non-terminal, also print when this many seconds passed since the last line.
        min_redraw: on a terminal, the least seconds between redraws (the last step always draws).
        tty: force terminal (True) or plain (False) mode instead of asking ``stream.isatty()``.
    """

    def __init__(
        self,
        total: Optional[int],
        desc: str = "",
        stream: Optional[IO[str]] = None,
        width: int = 28,
        every: float = 0.1,
        interval: float = 10.0,
        min_redraw: float = 0.1,
        tty: Optional[bool] = None,
    ) -> None:
        if total is not None:
            if isinstance(total, bool) or not isinstance(total, int):
                raise InputTypeError(f"ProgressBar: total must be an int or None, got {type(total).__name__}")
            if total < 0:
                raise ConfigError(f"ProgressBar: total must be non-negative, got {total}")
        if not 0 < every <= 1:
            raise ConfigError(f"ProgressBar: every must be in (0, 1], got {every}")
        if interval <= 0 or min_redraw < 0 or width < 1:
            raise ConfigError(
                f"ProgressBar: interval must be > 0, min_redraw >= 0 and width >= 1 "
                f"(got interval={interval}, min_redraw={min_redraw}, width={width})"
            )
        self.total = total
        self.desc = _clean(str(desc))
        self.stream = sys.stdout if stream is None else stream
        self.width = width
        self.every = every
        self.interval = interval
        self.min_redraw = min_redraw
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            try:
                tty = bool(isatty()) if callable(isatty) else False
            except (ValueError, OSError):  # a closed stream
                tty = False
        self.tty = tty
        self.n = 0
        self.metrics: Dict[str, float] = {}
        self.closed = False
        self._start = time.perf_counter()
        # a terminal draws at the first update; plain lines wait for a mark or `interval`
        self._last_draw = -math.inf if tty else self._start
        self._last_len = 0
        self._next_mark = self._mark_after(0)
        self._printed_n = -1
        self._silent = verbosity() == 0

    def _mark_after(self, n: int) -> Optional[int]:
        """The next step count at which a plain line is due (every ``every`` of the total)."""
        if not self.total:
            return None
        k = math.floor(n / (self.total * self.every) + 1e-9) + 1
        return min(self.total, math.ceil(k * self.total * self.every - 1e-9))

    # -- public

    def update(self, n: int = 1, **metrics: Any) -> None:
        """Advances by ``n`` steps and sets the shown metrics (e.g. ``loss=0.12``)."""
        if self.closed:
            raise ConfigError("ProgressBar.update: the bar is closed")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"ProgressBar.update: n must be a non-negative int, got {n!r}")
        self.n += n
        self._set(metrics)
        self._maybe_draw(final=False)

    def set_metrics(self, **metrics: Any) -> None:
        """Replaces the shown metric values without advancing."""
        self._set(metrics)

    def close(self) -> None:
        """Draws the final state and ends the line. Safe to call twice."""
        if self.closed:
            return
        self._maybe_draw(final=True)
        if self.tty and not self._silent and self._last_len:
            self.stream.write("\n")
            self.stream.flush()
        self.closed = True

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def line(self) -> str:
        """The current line's text (terminal or plain form), without control characters."""
        secs = self.elapsed
        parts = []
        prefix = f"{self.desc}: " if self.desc else ""
        if self.total is not None:
            w = len(str(self.total))
            if self.tty:
                frac = min(self.n / self.total, 1.0) if self.total else 1.0
                filled = int(frac * self.width)
                parts.append(
                    f"{prefix}{self.n:>{w}}/{self.total} |{'#' * filled}{'-' * (self.width - filled)}|"
                )
            else:
                pct = int(100 * self.n / self.total) if self.total else 100
                parts.append(f"{prefix}{self.n}/{self.total} ({pct}%)")
        else:
            parts.append(f"{prefix}{self.n}")
        parts.append(_rate(self.n, secs))
        if self.total is not None and self.n < self.total and self.n > 0:
            parts.append(f"ETA {format_duration(secs / self.n * (self.total - self.n))}")
        elif self.total is not None and self.n >= self.total:
            parts.append(f"in {format_duration(secs)}")
        for k, v in self.metrics.items():
            parts.append(f"{k}={format_number(v)}")
        return "  ".join(parts)

    # -- internals

    def _set(self, metrics: Dict[str, Any]) -> None:
        if metrics:
            self._printed_n = -1  # new values: the next draw is not a repeat
        for k, v in metrics.items():
            try:
                self.metrics[_clean(str(k))] = float(v)
            except (TypeError, ValueError):
                raise InputTypeError(
                    f"ProgressBar: metric {k!r} must be a number, got {type(v).__name__}"
                ) from None

    def _maybe_draw(self, final: bool) -> None:
        if self._silent:
            return
        now = time.perf_counter()
        done = self.total is not None and self.n >= self.total
        if self.tty:
            if final and self.n == self._printed_n:
                return  # the last update already drew this state
            if final or done or now - self._last_draw >= self.min_redraw:
                text = self.line()
                pad = max(self._last_len - len(text), 0)  # wipe the tail of a longer previous line
                self.stream.write("\r" + text + " " * pad)
                self.stream.flush()
                self._last_len = len(text)
                self._last_draw = now
                self._printed_n = self.n
            return
        due = (
            (self._next_mark is not None and self.n >= self._next_mark)
            or now - self._last_draw >= self.interval
            or final
        )
        if due and self.n != self._printed_n:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._printed_n = self.n
            self._last_draw = now
            self._next_mark = self._mark_after(self.n)
