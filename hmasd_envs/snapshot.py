"""Exact snapshots of live environments, for checkpoints that resume bit-for-bit.

Plain pickle is not enough: PettingZoo and mpe2 envs derive from gymnasium's EzPickle, whose
pickled form is only the constructor arguments, so unpickling gives a fresh, un-reset env. The
pickler below stores such objects by their full `__dict__` instead (positions, RNG state, step
counters, ...), and restores them without calling `__init__` or `__setstate__`. pygame drawing
surfaces are not picklable and carry no dynamics: they are dropped (a restored env is for stepping).
"""
from __future__ import annotations

import io
import pickle
from typing import Any

from gymnasium.utils import EzPickle


def _dropped() -> None:
    return None


def _set_dict(obj: Any, state: dict) -> None:
    obj.__dict__.update(state)


class _StatePickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, EzPickle) and not isinstance(obj, type):
            # (create, args, state, listitems, dictitems, state_setter): the object is memoised before
            # its state is pickled, so reference cycles back to it are fine.
            return object.__new__, (type(obj),), dict(obj.__dict__), None, None, _set_dict
        if type(obj).__module__.startswith("pygame"):
            return _dropped, ()  # drawing surfaces: rebuilt on the next render, not part of the dynamics
        return NotImplemented


class SnapshotError(Exception):
    """The object holds state that cannot be snapshotted; the message is one line saying why."""


def snapshot(obj: Any) -> bytes:
    """Serialise `obj` (e.g. an ArrayEnv) with its full live state.

    Raises SnapshotError when some part cannot be pickled: simulators that keep their state in C
    objects (pymunk spaces, Box2D worlds, ctypes handles) fail here, each in its own way
    (PicklingError, TypeError, or AttributeError: __module__ from pymunk's cffi objects).
    """
    buf = io.BytesIO()
    try:
        _StatePickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception as err:  # noqa: BLE001 - whatever the pickler raises, the answer is the same
        text = str(err).strip().splitlines()
        raise SnapshotError(f"{type(err).__name__}: {text[0]}" if text else type(err).__name__) from err
    return buf.getvalue()


def restore(data: bytes) -> Any:
    """Inverse of `snapshot`: the object, continuing exactly where it was."""
    return pickle.loads(data)
