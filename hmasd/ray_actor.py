"""The Ray backend's env worker: an actor that hosts a contiguous slice of a RayVecEnv's envs.

The envs live in an `env_worker.EnvSlice`, the class the subprocess workers use, so both backends
seed, step, auto-reset and snapshot with the same code and produce the same arrays. Instead of shared
memory, the slice writes into one private buffer laid out by `env_worker.array_layout` (this slice's
rows only), and `reset`/`step` return that buffer whole: one contiguous array, which Ray serialises
with a single copy when the method returns (so the next call may overwrite it).

Every method answers with the subprocess protocol's tuples (see hmasd/env_worker.py): ("ready", ...)
or ("ok", ...), or ("error", command, one_line, traceback_text, is_env_error) when anything raised;
then the slice's state is not to be trusted and the driver shuts every actor down.

Ray imports this module by name in its worker processes (the class is registered by reference), so
it must import neither torch nor ray.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Callable

import numpy as np

from hmasd.env_worker import EnvSlice, array_layout, array_views, one_line


def local_layout(spec: Any, num_envs: int) -> tuple[dict, int]:
    """The layout of one slice's buffer (`num_envs` rows); the driver decodes replies with the same."""
    return array_layout(num_envs, spec.num_agents, spec.obs_dim, spec.state_dim, spec.action_kind,
                        spec.action_dim, spec.mask_dim)


def _error(command: str, exc: BaseException) -> tuple:
    is_env_error = False
    try:
        from hmasd_envs import EnvError

        is_env_error = isinstance(exc, EnvError)
    except Exception:
        pass
    return ("error", command, one_line(exc), traceback.format_exc(), is_env_error)


def _answer(command: str, fn: Callable[[], tuple]) -> tuple:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - any failure is reported the same way, with its traceback
        return _error(command, exc)


class EnvSliceActor:
    """Envs [lo, hi) of a RayVecEnv. Created empty; `init` builds the envs (so that a bad env id comes
    back as an answer, not as a dead actor)."""

    def __init__(self) -> None:
        self.slice: EnvSlice | None = None
        self.buf: np.ndarray | None = None

    def init(self, config: dict) -> tuple:
        """Build the envs; config as for env_worker's "init" (env_id, env_kwargs, lo, hi, seed,
        sys_path, mask_in_obs). Answers ("ready", spec, pid)."""

        def run() -> tuple:
            # The driver's sys.path entries, appended: "package.module:factory" env ids then import here
            # too, and Ray's own entries keep precedence.
            sys.path.extend(p for p in config["sys_path"] if p not in sys.path)
            self.slice = EnvSlice(config)
            spec = self.slice.envs[0].spec
            layout, size = local_layout(spec, config["hi"] - config["lo"])
            self.buf = np.zeros(size, np.uint8)
            self.slice.bind(array_views(self.buf, layout))
            return ("ready", spec, os.getpid())

        return _answer("init", run)

    def reset(self) -> tuple:
        """Reset every env of the slice; answers ("ok", buffer)."""

        def run() -> tuple:
            self.slice.reset()
            return ("ok", self.buf)

        return _answer("reset", run)

    def step(self, actions: np.ndarray) -> tuple:
        """Step every env of the slice with `actions` (its rows only); answers ("ok", buffer,
        [(env_index, stats), ...] for the episodes that ended)."""

        def run() -> tuple:
            self.slice.views["actions"][...] = actions
            episodes = self.slice.step()
            return ("ok", self.buf, episodes)

        return _answer("step", run)

    def get_state(self) -> tuple:
        """("ok", snapshots or None, seeded, None or why not), as env_worker's "get_state"."""

        def run() -> tuple:
            states, reason = self.slice.get_states()
            return ("ok", states, self.slice.seeded, reason)

        return _answer("get_state", run)

    def set_state(self, states: list[bytes], seeded: bool) -> tuple:
        """Replace the slice's envs with snapshots; the arrays keep their rows until the next step."""

        def run() -> tuple:
            self.slice.set_states(states, seeded)
            return ("ok",)

        return _answer("set_state", run)

    def render(self, local_index: int) -> tuple:
        return _answer("render", lambda: ("ok", self.slice.envs[local_index].render()))

    def close(self) -> tuple:
        """Close the envs (the driver then kills the actor)."""

        def run() -> tuple:
            if self.slice is not None:
                self.slice.close()
            return ("ok",)

        return _answer("close", run)
