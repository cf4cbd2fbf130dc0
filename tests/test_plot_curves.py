"""scripts/plot_curves.py reads a run's logs as one curve, whatever their time-stamped names."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "plot_curves.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("plot_curves", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_log(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_a_glob_joins_a_run_and_its_resume_in_start_order(tmp_path):
    plot_curves = _load_script()
    # The resumed run's file sorts after the first by its time stamp; write it first to show that
    # the order comes from the names, not from the directory listing.
    _write_log(tmp_path / "run_20261125-090000.jsonl", [
        {"event": "metrics", "env_steps": 300, "Eval/SuccessRate": 1.0},
    ])
    _write_log(tmp_path / "run_20261125-080000.jsonl", [
        {"event": "metrics", "env_steps": 100, "Eval/SuccessRate": 0.0},
        {"event": "checkpoint", "env_steps": 150, "Eval/SuccessRate": 9.0},  # not a metrics row
        {"event": "metrics", "env_steps": 200, "Rewards/Episode/TeamReturn_Mean": -5.0},  # other metric
        {"event": "metrics", "env_steps": 200, "Eval/SuccessRate": 0.5},
    ])
    xs, ys = plot_curves.series(str(tmp_path / "*.jsonl"), "Eval/SuccessRate")
    assert xs == [100, 200, 300]
    assert ys == [0.0, 0.5, 1.0]


def test_a_pattern_that_matches_nothing_names_itself(tmp_path):
    plot_curves = _load_script()
    pattern = str(tmp_path / "missing" / "*.jsonl")
    with pytest.raises(FileNotFoundError, match="no log matches .*missing"):
        plot_curves.series(pattern, "Eval/SuccessRate")
