"""Starting training runs in their own process, one at a time.

The dashboard never trains in its script thread: it creates the run folder, then starts
`python -m trashure train --run-id ...` as a detached process that keeps going when the page changes,
the browser reloads or the dashboard restarts. A file lock makes "is a run going on? if not, start
one" atomic, so two Start clicks (two tabs) cannot start two runs.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from trashure.access import require_allowed, require_writable
from trashure.config import REPO_ROOT, TrainConfig, default_runs_dir
from trashure.errors import RunError
from trashure.runs import Run, active_runs, create_run, list_runs, now_iso


@contextmanager
def runs_lock(runs_dir: Path) -> Iterator[None]:
    runs_dir.mkdir(parents=True, exist_ok=True)
    with open(runs_dir / ".launch.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def current_run(runs_dir: str | Path | None = None) -> Run | None:
    """The run that is queued or running now (stale ones of dead processes do not count)."""
    runs = active_runs(list_runs(runs_dir))
    return runs[0] if runs else None


def start_run(config: TrainConfig, data_dir: str | Path | list[str | Path],
              runs_dir: str | Path | None = None) -> Run:
    """Create a run on one data folder or several and start its training process; RunError if another
    run is going on."""
    require_writable("Training")
    dirs = [require_allowed(d) for d in ([data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir))]
    runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
    with runs_lock(runs_dir):
        going = current_run(runs_dir)
        if going is not None:
            raise RunError(f"run {going.id} is going on ({going.state}); wait for it or cancel it first.")
        run = create_run(config.to_dict(), dirs, runs_dir)
        log = open(run.log_path(), "ab")
        cmd = [sys.executable, "-m", "trashure", "train", *[a for d in dirs for a in ("--data", str(d))],
               "--run-id", run.id, "--runs-dir", str(runs_dir)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        log.close()
        # The pid now, so that a process that dies before writing its own status is seen as failed.
        run.update_status(pid=process.pid, launched_at=now_iso())
    return run


def cancel_run(run: Run) -> None:
    """Ask the run to stop: it notices within a batch, records 'cancelled' and exits cleanly."""
    require_writable("Cancelling a run")
    run.request_cancel()
