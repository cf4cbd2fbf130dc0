"""RayVecEnv: the VecEnv protocol (hmasd/records.py), with the env workers as Ray actors.

Why this shape:
- Each actor (hmasd/ray_actor.py) hosts a contiguous slice of the envs, sliced as SubprocessVecEnv slices them,
  and steps the whole slice per call: a Ray call costs about a millisecond, so one call per actor per
  step, never one per env. The slice is an `env_worker.EnvSlice`, so the arrays are bit-identical to
  SubprocessVecEnv's and LocalVecEnv's for the same seed.
- One asyncio event loop, owned by the RayVecEnv, awaits every actor's ObjectRef at once (ObjectRefs
  are awaitable) under one deadline, `step_timeout_s`.
- Any fault (an env raising, an actor dying, a deadline passed) becomes an `EnvFailure` naming the
  actor and its envs, after every actor has been shut down: the contract of SubprocessVecEnv, so the trainer's
  worker restarts (hmasd/restarts.py) treat a lost actor as a lost subprocess.
- Ray itself is started on loopback through hmasd/ray_init.py (or joined at `address`) and left
  running when the RayVecEnv closes: a restart builds new actors without paying for a new Ray. Ray
  shuts its local instance down at interpreter exit.
"""
from __future__ import annotations

import asyncio
import math
import sys
import weakref
from typing import Any

import numpy as np

from hmasd.env_worker import array_layout, array_views, copy_actions
from hmasd.orchestrator import shape_key
from hmasd.ray_actor import EnvSliceActor, local_layout
from hmasd.ray_init import init_ray
from hmasd.records import EnvFailure, EpisodeInfo, ResetBatch, StepBatch

_START_TIMEOUT_S = 120.0  # as SubprocessVecEnv: building envs imports pettingzoo & co, and Ray may start workers
_CLOSE_GRACE_S = 2.0  # for the actors to close their envs, before they are killed
_RESULTS = ("obs", "state", "alive", "reward", "terminated", "truncated", "final_obs", "final_state", "action_mask")


def _label(w: int, envs: range) -> str:
    span = f"{envs.start}" if len(envs) == 1 else f"{envs.start}-{envs.stop - 1}"
    return f"env {span} (worker {w})"


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


class _ActorPool:
    """The actors, their env ranges and the event loop that awaits them.

    Holds no reference to the RayVecEnv, so that `weakref.finalize` can close it at exit or garbage
    collection."""

    def __init__(self, ray: Any, actors: list, envs: list[range]):
        self.ray = ray
        self.actors = actors
        self.envs = envs
        self.loop = asyncio.new_event_loop()
        self.closed = False
        self.failure: EnvFailure | None = None

    def request(self, method: str, args: dict[int, tuple], timeout: float, what: str) -> dict[int, tuple]:
        """Call `method` on each named actor and wait for all their answers (worker -> reply).

        Raises EnvFailure (after shutting every actor down) if one of them reports an error, dies
        or does not answer within `timeout` seconds; hmasd_envs.EnvError (one line) when the envs could
        not be built from the env id or arguments. Any other interruption (e.g. KeyboardInterrupt) also
        shuts the actors down and propagates. After a failure, every later call raises it again.
        """
        if self.failure is not None:
            raise self.failure
        if self.closed:
            raise RuntimeError("RayVecEnv is closed")
        try:
            refs = {w: getattr(self.actors[w], method).remote(*a) for w, a in args.items()}
            return self.loop.run_until_complete(self._gather(refs, timeout, what))
        except EnvFailure as err:
            self.failure = err
            self.close()
            raise
        except BaseException:
            self.close()
            raise

    async def _gather(self, refs: dict[int, Any], timeout: float, what: str) -> dict[int, tuple]:
        tasks = {w: asyncio.ensure_future(self._answer(w, ref, what)) for w, ref in refs.items()}
        done, pending = await asyncio.wait(tasks.values(), timeout=timeout, return_when=asyncio.FIRST_EXCEPTION)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)  # let the cancellations land before the loop stops
        failed = [w for w, t in tasks.items() if t in done and t.exception() is not None]
        if failed:
            raise tasks[failed[0]].exception()
        if pending:
            stuck = [w for w, t in tasks.items() if t in pending]
            names = ", ".join(_label(w, self.envs[w]) for w in stuck)
            raise EnvFailure(f"{names} did not answer {what} within {timeout:g} s (hung); all workers were "
                                 "shut down", stuck[0], self.envs[stuck[0]])
        return {w: t.result() for w, t in tasks.items()}

    async def _answer(self, w: int, ref: Any, what: str) -> tuple:
        label, envs = _label(w, self.envs[w]), self.envs[w]
        exceptions = self.ray.exceptions
        try:
            reply = await ref
        except exceptions.RayActorError as exc:  # killed (ray.kill, a signal), out of memory, node lost
            raise EnvFailure(f"{label} died (Ray actor lost: {_first_line(exc)})", w, envs) from None
        except exceptions.RayError as exc:  # e.g. the reply could not be deserialised
            raise EnvFailure(f"{label} failed during {what}: {_first_line(exc)}", w, envs, str(exc)) from None
        if reply[0] == "error":
            _, command, line, tb, is_env_error = reply
            if is_env_error and command == "init":
                # Bad input (e.g. an unknown env id): the env's own one line, as SubprocessVecEnv gives it.
                from hmasd_envs import EnvError

                err = EnvError(line.split(": ", 1)[-1])
                err.worker_traceback = tb
                raise err
            raise EnvFailure(f"{label} raised during {command}: {line}", w, envs, tb)
        return reply

    def close(self) -> None:
        """Ask every actor to close its envs (briefly, and only if none failed), then kill them all.
        Idempotent; leaves Ray running."""
        if self.closed:
            return
        self.closed = True
        ray = self.ray
        if ray.is_initialized():  # at interpreter exit Ray may have shut down (and its actors) first
            if self.failure is None:
                try:
                    refs = [actor.close.remote() for actor in self.actors]
                    ray.wait(refs, num_returns=len(refs), timeout=_CLOSE_GRACE_S)
                except Exception:  # noqa: BLE001 - the kill below ends them either way
                    pass
            for actor in self.actors:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already dead
                    pass
        if not self.loop.is_closed() and not self.loop.is_running():
            self.loop.close()


class RayVecEnv:
    """E envs of one kind, stepped synchronously in `num_workers` Ray actors; SubprocessVecEnv's face and contract.

    `env_id` and `env_kwargs` go to `hmasd_envs.make_env` in each actor. Actor w hosts the contiguous
    envs [w*E//W, (w+1)*E//W). Env i is seeded with `seed + i` at the first `reset()`; later auto-resets
    are unseeded, so the whole run follows from `seed`, with the same arrays as SubprocessVecEnv's.
    `num_workers` None: as many actors as Ray has CPUs. Each actor asks Ray for one CPU, or for an
    equal share of all of them when there are more actors than CPUs. `address` None starts Ray on this
    machine, on 127.0.0.1 only (or reuses the Ray this process already runs); else the cluster to join.

    Fails with: `hmasd.ray_init.RayUnavailable` when Ray is not installed; `hmasd_envs.EnvError` (one
    line) when the env id or arguments are bad; `EnvFailure` when an actor's env raises, the actor
    dies, or it does not answer within `step_timeout_s` (start-up: 120 s, which includes the wait for
    Ray to place the actors) -- all actors are shut down first; ValueError for bad arguments or actions.
    Must be driven from one thread, and not from inside a running asyncio loop.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict | None = None,
        num_envs: int = 32,
        num_workers: int | None = None,
        seed: int = 0,
        step_timeout_s: float = 60.0,
        mask_in_obs: bool = False,
        address: str | None = None,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs ({num_envs}) must be at least 1")
        if num_workers is not None and num_workers < 1:
            raise ValueError(f"num_workers ({num_workers}) must be at least 1")
        if step_timeout_s <= 0:
            raise ValueError(f"step_timeout_s ({step_timeout_s}) must be positive")
        ray = init_ray(address)
        cpus = float(ray.cluster_resources().get("CPU", 1.0)) or 1.0
        if num_workers is None:
            num_workers = max(1, int(cpus))
        self.num_envs = num_envs
        self.num_workers = min(num_workers, num_envs)
        self.step_timeout_s = float(step_timeout_s)
        self._needs_reset = True
        W = self.num_workers
        envs = [range(w * num_envs // W, (w + 1) * num_envs // W) for w in range(W)]
        # A whole CPU each, or a share: more actors than CPUs must still all be placed, not wait forever.
        per_actor = min(1.0, math.floor(cpus / W * 1e4) / 1e4)  # rounded down: W shares must fit
        actor_class = ray.remote(EnvSliceActor).options(num_cpus=per_actor, max_restarts=0, max_task_retries=0)
        self._pool = _ActorPool(ray, [], envs)
        # Kills the actors at interpreter exit (atexit) or when the RayVecEnv is collected.
        self._finalizer = weakref.finalize(self, self._pool.close)
        try:
            self._pool.actors.extend(actor_class.remote() for _ in range(W))
            self.spec = self._start(env_id, dict(env_kwargs or {}), seed, mask_in_obs)
        except BaseException:
            self.close()
            raise

    def _start(self, env_id: str, env_kwargs: dict, seed: int, mask_in_obs: bool) -> Any:
        pool = self._pool
        args = {
            w: (dict(env_id=env_id, env_kwargs=env_kwargs, lo=r.start, hi=r.stop, seed=seed, sys_path=list(sys.path),
                     mask_in_obs=mask_in_obs),)
            for w, r in enumerate(pool.envs)
        }
        replies = pool.request("init", args, max(_START_TIMEOUT_S, self.step_timeout_s), "start-up")
        spec = replies[0][1]
        key = shape_key(spec)
        for w, reply in replies.items():
            if shape_key(reply[1]) != key:
                raise ValueError(f"worker {w} built envs of shape {shape_key(reply[1])}, worker 0 {key}")
        self._pids = [replies[w][2] for w in range(self.num_workers)]
        # The whole batch, as SubprocessVecEnv's shared memory holds it; each actor's reply fills its rows.
        layout, size = array_layout(self.num_envs, spec.num_agents, spec.obs_dim, spec.state_dim, spec.action_kind,
                                    spec.action_dim, spec.mask_dim)
        self._views = array_views(bytearray(size), layout)
        self._slice_layouts = [local_layout(spec, len(r))[0] for r in pool.envs]
        return spec

    def _take(self, replies: dict[int, tuple]) -> None:
        """Copy each actor's reply buffer into its rows of the whole batch."""
        for w, r in enumerate(self._pool.envs):
            local = array_views(replies[w][1], self._slice_layouts[w])
            for name in _RESULTS:
                if name in local:
                    self._views[name][r.start : r.stop] = local[name]

    # ---- the synchronous face ----------------------------------------------------------------
    @property
    def actors(self) -> list:
        """The Ray actor handles, in worker order."""
        return list(self._pool.actors)

    @property
    def worker_pids(self) -> list[int]:
        """PIDs of the actors' processes, in worker order (on their nodes)."""
        return list(self._pids)

    @property
    def worker_envs(self) -> list[range]:
        """The env indices each actor hosts, in worker order."""
        return list(self._pool.envs)

    def _all(self, *args: Any) -> dict[int, tuple]:
        return {w: args for w in range(self.num_workers)}

    def reset(self) -> ResetBatch:
        """Reset every env (seeded with seed + i the first time). Raises EnvFailure."""
        self._take(self._pool.request("reset", self._all(), self.step_timeout_s, "reset"))
        self._needs_reset = False
        return ResetBatch.from_views(self._views)

    def step(self, actions: np.ndarray) -> StepBatch:
        """Step every env once. `actions`: int [E, A] (discrete) or float [E, A, D] (box).

        Raises ValueError for actions of the wrong shape or kind, RuntimeError before the first
        reset() or after close(), EnvFailure for an actor fault.
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        dst = self._views["actions"]
        copy_actions(actions, dst)
        # Ray serialises the arguments when the call is made, so the slices need no copy.
        args = {w: (dst[r.start : r.stop],) for w, r in enumerate(self._pool.envs)}
        replies = self._pool.request("step", args, self.step_timeout_s, "step")
        self._take(replies)
        episodes = [EpisodeInfo(i, stats) for w in range(self.num_workers) for i, stats in replies[w][2]]
        return StepBatch.from_views(self._views, episodes)

    def get_env_states(self) -> list[bytes]:
        """Snapshot every env's full live state (for exact resume), in env order: the same bytes as
        SubprocessVecEnv's. Raises hmasd_envs.snapshot.SnapshotError (the actors go on) when an env's state
        cannot be snapshotted; the message says why."""
        from hmasd_envs.snapshot import SnapshotError

        replies = self._pool.request("get_state", self._all(), self.step_timeout_s, "get_state")
        for w in range(self.num_workers):
            if replies[w][1] is None:
                raise SnapshotError(replies[w][3])
        return [data for w in range(self.num_workers) for data in replies[w][1]]

    def set_env_states(self, states: list[bytes]) -> None:
        """Replace every env with a snapshot from `get_env_states` (same env count); no reset needed after."""
        if len(states) != self.num_envs:
            raise ValueError(f"got {len(states)} env states for {self.num_envs} envs")
        args = {w: (states[r.start : r.stop], True) for w, r in enumerate(self._pool.envs)}
        self._pool.request("set_state", args, self.step_timeout_s, "set_state")
        self._needs_reset = False

    def render(self, env_index: int = 0) -> Any:
        """Whatever env `env_index`'s render() returns (e.g. an RGB array, or None)."""
        if not 0 <= env_index < self.num_envs:
            raise ValueError(f"env_index ({env_index}) must be in [0, {self.num_envs})")
        for w, r in enumerate(self._pool.envs):
            if env_index in r:
                return self._pool.request("render", {w: (env_index - r.start,)}, self.step_timeout_s, "render")[w][1]
        raise AssertionError("every env index has a worker")

    def close(self) -> None:
        """Close the envs and kill the actors (Ray stays up). Idempotent; also runs at interpreter exit."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._pool.closed

    def __enter__(self) -> "RayVecEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RayVecEnv({self.spec.env_id!r}, num_envs={self.num_envs}, num_workers={self.num_workers})"
