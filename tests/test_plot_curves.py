"""scripts/plot_curves.py and curve_table.py read a run's logs as one curve, whatever their time-stamped
names."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_log(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_a_glob_joins_a_run_and_its_resume_in_start_order(tmp_path):
    plot_curves = _load("plot_curves")
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


def test_a_resume_may_go_back_to_its_checkpoint(tmp_path):
    """A run stopped at 300 and resumed from its checkpoint at 200 repeats the steps after 200 in the
    same file: still one run (resume is exact, so the repeated points agree)."""
    plot_curves = _load("plot_curves")
    _write_log(tmp_path / "run.jsonl", [
        {"event": "metrics", "env_steps": s, "Eval/SuccessRate": s / 1000} for s in (100, 200, 300, 300, 400)
    ])
    xs, _ = plot_curves.series(str(tmp_path / "run.jsonl"), "Eval/SuccessRate")
    assert xs == [100, 200, 300, 300, 400]


def test_a_glob_that_joins_two_seeds_is_refused(tmp_path):
    """"x_s[0-9]/logs/*.jsonl" over two seeds would interleave their points into one curve."""
    plot_curves = _load("plot_curves")
    for seed in (1, 2):
        (tmp_path / f"x_s{seed}").mkdir()
        _write_log(tmp_path / f"x_s{seed}" / f"x_s{seed}.jsonl", [
            {"event": "metrics", "env_steps": s, "Eval/SuccessRate": seed / 10} for s in (100, 200, 300)
        ])
    with pytest.raises(ValueError, match=r"joins more than one run: env steps start again at 100 in .*x_s2"):
        plot_curves.series(str(tmp_path / "x_s[0-9]" / "*.jsonl"), "Eval/SuccessRate")


def test_a_pattern_that_matches_nothing_names_itself(tmp_path):
    plot_curves = _load("plot_curves")
    pattern = str(tmp_path / "missing" / "*.jsonl")
    with pytest.raises(FileNotFoundError, match="no log matches .*missing"):
        plot_curves.series(pattern, "Eval/SuccessRate")



def test_curve_table_means_each_bin_of_a_run_and_its_resume(tmp_path, capsys):
    curve_table = _load("curve_table")
    metric = "Rewards/Episode/TeamReturn_Mean"
    _write_log(tmp_path / "run_20261125-080000.jsonl", [
        {"event": "metrics", "env_steps": 50, metric: -60.0},
        {"event": "metrics", "env_steps": 100, metric: -50.0},  # a bin is (lo, hi]: still the first
        {"event": "metrics", "env_steps": 150, "Eval/TeamReturn_Mean": 0.0},  # another metric
    ])
    _write_log(tmp_path / "run_20261125-090000.jsonl", [  # the resume
        {"event": "metrics", "env_steps": 250, metric: -40.0},
        {"event": "metrics", "env_steps": 300, metric: -30.0},
        {"event": "metrics", "env_steps": 302, metric: 99.0},  # past the last whole bin: not shown
    ])
    assert curve_table.main([f"A={tmp_path}/*.jsonl", "--metric", metric, "--bin", "100"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == f"| {metric} | 0-0.0001M | 0.0001-0.0002M | 0.0002-0.0003M |"
    assert rows[2] == "| A | -55.0 |  | -35.0 |"


def test_curve_table_refuses_a_run_without_a_label(capsys):
    curve_table = _load("curve_table")
    assert curve_table.main(["runs/x/logs/*.jsonl", "--metric", "Eval/SuccessRate"]) == 2
    err = capsys.readouterr().err
    assert "'runs/x/logs/*.jsonl' is not LABEL=LOG" in err and len(err.strip().splitlines()) == 1


def test_running_mean_averages_each_point_with_the_ones_before_it():
    plot_curves = _load("plot_curves")
    assert plot_curves.running_mean([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert plot_curves.running_mean([1.0, 3.0], 1) == [1.0, 3.0]
