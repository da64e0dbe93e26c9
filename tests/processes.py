"""Helpers for tests that kill a writer mid-run: stored CSV rows and a SIGKILL at a row count."""

import csv
import random
import signal
import subprocess
import time
from pathlib import Path


def csv_rows(path) -> list[dict]:
    """The rows of a stored CSV, as written."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def run_until_rows(cmd, root, at_least: int, env, *, jitter: float = 0.05):
    """Start ``cmd``; SIGKILL it as soon as the first CSV under ``root`` holds ``at_least``
    rows (after a random pause of up to ``jitter`` s, to land anywhere in the next stretch
    of work), or let it end. Returns ``(exit status, rows seen)``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    rows = 0
    while proc.poll() is None and time.time() < deadline:
        found = list(Path(root).rglob("*.csv"))
        if found:
            try:
                rows = len(csv_rows(found[0]))
            except (OSError, csv.Error):
                rows = 0
            if rows >= at_least:
                time.sleep(random.uniform(0.0, jitter))
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.003)
    proc.wait()
    return proc.returncode, rows
