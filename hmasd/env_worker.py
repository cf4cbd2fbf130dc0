"""Env worker: a subprocess that hosts a contiguous slice of the envs of a `VecEnv`.

The orchestrator starts this file as a script (`python .../env_worker.py SOCK_FD SHM_FD PPID`),
not as `-m hmasd.env_worker`: that way neither `hmasd/__init__.py` nor the parent's `__main__`
is imported here, so a worker never pays for torch (the parent has it; this module must not).

Protocol. The socket carries length-prefixed pickles of small tuples; the bulk data (actions in,
observations out) lives in one shared-memory file (`SHM_FD`, a memfd) that both sides map with
the layout made by `array_layout`. Commands, in order:
    ("init", config) -> ("ready", spec)        build the envs
    ("attach", layout, size) -> ("ok",)        map the shared arrays
    ("reset",) -> ("ok",)                      first reset seeds env i with seed + i
    ("step",) -> ("ok", [(env_index, stats), ...])   episodes that ended at this step
    ("get_state",) -> ("ok", snapshots or None, seeded, None or why not)
    ("set_state", snapshots, seeded) -> ("ok",)
    ("render", local_index) -> ("ok", frame)
    ("close",) -> no reply; the worker exits
Any exception is answered with ("error", command, one_line, traceback_text, is_env_error) and
the worker exits with status 1: after an env raised, its state cannot be trusted.

Lifetime: SIGINT is ignored (the parent handles Ctrl-C and closes the workers); the worker asks
the kernel for SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG) and, as a fallback, exits
when the socket reaches EOF or when `os.getppid()` changes while it waits for a command.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":
    # Run as a script, Python put this package's directory first on sys.path, where a module
    # such as hmasd/logging.py would shadow the standard library. Drop it before any import.
    del sys.path[0]

import ctypes
import mmap
import os
import pickle
import signal
import socket
import struct
import traceback
from typing import Any

import numpy as np

HEADER = struct.Struct("!I")  # payload length in bytes
PPID_CHECK_S = 2.0  # how often an idle worker checks that its parent is still alive
_ALIGN = 64  # cache line: keeps arrays from sharing lines at their starts


# --------------------------------------------------------------------------------------------
# Framing (shared with the orchestrator)
# --------------------------------------------------------------------------------------------
def encode(msg: Any) -> bytes:
    """One frame: 4-byte big-endian length, then the pickle."""
    payload = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def take_frames(buf: bytearray) -> list[Any]:
    """Decode and remove every complete frame at the start of `buf`; a partial one stays."""
    msgs = []
    pos = 0
    while len(buf) - pos >= HEADER.size:
        (n,) = HEADER.unpack_from(buf, pos)
        end = pos + HEADER.size + n
        if len(buf) < end:
            break
        msgs.append(pickle.loads(buf[pos + HEADER.size : end]))  # a copy: buf is resized below
        pos = end
    if pos:
        del buf[:pos]
    return msgs


# --------------------------------------------------------------------------------------------
# Shared-memory layout (shared with the orchestrator)
# --------------------------------------------------------------------------------------------
def array_layout(
    num_envs: int, num_agents: int, obs_dim: int, state_dim: int, action_kind: str, action_dim: int,
    mask_dim: int = 0,
) -> tuple[dict[str, tuple[int, tuple[int, ...], str]], int]:
    """Offsets of the shared arrays: {name: (offset, shape, dtype)} and the total size in bytes.

    Every array covers all E envs; a worker reads and writes only its own rows. `mask_dim` > 0 adds
    the action mask [E, A, M] of the current observation (envs whose actions are masked).
    """
    E, A = num_envs, num_agents
    if action_kind == "discrete":
        act = ((E, A), "int64")  # [E, A]
    else:
        act = ((E, A, action_dim), "float32")  # [E, A, D]
    fields = [
        ("actions", *act),
        ("obs", (E, A, obs_dim), "float32"),
        ("state", (E, state_dim), "float32"),
        ("alive", (E, A), "bool"),
        ("reward", (E,), "float32"),
        ("terminated", (E,), "bool"),
        ("truncated", (E,), "bool"),
        # Written only where an episode ended; the parent fills the other rows from obs/state.
        ("final_obs", (E, A, obs_dim), "float32"),
        ("final_state", (E, state_dim), "float32"),
    ]
    if mask_dim:
        fields.append(("action_mask", (E, A, mask_dim), "bool"))
    layout = {}
    offset = 0
    for name, shape, dtype in fields:
        layout[name] = (offset, shape, dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        offset += -(-nbytes // _ALIGN) * _ALIGN
    return layout, max(offset, _ALIGN)


def array_views(buf: mmap.mmap, layout: dict) -> dict[str, np.ndarray]:
    """Numpy views on the mapped shared memory, one per entry of `layout`."""
    views = {}
    for name, (offset, shape, dtype) in layout.items():
        count = int(np.prod(shape, dtype=np.int64))
        views[name] = np.frombuffer(buf, dtype=dtype, count=count, offset=offset).reshape(shape)
    return views


def copy_actions(actions, dst: np.ndarray) -> None:
    """Write a batch of actions into the backend's action array `dst` ([E, A] int or [E, A, D] float),
    after the checks every VecEnv backend makes: ValueError for a wrong shape or a dtype of another kind
    (floats for discrete actions), rather than a silent cast."""
    actions = np.asarray(actions)
    if actions.shape != dst.shape:
        raise ValueError(f"actions have shape {actions.shape}; this VecEnv expects {dst.shape}")
    if not np.can_cast(actions.dtype, dst.dtype, casting="same_kind"):
        raise ValueError(f"actions have dtype {actions.dtype}; this VecEnv expects {dst.dtype}")
    np.copyto(dst, actions, casting="same_kind")


# --------------------------------------------------------------------------------------------
# Worker side
# --------------------------------------------------------------------------------------------
class _ParentGone(Exception):
    pass


class _Channel:
    """Blocking framed socket for the worker; waits with periodic parent-liveness checks."""

    def __init__(self, sock: socket.socket, parent_pid: int):
        self.sock = sock
        self.parent_pid = parent_pid
        self.buf = bytearray()
        sock.settimeout(PPID_CHECK_S)

    def recv(self) -> Any:
        while True:
            msgs = take_frames(self.buf)
            if msgs:
                # The parent sends one command and waits for its answer, so frames never queue.
                return msgs[0]
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                if os.getppid() != self.parent_pid:
                    raise _ParentGone from None
                continue
            except OSError:
                data = b""
            if not data:
                raise _ParentGone
            self.buf += data

    def send(self, msg: Any) -> None:
        self.sock.sendall(encode(msg))


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL us when the parent dies; exit now if it already has.

    SIGKILL, not SIGTERM: SIGTERM is reserved for the parent's own shutdown (see `_on_sigterm`), and a
    worker holds nothing that needs cleaning up (its shared memory is an anonymous memfd)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the getppid() checks below still apply
    # The parent may have died before prctl took effect; then we were re-parented already.
    if os.getppid() != parent_pid:
        os._exit(0)


def one_line(exc: BaseException) -> str:
    """'Type: first line of the message', for error reports that must stay on one line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class EnvSlice:
    """The envs of one worker (env indices [lo, hi)) and the commands on them.

    Also hosted by the Ray backend's actors (hmasd/ray_actor.py), so both backends seed, step, reset
    and snapshot envs with the same code. `reset` and `step` read and write the arrays given to
    `bind` (row j is env lo + j); anything an env raises propagates to the caller.
    """

    def __init__(self, config: dict):
        from hmasd_envs import make_env  # after sys.path is the parent's

        self.lo, self.hi = config["lo"], config["hi"]
        self.seed = config["seed"]
        mask_in_obs = bool(config.get("mask_in_obs", False))
        self.envs = [make_env(config["env_id"], mask_in_obs, **config["env_kwargs"]) for _ in range(self.lo, self.hi)]
        self.seeded = False
        self.views: dict[str, np.ndarray] = {}
        self.shm: mmap.mmap | None = None

    def attach(self, shm_fd: int, layout: dict, size: int) -> None:
        self.shm = mmap.mmap(shm_fd, size)
        # Only this worker's rows: row j here is env lo + j.
        self.bind({k: v[self.lo : self.hi] for k, v in array_views(self.shm, layout).items()})

    def bind(self, views: dict[str, np.ndarray]) -> None:
        """Use `views` (the arrays of `array_layout`, this slice's rows only) for reset and step."""
        self.views = views

    def reset(self) -> None:
        v = self.views
        for j, env in enumerate(self.envs):
            seed = None if self.seeded else self.seed + self.lo + j
            obs, state, alive = env.reset(seed=seed)
            v["obs"][j] = obs
            v["state"][j] = state
            v["alive"][j] = alive
            if "action_mask" in v:
                v["action_mask"][j] = env.action_mask
        self.seeded = True

    def step(self) -> list[tuple[int, dict]]:
        v = self.views
        actions, obs, state, alive = v["actions"], v["obs"], v["state"], v["alive"]
        reward, terminated, truncated = v["reward"], v["terminated"], v["truncated"]
        episodes = []
        for j, env in enumerate(self.envs):
            r = env.step(actions[j])
            obs[j] = r.obs
            state[j] = r.state
            alive[j] = r.alive
            reward[j] = r.reward
            terminated[j] = r.terminated
            truncated[j] = r.truncated
            if r.action_mask is not None:
                v["action_mask"][j] = r.action_mask
            if r.terminated or r.truncated:
                v["final_obs"][j] = r.final_obs
                v["final_state"][j] = r.final_state
                if r.episode is not None:
                    episodes.append((self.lo + j, dict(r.episode)))
        return episodes

    def get_states(self) -> tuple[list[bytes] | None, str | None]:
        """(snapshots, None), or (None, reason) when an env holds state that cannot be snapshotted
        (pymunk, Box2D, other C objects): the run goes on, its checkpoints without env snapshots."""
        from hmasd_envs.snapshot import SnapshotError, snapshot

        try:
            return [snapshot(env) for env in self.envs], None
        except SnapshotError as err:
            return None, str(err)

    def set_states(self, states: list[bytes], seeded: bool) -> None:
        from hmasd_envs.snapshot import restore

        if len(states) != len(self.envs):
            raise ValueError(f"got {len(states)} env states for {len(self.envs)} envs")
        self.close()
        self.envs = [restore(data) for data in states]
        self.seeded = seeded

    def close(self) -> None:
        for env in self.envs:
            try:
                env.close()
            except Exception:
                pass


def serve(chan: _Channel, shm_fd: int) -> int:
    """Answer commands until "close"; returns the exit status."""
    command = "init"
    worker = None
    try:
        msg = chan.recv()
        config = msg[1]
        sys.path[:] = config["sys_path"]  # so that "package.module:factory" ids import here too
        if config.get("cpu") is not None:
            try:
                os.sched_setaffinity(0, {config["cpu"]})
            except (OSError, AttributeError):
                pass  # pinning is an optimisation only
        worker = EnvSlice(config)
        chan.send(("ready", worker.envs[0].spec))
        step_ok = ("ok", [])
        while True:
            msg = chan.recv()
            command = msg[0]
            if command == "step":
                episodes = worker.step()
                chan.send(("ok", episodes) if episodes else step_ok)
            elif command == "reset":
                worker.reset()
                chan.send(("ok",))
            elif command == "attach":
                worker.attach(shm_fd, msg[1], msg[2])
                chan.send(("ok",))
            elif command == "get_state":
                states, reason = worker.get_states()
                chan.send(("ok", states, worker.seeded, reason))
            elif command == "set_state":
                worker.set_states(msg[1], msg[2])
                chan.send(("ok",))
            elif command == "render":
                chan.send(("ok", worker.envs[msg[1]].render()))
            elif command == "close":
                worker.close()
                return 0
            else:
                raise ValueError(f"unknown command {command!r}")
    except _ParentGone:
        return 0
    except BaseException as exc:
        is_env_error = False
        try:
            from hmasd_envs import EnvError

            is_env_error = isinstance(exc, EnvError)
        except Exception:
            pass
        try:
            chan.send(("error", command, one_line(exc), traceback.format_exc(), is_env_error))
        except OSError:
            pass
        return 1


def _on_sigterm(parent_pid: int):
    """A SIGTERM sent to the whole process group (a job scheduler, `timeout`, a launcher) must let the
    parent finish its step and save its checkpoint: while the parent lives it shuts us down itself."""

    def handler(_signum, _frame) -> None:
        if os.getppid() != parent_pid:
            os._exit(0)

    return handler


def main(argv: list[str]) -> int:
    # First thing: Ctrl-C in the terminal reaches the whole process group; the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock_fd, shm_fd, parent_pid = (int(a) for a in argv[1:4])
    signal.signal(signal.SIGTERM, _on_sigterm(parent_pid))
    _die_with_parent(parent_pid)
    sock = socket.socket(fileno=sock_fd)
    return serve(_Channel(sock, parent_pid), shm_fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
