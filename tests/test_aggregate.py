"""hmasd.stats (IQM, stratified bootstrap, first step reaching a threshold) against hand-computed
values, and scripts/aggregate_runs.py end to end on small logs written here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT))  # this checkout's hmasd.stats, whichever hmasd is installed
from hmasd.aggregate import band, grouped  # noqa: E402
from hmasd.stats import first_reach, iqm, stratified_bootstrap_ci  # noqa: E402

SCRIPT = ROOT / "scripts" / "aggregate_runs.py"


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.arange(1, 9)) == 4.5  # mean of 3, 4, 5, 6
    assert iqm([10.0, 1.0, 4.0, 2.0]) == 3.0  # sorted 1, 2, 4, 10: mean of 2 and 4
    assert iqm([1.0, 2.0, 100.0]) == pytest.approx(103 / 3)  # floor(0.75) = 0: nothing cut
    assert iqm([1, 2, 3, 4, 5, 1000]) == pytest.approx(3.5)  # floor(1.5) = 1 cut each end: 2..5


def test_iqm_reduces_one_axis():
    rows = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 100]])
    np.testing.assert_allclose(iqm(rows, axis=-1), [4.5, 5.5])  # middles 3..6 and 4..7


def test_iqm_matches_scipy_trim_mean():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for n in range(1, 23):
        x = rng.normal(size=n)
        assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25))


def test_bootstrap_of_identical_values_is_a_point():
    assert stratified_bootstrap_ci(np.full((5, 2), 2.5), np.mean, reps=200, rng=0) == (2.5, 2.5, 2.5)


def test_bootstrap_interval_holds_the_point_and_stays_in_the_data_range():
    scores = np.array([0.0, 1.0, 3.0, 7.0, 10.0])
    for statistic in (np.mean, iqm):
        point, lo, hi = stratified_bootstrap_ci(scores, statistic, reps=2000, rng=1)
        assert point == pytest.approx(statistic(scores))
        assert 0.0 <= lo < point < hi <= 10.0


def test_seeded_bootstrap_is_reproducible():
    scores = np.random.default_rng(0).normal(size=(6, 3))
    first = stratified_bootstrap_ci(scores, iqm, reps=500, rng=7)
    assert stratified_bootstrap_ci(scores, iqm, reps=500, rng=7) == first
    assert stratified_bootstrap_ci(scores, iqm, reps=500, rng=8) != first


def test_bootstrap_keeps_the_run_count_of_every_task():
    # Task 0 scores lie in [0, 1), task 1 in [10, 13): the number of values >= 10 in a resample is the
    # number of runs drawn from task 1. Stratified, it is always 3; pooled, it would vary.
    scores = np.array([[0.0, 10.0], [0.5, 11.0], [0.9, 12.0]])
    per_task_count = lambda x, axis=-1: np.sum(np.asarray(x) >= 10, axis=axis)  # noqa: E731
    assert stratified_bootstrap_ci(scores, per_task_count, reps=1000, rng=0) == (3.0, 3.0, 3.0)
    # and the runs are resampled within the task: the mean of task 0 values varies
    _, lo, hi = stratified_bootstrap_ci(scores[:, :1], np.mean, reps=1000, rng=0)
    assert lo < hi


def test_first_reach():
    steps, values = [100, 200, 300, 400], [0.1, 0.5, 0.4, 0.9]
    assert first_reach(steps, values, 0.5) == 200  # >= counts; later dips do not matter
    assert first_reach(steps, values, 0.85) == 400
    assert first_reach(steps, values, 0.95) is None


def _write_run(path: Path, evals: list[tuple[int, float]], end: int | None = None) -> None:
    # As the trainer logs an evaluation: once as "metrics" and once as "evaluation", with training
    # metrics rows between them that lack the Eval keys. `end`: a last training row after the
    # last evaluation (the run trained on to that step).
    rows = []
    for step, value in evals:
        rows.append({"event": "metrics", "env_steps": step, "Rewards/Episode/TeamReturn_Mean": -1.0})
        rows.append({"event": "metrics", "env_steps": step, "Eval/SuccessRate": value, "Eval/TeamReturn_Mean": 10 * value})
        rows.append({"event": "evaluation", "env_steps": step, "Eval/SuccessRate": value, "Eval/TeamReturn_Mean": 10 * value})
    if end is not None:
        rows.append({"event": "metrics", "env_steps": end, "Rewards/Episode/TeamReturn_Mean": -1.0})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _aggregate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def _rows(markdown: str) -> dict[tuple[str, str], list[str]]:
    """(label, second column) -> the cells of each data row of the Markdown tables."""
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and not line.startswith("|---") and cells[0] != "label":
            rows[(cells[0], cells[1])] = cells
    return rows


def test_script_reports_n_mean_iqm_and_first_reach(tmp_path):
    _write_run(tmp_path / "a1.jsonl", [(1000, 0.2), (2000, 0.6), (3000, 1.0)])
    _write_run(tmp_path / "a2.jsonl", [(1000, 0.4), (2500, 1.0)])
    _write_run(tmp_path / "b1.jsonl", [(500, 0.5), (1500, 0.5)], end=2100)  # trained past 2000
    _write_run(tmp_path / "b2.jsonl", [(900, 0.5), (2000, 0.5)])
    md, png = tmp_path / "out" / "table.md", tmp_path / "out" / "curves.png"
    proc = _aggregate("--metric", "Eval/SuccessRate", "--at", "1000,2000", "--threshold", "0.6",
                      "--run", f"A={tmp_path / 'a1.jsonl'}", "--run", f"B={tmp_path / 'b1.jsonl'}",
                      "--run", f"A={tmp_path / 'a2.jsonl'}", "--run", f"B={tmp_path / 'b2.jsonl'}",
                      "--out-md", str(md), "--png", str(png), "--iqm")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(proc.stdout)
    # A at 1000: 0.2, 0.4; at 2000: a1's 0.6 and a2's last evaluation before, 0.4 (2500 is later).
    # Two runs: nothing is cut, IQM = mean; a resample of two values has mean v1, (v1+v2)/2 or v2,
    # and each of the ends has probability 1/4, so the 2.5 and 97.5 percentiles are the ends.
    assert rows[("A", "1000")][2:] == ["2", "0.300 [0.200, 0.400]", "0.300 [0.200, 0.400]"]
    assert rows[("A", "2000")][2:] == ["2", "0.500 [0.400, 0.600]", "0.500 [0.400, 0.600]"]
    assert rows[("B", "1000")][2:] == ["2", "0.500 [0.500, 0.500]", "0.500 [0.500, 0.500]"]
    assert rows[("B", "2000")][2:] == ["2", "0.500 [0.500, 0.500]", "0.500 [0.500, 0.500]"]
    assert rows[("A", "2/2")][2] == "2000, 2500"
    assert rows[("B", "0/2")][2] == "never, never"
    assert md.read_text().strip() == proc.stdout.replace(f"wrote {png}", "").strip()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_script_defaults_to_the_team_return(tmp_path):
    _write_run(tmp_path / "a1.jsonl", [(1000, 0.2)])
    proc = _aggregate("--at", "1000", "--run", f"A={tmp_path / 'a1.jsonl'}")
    assert proc.returncode == 0, proc.stderr
    assert "mean Eval/TeamReturn_Mean" in proc.stdout
    assert _rows(proc.stdout)[("A", "1000")][3] == "2.000 [2.000, 2.000]"


@pytest.mark.parametrize("case, expected", [
    ("missing", "no log matches"),
    ("metric", "no log logs the metric 'Eval/Nope'"),
    ("early", "no evaluation at or before env step 500"),
    # a run stopped at 1,200 has no score at 2,000: its last evaluation is not carried on past its end
    ("late", "got only to env step 1200, not to 2000"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, case, expected):
    _write_run(tmp_path / "a1.jsonl", [(1000, 0.2)], end=1200)
    log = tmp_path / ("absent.jsonl" if case == "missing" else "a1.jsonl")
    metric = "Eval/Nope" if case == "metric" else "Eval/SuccessRate"
    at = {"early": "500", "late": "2000"}.get(case, "1000")
    proc = _aggregate("--metric", metric, "--at", at, "--run", f"A={log}")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and expected in proc.stderr, proc.stderr


def test_band_stops_where_the_shortest_run_stopped(tmp_path):
    """The plotted curve of a label covers only the steps every run reached: a run stopped at 1,200
    does not hold its last evaluation on to 3,000 in the other run's company."""
    _write_run(tmp_path / "long.jsonl", [(1000, 0.2), (2000, 0.6), (3000, 1.0)])
    _write_run(tmp_path / "short.jsonl", [(500, 0.5), (1000, 0.5)], end=1200)
    groups = grouped([f"A={tmp_path / 'long.jsonl'}", f"A={tmp_path / 'short.jsonl'}"], "Eval/SuccessRate")
    steps, points = band(groups["A"], np.mean, reps=100, seed=0)
    assert steps == [1000]
    assert points[0][0] == pytest.approx(0.35)
