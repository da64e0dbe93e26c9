"""Progress over the points of a sweep or grid: a tqdm bar with the current point and an
ETA on a terminal, one plain log line per point otherwise (logs, CI, pipes)."""

from __future__ import annotations

import sys
import time


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Report ``total`` points: :meth:`begin` names the point being computed, :meth:`end`
    reports it finished. ``bar=None`` picks the bar when ``stream`` is a terminal."""

    def __init__(self, total: int, *, desc: str, stream=None, bar: bool | None = None):
        self.total = int(total)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._t0 = time.perf_counter()
        if bar is None:
            bar = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit="point", file=self.stream, dynamic_ncols=True,
                             leave=True)

    def begin(self, label: str) -> None:
        """The point ``label`` is being computed now."""
        if self._bar is not None:
            self._bar.set_postfix_str(label)

    def end(self, label: str, message: str = "") -> None:
        """The point ``label`` is finished; ``message`` says what it gave."""
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
            return
        elapsed = time.perf_counter() - self._t0
        eta = elapsed / self.done * (self.total - self.done)
        text = f"{self.desc}: [{self.done}/{self.total}] {label}"
        if message:
            text += f": {message}"
        text += f"; elapsed {_fmt_seconds(elapsed)}, ETA {_fmt_seconds(eta)}"
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the bar (or the last line) and release the stream."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
