"""Training runs on disk: runs/<run-id>/ with config, status, history, metrics and the model.

Every file is written atomically (temp file + rename in the same folder), so a reader (the dashboard
polling a live run) never sees a half-written file and a killed process never leaves one behind.
"""

from __future__ import annotations

import csv
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from trashure.config import MODEL_FILENAME, default_runs_dir
from trashure.files import atomic_write_json, atomic_write_text, read_json
from trashure.errors import RunError

STATES = ("queued", "running", "done", "failed", "cancelled", "unreadable")
ACTIVE_STATES = ("queued", "running")
CANCEL_FLAG = "cancel.requested"
LAUNCH_GRACE_S = 60.0


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) still answers kill(0); it is dead for us.
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def new_run_id(mode: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{mode}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Run:
    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def model_path(self) -> Path:
        return self.dir / MODEL_FILENAME

    @property
    def has_model(self) -> bool:
        return self.model_path.is_file() and self.model_path.stat().st_size > 0

    def _object(self, name: str) -> dict[str, Any] | None:
        """A JSON object file of the run folder; None when it is missing, truncated or not an object."""
        value = read_json(self.dir / name)
        return value if isinstance(value, dict) else None

    @property
    def unreadable(self) -> str | None:
        """Which of the run's own files cannot be read (a truncated or hand-edited file), if any."""
        bad = [name for name in ("config.json", "status.json") if self._object(name) is None]
        return ", ".join(bad) or None

    def config(self) -> dict[str, Any]:
        return self._object("config.json") or {}

    def data_dirs(self) -> list[Path]:
        """The data folders the run was trained on (one for runs made before folders could be merged)."""
        config = self.config()
        dirs = config.get("data_dirs") or ([config["data_dir"]] if config.get("data_dir") else [])
        return [Path(d) for d in dirs]

    def raw_status(self) -> dict[str, Any]:
        return self._object("status.json") or {}

    def status(self) -> dict[str, Any]:
        """The status, with a stale 'running' of a dead process reported as failed, and a run whose own
        files cannot be read as 'unreadable'."""
        if self.unreadable:
            return {"state": "unreadable", "error": f"{self.unreadable} of this run cannot be read "
                    "(truncated or edited by hand)"}
        status = self.raw_status()
        if status.get("state") in ACTIVE_STATES and status.get("pid") and not pid_alive(status["pid"]):
            status = {**status, "state": "failed",
                      "error": status.get("error") or "The training process died without finishing "
                      "(killed, out of memory or the machine restarted).", "stale": True}
        elif status.get("state") == "queued" and not status.get("pid") and self._age_seconds() > LAUNCH_GRACE_S:
            # The launcher records the pid right after starting the process; a queued run without one
            # after this long was never started (its launcher was killed) and must not block the next.
            status = {**status, "state": "failed", "stale": True,
                      "error": "The run was queued but its training process never started."}
        return status

    def _age_seconds(self) -> float:
        try:
            return time.time() - (self.dir / "config.json").stat().st_mtime
        except OSError:
            return 0.0

    @property
    def state(self) -> str:
        return self.status().get("state", "unknown")

    def update_status(self, **fields: Any) -> dict[str, Any]:
        status = {**self.raw_status(), **fields, "updated_at": now_iso()}
        atomic_write_json(self.dir / "status.json", status)
        return status

    def history(self) -> list[dict[str, float]]:
        try:
            with open(self.dir / "history.csv", newline="") as f:
                return [{k: v if k == "stage" else float(v) if v not in ("", None) else float("nan")
                         for k, v in row.items()} for row in csv.DictReader(f)]
        except (OSError, ValueError, TypeError, csv.Error):  # missing, or not a history this code wrote
            return []

    def metrics(self) -> dict[str, Any] | None:
        return self._object("metrics.json")

    def predictions(self) -> list[dict[str, str]]:
        try:
            with open(self.dir / "predictions.csv", newline="") as f:
                return list(csv.DictReader(f))
        except OSError:
            return []

    def request_cancel(self) -> None:
        atomic_write_text(self.dir / CANCEL_FLAG, now_iso())

    @property
    def cancel_requested(self) -> bool:
        return (self.dir / CANCEL_FLAG).exists()

    def log_path(self) -> Path:
        return self.dir / "train.log"


def create_run(config: dict[str, Any], data_dir: str | Path | list[str | Path], runs_dir: str | Path | None = None,
               run_id: str | None = None) -> Run:
    runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
    run = Run(runs_dir / (run_id or new_run_id(config.get("mode", "run"))))
    try:
        run.dir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise RunError(f"run folder {run.dir} already exists") from None
    except OSError as exc:
        raise RunError(f"cannot create run folder {run.dir}: {exc.strerror}") from None
    dirs = [str(Path(d).resolve()) for d in ([data_dir] if isinstance(data_dir, (str, Path)) else data_dir)]
    atomic_write_json(run.dir / "config.json", {**config, "data_dir": dirs[0], "data_dirs": dirs})
    run.update_status(state="queued", created_at=now_iso(), epoch=0, epochs=config.get("epochs"))
    return run


def list_runs(runs_dir: str | Path | None = None) -> list[Run]:
    """Runs, newest first (run ids start with a UTC time stamp)."""
    runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
    if not runs_dir.is_dir():
        return []
    runs = [Run(p) for p in runs_dir.iterdir() if p.is_dir() and (p / "config.json").exists()]
    return sorted(runs, key=lambda r: (r.raw_status().get("created_at", ""), r.id), reverse=True)


def get_run(run_id: str, runs_dir: str | Path | None = None) -> Run:
    runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
    run = Run(runs_dir / run_id)
    if not (run.dir / "config.json").exists():
        raise RunError(f"no run {run_id!r} in {runs_dir}")
    return run


def active_runs(runs: Iterable[Run]) -> list[Run]:
    return [r for r in runs if r.state in ACTIVE_STATES]


def best_val_accuracy(history: list[dict[str, Any]]) -> float:
    """Validation accuracy at the lowest validation loss of the current stage: the weights early stopping
    keeps (NaN before the first epoch)."""
    if not history:
        return float("nan")
    stage = [h for h in history if h.get("stage") == history[-1].get("stage")]
    return float(min(stage, key=lambda h: float(h["val_loss"]))["val_accuracy"])


def remaining_seconds(status: dict[str, Any], history: list[dict[str, Any]]) -> float | None:
    """A live run's time left: from the progress of its current phase (features, data) when it has one,
    else from the mean epoch time over the epochs left (an upper bound: early stopping may end it sooner)."""
    if status.get("state") != "running":
        return None
    fraction, started = status.get("phase_progress") or 0.0, status.get("phase_started_unix")
    if status.get("phase") in ("features", "data") and started and 0.01 < fraction < 1:
        return (time.time() - started) * (1 - fraction) / fraction
    epochs = status.get("epochs") or 0
    if not history or not epochs:
        return None
    per_epoch = sum(float(h["seconds"]) for h in history) / len(history)
    return per_epoch * max(epochs - len(history), 0)


def elapsed_seconds(status: dict[str, Any]) -> float | None:
    start = status.get("started_at_unix")
    if not start:
        return None
    end = status.get("finished_at_unix") or time.time()
    return max(0.0, end - start)
