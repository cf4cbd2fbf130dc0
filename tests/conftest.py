"""Shared helpers for tests that drive the real command-line tools in subprocesses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def as_from_a_terminal() -> None:
    """A Popen preexec_fn: SIGINT and SIGHUP at their defaults in the child, as a shell gives them. A test
    runner started in the background (`nohup ... &`) ignores them, and so would the child: bash cannot
    trap a signal ignored at its start, and Python then raises no KeyboardInterrupt."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def run_cli(tool: str, *args: str, cwd: Path, timeout: float = 300, check: bool = False,
            fixture_envs: bool = False) -> subprocess.CompletedProcess:
    """Run an installed console script (hmasd-train, hmasd-eval) and capture its output.

    `fixture_envs`: put tests/ on PYTHONPATH, so that "fixture_envs:make_..." env ids import."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    if fixture_envs:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "tests"), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([str(BIN / tool), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def smoke_config() -> str:
    return str(ROOT / "configs" / "smoke.yaml")


def require_extra(module: str, extra: str) -> None:
    """Skip the calling test module when an optional extra is not installed, unless
    HMASD_REQUIRE_EXTRAS=1 (the test command sets it, so CI fails instead of skipping silently)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        message = f"needs the optional extra '{extra}' (pip install -e '.[{extra}]')"
        if os.environ.get("HMASD_REQUIRE_EXTRAS") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)
