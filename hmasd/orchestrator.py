"""Orchestrator: steps E envs in worker subprocesses behind the synchronous VecEnv face (`SubprocessVecEnv`).

Why this shape:
- Workers are started with `subprocess` (fork + immediate exec of a fresh interpreter running
  `env_worker.py` as a script), never with a bare fork: the parent has torch threads. Being a
  fresh interpreter that does not import the parent's `__main__`, a worker never loads torch.
- One asyncio event loop, owned by the VecEnv and driven with `run_until_complete`, waits on all
  worker sockets at once, and on a timer for hangs. The parent sleeps in epoll while the workers
  step; no thread, no polling.
- Arrays never go through the pipes: actions and results live in one shared-memory file (memfd)
  mapped by everyone. A step costs one small frame to and from each worker.
- Any fault (an exception in an env, a worker that dies or hangs) becomes an `EnvFailure`
  that names the worker and its envs; all workers are then shut down, so a trainer never hangs.
"""
from __future__ import annotations

import asyncio
import mmap
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import env_worker
from .env_worker import array_layout, array_views, copy_actions, encode, take_frames
from .records import EnvFailure, EpisodeInfo, ResetBatch, StepBatch

_WORKER_SCRIPT = os.path.abspath(env_worker.__file__)
_START_TIMEOUT_S = 120.0  # building envs imports pettingzoo & co; generous, but still bounded
_CLOSE_GRACE_S = 2.0  # after "close", before SIGTERM
_KILL_GRACE_S = 1.0  # after SIGTERM, before SIGKILL
_STEP_FRAME = encode(("step",))  # the hot-path command, encoded once


@dataclass
class _Worker:
    index: int
    envs: range
    proc: subprocess.Popen
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    alive: bool = True

    @property
    def label(self) -> str:
        span = f"{self.envs.start}" if len(self.envs) == 1 else f"{self.envs.start}-{self.envs.stop - 1}"
        return f"env {span} (worker {self.index})"


def _exit_text(code: int | None) -> str:
    if code is None:
        return "no exit status yet"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class _WorkerPool:
    """The worker processes, their sockets and the event loop that waits on them.

    Holds no reference to the VecEnv, so that `weakref.finalize` can close it at exit or
    garbage collection.
    """

    def __init__(self, num_envs: int, num_workers: int, shm_fd: int, pin_cpus: bool):
        self.loop = asyncio.new_event_loop()
        self.workers: list[_Worker] = []
        self.closed = False
        self.failure: EnvFailure | None = None
        self._future: asyncio.Future | None = None
        self._waiting: set[int] = set()
        self._replies: dict[int, tuple] = {}
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.cpus = cpus if pin_cpus and len(cpus) > 1 else []
        env = dict(os.environ)
        # One worker per core is the parallelism; BLAS threads inside a worker would only contend.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"
        try:
            for w in range(num_workers):
                envs = range(w * num_envs // num_workers, (w + 1) * num_envs // num_workers)
                self.workers.append(self._spawn(w, envs, shm_fd, env))
        except BaseException:
            self.close()
            raise

    def _spawn(self, w: int, envs: range, shm_fd: int, env: dict) -> _Worker:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = subprocess.Popen(
                [sys.executable, _WORKER_SCRIPT, str(child_sock.fileno()), str(shm_fd), str(os.getpid())],
                pass_fds=(child_sock.fileno(), shm_fd),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            parent_sock.close()
            raise
        finally:
            # Our copy must go, or the worker's death would never show as EOF here.
            child_sock.close()
        parent_sock.setblocking(False)
        worker = _Worker(w, envs, proc, parent_sock)
        self.loop.add_reader(parent_sock.fileno(), self._on_readable, worker)
        return worker

    def cpu_for(self, w: int) -> int | None:
        return self.cpus[w % len(self.cpus)] if self.cpus else None

    # ---- requests ----------------------------------------------------------------------------
    def request(self, frames: dict[int, bytes], timeout: float, what: str) -> dict[int, tuple]:
        """Send one frame to each named worker and wait for all their answers.

        Raises EnvFailure (after shutting every worker down) if one of them reports an
        error, dies or does not answer within `timeout` seconds. Any other interruption
        (e.g. KeyboardInterrupt) also shuts the workers down and propagates.
        """
        if self.failure is not None:
            raise self.failure
        if self.closed:
            raise RuntimeError("VecEnv is closed")
        future = self.loop.create_future()
        self._future, self._waiting, self._replies = future, set(frames), {}
        timer = self.loop.call_later(timeout, self._on_timeout, what, timeout)
        rests: list[asyncio.Task] = []
        try:
            for w, frame in frames.items():
                rest = self._send(self.workers[w], frame)
                if rest is not None:
                    rests.append(rest)
            return self.loop.run_until_complete(future)
        except BaseException:
            for rest in rests:
                rest.cancel()
            self.close()
            raise
        finally:
            timer.cancel()
            self._future = None

    def _send(self, worker: _Worker, frame: bytes) -> asyncio.Task | None:
        """Send what the socket buffer takes now (all of a step's small frame); a larger frame (the env
        snapshots of a resume) goes on as a task that writes the rest as the worker reads it."""
        try:
            sent = worker.sock.send(frame)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._on_eof(worker)  # the worker is gone; report it like an EOF
            return None
        if sent == len(frame):
            return None
        return self.loop.create_task(self._send_rest(worker, memoryview(frame)[sent:]))

    async def _send_rest(self, worker: _Worker, rest: memoryview) -> None:
        try:
            await self.loop.sock_sendall(worker.sock, rest)
        except OSError:
            self._on_eof(worker)

    # ---- event-loop callbacks ----------------------------------------------------------------
    def _on_readable(self, worker: _Worker) -> None:
        try:
            data = worker.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._on_eof(worker)
            return
        worker.buf += data
        for msg in take_frames(worker.buf):
            if msg[0] == "error":
                _, command, line, tb, is_env_error = msg
                if is_env_error and command == "init":
                    # Bad input (e.g. an unknown env id): the user gets the env's own one line; the
                    # traceback rides along for the log file.
                    from hmasd_envs import EnvError

                    err = EnvError(line.split(": ", 1)[-1])
                    err.worker_traceback = tb
                    self._fail(err)
                else:
                    err = EnvFailure(
                        f"{worker.label} raised during {command}: {line}", worker.index, worker.envs, tb
                    )
                    self._fail(err)
            elif worker.index in self._waiting:
                self._waiting.discard(worker.index)
                self._replies[worker.index] = msg
                if not self._waiting and self._future is not None and not self._future.done():
                    self._future.set_result(self._replies)

    def _on_eof(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        self.loop.remove_reader(worker.sock.fileno())
        try:
            code = worker.proc.wait(timeout=1.0)  # EOF comes as the process exits
        except subprocess.TimeoutExpired:
            code = None
        self._fail(EnvFailure(f"{worker.label} died ({_exit_text(code)})", worker.index, worker.envs))

    def _on_timeout(self, what: str, timeout: float) -> None:
        stuck = [self.workers[w] for w in sorted(self._waiting)]
        if not stuck:
            return
        names = ", ".join(wk.label for wk in stuck)
        first = stuck[0]
        self._fail(
            EnvFailure(
                f"{names} did not answer {what} within {timeout:g} s (hung); all workers were shut down",
                first.index,
                first.envs,
            )
        )

    def _fail(self, err: Exception) -> None:
        if self.failure is None and isinstance(err, EnvFailure):
            self.failure = err
        if self._future is not None and not self._future.done():
            self._future.set_exception(err)

    # ---- shutdown ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every worker (ask, then SIGTERM, then SIGKILL) and reap it. Idempotent."""
        if self.closed:
            return
        self.closed = True
        graceful = self.failure is None
        for wk in self.workers:
            if wk.alive and not self.loop.is_closed():
                try:
                    self.loop.remove_reader(wk.sock.fileno())
                except (ValueError, OSError):
                    pass
            if graceful:
                try:
                    wk.sock.sendall(encode(("close",)))
                except OSError:
                    pass
        deadline = time.monotonic() + (_CLOSE_GRACE_S if graceful else 0.0)
        for wk in self.workers:
            try:
                wk.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                wk.proc.terminate()  # a worker whose parent lives ignores this: SIGKILL follows
        for wk in self.workers:
            try:
                wk.proc.wait(timeout=_KILL_GRACE_S if graceful else 0.2)
            except subprocess.TimeoutExpired:
                wk.proc.kill()
                wk.proc.wait()
            wk.alive = False
            wk.sock.close()
        if not self.loop.is_closed() and not self.loop.is_running():
            self.loop.close()


def _release_shm(buf: mmap.mmap, fd: int) -> None:
    try:
        buf.close()
    except BufferError:
        pass  # caller still holds a view; the mapping goes with it
    os.close(fd)


class SubprocessVecEnv:
    """E envs of one kind, stepped synchronously in `num_workers` subprocesses: the subprocess
    backend of the VecEnv protocol (hmasd/records.py).

    `env_id` and `env_kwargs` go to `hmasd_envs.make_env` in each worker. Worker w hosts the
    contiguous envs [w*E//W, (w+1)*E//W). Env i is seeded with `seed + i` at the first `reset()`;
    later auto-resets are unseeded, so the whole run follows from `seed`.

    Fails with: `hmasd_envs.EnvError` (one line) when the env id or arguments are bad;
    `EnvFailure` when a worker raises, dies, or does not answer within `step_timeout_s`
    (start-up: 120 s) -- all workers are shut down first; ValueError for bad arguments or actions.
    Must be driven from one thread, and not from inside a running asyncio loop. Workers die with
    the thread that created the VecEnv (Linux parent-death signal), so create it in the thread
    that owns the training loop.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict | None = None,
        num_envs: int = 32,
        num_workers: int | None = None,
        seed: int = 0,
        step_timeout_s: float = 60.0,
        pin_cpus: bool = True,
        mask_in_obs: bool = False,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs ({num_envs}) must be at least 1")
        if num_workers is not None and num_workers < 1:
            raise ValueError(f"num_workers ({num_workers}) must be at least 1")
        if step_timeout_s <= 0:
            raise ValueError(f"step_timeout_s ({step_timeout_s}) must be positive")
        if num_workers is None:
            num_workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.num_envs = num_envs
        self.num_workers = min(num_workers, num_envs)
        self.step_timeout_s = float(step_timeout_s)
        self._needs_reset = True

        self._shm_fd = os.memfd_create("hmasd-vecenv") if hasattr(os, "memfd_create") else _tempfile_fd()
        try:
            self._pool = _WorkerPool(num_envs, self.num_workers, self._shm_fd, pin_cpus)
        except BaseException:
            os.close(self._shm_fd)
            raise
        # Closes the workers at interpreter exit (atexit) or when the VecEnv is collected.
        self._finalizer = weakref.finalize(self, self._pool.close)
        try:
            self.spec = self._start(env_id, dict(env_kwargs or {}), seed, mask_in_obs)
        except BaseException:
            self.close()
            raise

    def _start(self, env_id: str, env_kwargs: dict, seed: int, mask_in_obs: bool) -> Any:
        pool = self._pool
        frames = {}
        for wk in pool.workers:
            config = dict(
                env_id=env_id, env_kwargs=env_kwargs, lo=wk.envs.start, hi=wk.envs.stop, seed=seed,
                sys_path=list(sys.path), cpu=pool.cpu_for(wk.index), mask_in_obs=mask_in_obs,
            )
            frames[wk.index] = encode(("init", config))
        replies = pool.request(frames, max(_START_TIMEOUT_S, self.step_timeout_s), "start-up")
        spec = replies[0][1]
        key = shape_key(spec)
        for w, reply in replies.items():
            if shape_key(reply[1]) != key:
                raise ValueError(f"worker {w} built envs of shape {shape_key(reply[1])}, worker 0 {key}")
        layout, size = array_layout(
            self.num_envs, spec.num_agents, spec.obs_dim, spec.state_dim, spec.action_kind, spec.action_dim,
            spec.mask_dim,
        )
        os.ftruncate(self._shm_fd, size)
        self._shm = mmap.mmap(self._shm_fd, size)
        weakref.finalize(self, _release_shm, self._shm, self._shm_fd)
        self._views = array_views(self._shm, layout)
        self._step_frames = {w: _STEP_FRAME for w in replies}
        pool.request({w: encode(("attach", layout, size)) for w in replies}, self.step_timeout_s, "attach")
        return spec

    # ---- the synchronous face ----------------------------------------------------------------
    @property
    def worker_pids(self) -> list[int]:
        """PIDs of the worker processes, in worker order."""
        return [wk.proc.pid for wk in self._pool.workers]

    @property
    def worker_envs(self) -> list[range]:
        """The env indices each worker hosts, in worker order."""
        return [wk.envs for wk in self._pool.workers]

    def reset(self) -> ResetBatch:
        """Reset every env (seeded with seed + i the first time). Raises EnvFailure."""
        frame = encode(("reset",))
        self._pool.request({wk.index: frame for wk in self._pool.workers}, self.step_timeout_s, "reset")
        self._needs_reset = False
        return ResetBatch.from_views(self._views)

    def step(self, actions: np.ndarray) -> StepBatch:
        """Step every env once. `actions`: int [E, A] (discrete) or float [E, A, D] (box).

        Raises ValueError for actions of the wrong shape or kind, RuntimeError before the first
        reset() or after close(), EnvFailure for a worker fault.
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        v = self._views
        dst = v["actions"]
        copy_actions(actions, dst)
        replies = self._pool.request(self._step_frames, self.step_timeout_s, "step")

        episodes = [
            EpisodeInfo(env_index, stats)
            for w in range(len(replies))
            for env_index, stats in replies[w][1]
        ]
        return StepBatch.from_views(v, episodes)

    def get_env_states(self) -> list[bytes]:
        """Snapshot every env's full live state (for exact resume), in env order.

        Raises hmasd_envs.snapshot.SnapshotError (the workers go on) when an env's state cannot be
        snapshotted; the message says why."""
        from hmasd_envs.snapshot import SnapshotError

        frame = encode(("get_state",))
        replies = self._pool.request({wk.index: frame for wk in self._pool.workers}, self.step_timeout_s, "get_state")
        for w in range(len(replies)):
            if replies[w][1] is None:
                raise SnapshotError(replies[w][3])
        return [data for w in range(len(replies)) for data in replies[w][1]]

    def set_env_states(self, states: list[bytes]) -> None:
        """Replace every env with a snapshot from `get_env_states` (same env count); no reset needed after."""
        if len(states) != self.num_envs:
            raise ValueError(f"got {len(states)} env states for {self.num_envs} envs")
        frames = {wk.index: encode(("set_state", states[wk.envs.start : wk.envs.stop], True)) for wk in self._pool.workers}
        self._pool.request(frames, self.step_timeout_s, "set_state")
        self._needs_reset = False

    def render(self, env_index: int = 0) -> Any:
        """Whatever env `env_index`'s render() returns (e.g. an RGB array, or None)."""
        if not 0 <= env_index < self.num_envs:
            raise ValueError(f"env_index ({env_index}) must be in [0, {self.num_envs})")
        for wk in self._pool.workers:
            if env_index in wk.envs:
                frame = encode(("render", env_index - wk.envs.start))
                return self._pool.request({wk.index: frame}, self.step_timeout_s, "render")[wk.index][1]
        raise AssertionError("every env index has a worker")

    def close(self) -> None:
        """Shut the workers down and reap them. Idempotent; also runs at interpreter exit."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._pool.closed

    def __enter__(self) -> "SubprocessVecEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SubprocessVecEnv({self.spec.env_id!r}, num_envs={self.num_envs}, num_workers={self.num_workers})"


def shape_key(spec: Any) -> tuple:
    # EnvSpec may hold numpy bounds, so compare the fields that fix the array shapes.
    return (spec.num_agents, spec.obs_dim, spec.state_dim, spec.action_kind, spec.n_actions, spec.action_dim,
            spec.mask_dim)


def _tempfile_fd() -> int:
    import tempfile

    fd, path = tempfile.mkstemp(prefix="hmasd-vecenv-")
    os.unlink(path)  # anonymous from now on: nothing to clean up if we are killed
    return fd
