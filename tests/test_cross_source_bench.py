"""bench/cross_source.py reports saved runs without training: seeds run one process each must report as one run,
and a fold saved twice must stop the report rather than count twice in the mean."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "cross_source.py"


def load():
    spec = importlib.util.spec_from_file_location("cross_source", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def saved_run(path: Path, folds: list[tuple[int, float]]) -> str:
    rows = [{"holdout": "mixed4", "seed": seed, "accuracy": accuracy, "val_accuracy": 0.9} for seed, accuracy in folds]
    path.write_text(json.dumps({"recipe": {}, "rows": rows}))
    return str(path)


def report(monkeypatch, capsys, *argv: str) -> str:
    monkeypatch.setattr(sys, "argv", ["cross_source.py", *argv])
    assert load().main() == 0
    return capsys.readouterr().out


def test_several_saved_runs_report_as_one(tmp_path, monkeypatch, capsys):
    first = saved_run(tmp_path / "a.json", [(4, 0.60), (5, 0.70)])
    second = saved_run(tmp_path / "b.json", [(42, 0.80)])
    out = report(monkeypatch, capsys, "--rows", first, "--rows", second)
    # the mean of three folds (70%), sd 10 points, SE 10 / sqrt(3)
    assert "| mixed4 | 3 | 70.00% | 10.00% | 5.77% | 60.00%-80.00% | 90.00% |" in out
    assert [line.split("|")[2].strip() for line in out.splitlines() if line.startswith("| mixed4 | ")][:3] == \
        ["4", "5", "42"]


def test_a_fold_saved_twice_stops_the_report(tmp_path, monkeypatch, capsys):
    first = saved_run(tmp_path / "a.json", [(4, 0.60), (5, 0.70)])
    again = saved_run(tmp_path / "b.json", [(5, 0.72)])
    with pytest.raises(SystemExit, match=r"seed 5 is in both .*a\.json and .*b\.json"):
        report(monkeypatch, capsys, "--rows", first, "--rows", again)


def test_the_paired_report_compares_the_merged_run_fold_by_fold(tmp_path, monkeypatch, capsys):
    first = saved_run(tmp_path / "a.json", [(4, 0.60)])
    second = saved_run(tmp_path / "b.json", [(5, 0.70)])
    before = saved_run(tmp_path / "before.json", [(4, 0.58), (5, 0.71)])
    out = report(monkeypatch, capsys, "--rows", first, "--rows", second, "--against", before)
    assert "| mixed4 | 4 | 58.00% | 60.00% | +2.00 |" in out and "| mixed4 | 5 | 71.00% | 70.00% | -1.00 |" in out
    assert "mean change +0.50 points" in out
