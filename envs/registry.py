"""Env ids -> ArrayEnv: the registered ids and the "package.module:factory" import form.

A factory is any callable returning a PettingZoo ParallelEnv (an AEC env is converted with
`aec_to_parallel`). Registered factories import their env packages lazily so that importing
hmasd_envs stays cheap and does not need every optional env package.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import re
from typing import Any, Callable

from pettingzoo.utils.conversions import aec_to_parallel
from pettingzoo.utils.env import AECEnv, ParallelEnv

from .adapter import ArrayEnv
from .errors import EnvError

Factory = Callable[..., Any]
_REGISTRY: dict[str, tuple[Factory, dict[str, Any]]] = {}

_IMPORT_FORM = "or an import string 'package.module:factory' returning a PettingZoo ParallelEnv"


def register(env_id: str, factory: Factory, **default_kwargs: Any) -> None:
    """Register `factory(**{**default_kwargs, **kwargs})` under `env_id` (re-registering replaces)."""
    if not env_id or ":" in env_id:
        raise EnvError(f"env id '{env_id}' is not registrable: ids must be non-empty and contain no ':'")
    _REGISTRY[env_id] = (factory, dict(default_kwargs))


def registered_ids() -> list[str]:
    return sorted(_REGISTRY)


def _unknown(env_id: str) -> EnvError:
    close = difflib.get_close_matches(env_id, list(_REGISTRY), n=1, cutoff=0.0)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return EnvError(
        f"unknown env id '{env_id}': {hint}use one of {registered_ids()} {_IMPORT_FORM}"
    )


def _import_factory(env_id: str) -> Factory:
    module_name, _, attr = env_id.partition(":")
    if not module_name or not attr:
        raise EnvError(f"env id '{env_id}' is not a valid import string: use 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise EnvError(f"env id '{env_id}': cannot import module '{module_name}' ({err})") from err
    factory: Any = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise EnvError(f"env id '{env_id}': module '{module_name}' has no attribute '{attr}'")
    if not callable(factory):
        raise EnvError(f"env id '{env_id}': '{attr}' in '{module_name}' is not callable")
    return factory


def _resolve(env_id: str) -> tuple[Factory, dict[str, Any]]:
    if env_id in _REGISTRY:
        return _REGISTRY[env_id]
    if ":" in env_id:
        return _import_factory(env_id), {}
    raise _unknown(env_id)


def validate_env_id(env_id: str) -> None:
    """Raise EnvError if `env_id` cannot name an env; builds nothing (an import string's module is
    imported, to check that the factory exists)."""
    if not isinstance(env_id, str):
        raise EnvError(f"env id must be a string, got {type(env_id).__name__}")
    _resolve(env_id)


def make_env(env_id: str, **kwargs: Any) -> ArrayEnv:
    """Build the env named by `env_id` with the registered defaults overridden by `kwargs`.

    Raises EnvError for an unknown id, a bad import string, arguments the factory rejects, a
    factory that does not return a PettingZoo env, or an env the adapter cannot handle.
    """
    validate_env_id(env_id)
    factory, defaults = _resolve(env_id)
    merged = {**defaults, **kwargs}
    try:
        env = factory(**merged)
    except EnvError:
        raise
    except (TypeError, ValueError, AssertionError) as err:
        # Mostly a misspelt or out-of-range kwarg; one line instead of a deep traceback.
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        unknown = re.search(r"unexpected keyword argument '([^']+)'", detail)
        if unknown:
            raise EnvError(_unknown_kwarg(env_id, unknown.group(1), _accepted_kwargs(factory, defaults))) from None
        raise EnvError(f"env '{env_id}': the factory rejected arguments {merged}: {detail}") from err
    if isinstance(env, AECEnv):
        env = aec_to_parallel(env)
    elif not isinstance(env, ParallelEnv) and not all(
        hasattr(env, name) for name in ("possible_agents", "reset", "step", "action_space")
    ):
        raise EnvError(
            f"env '{env_id}': the factory returned {type(env).__name__}, not a PettingZoo "
            "ParallelEnv or AECEnv"
        )
    return ArrayEnv(env, env_id)


def _accepted_kwargs(factory: Factory, defaults: dict[str, Any]) -> list[str]:
    """The keyword arguments a factory names: its registered defaults and its own signature."""
    names = set(defaults)
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        params = []
    names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return sorted(names)


def _unknown_kwarg(env_id: str, name: str, accepted: list[str]) -> str:
    close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    listed = f"it accepts {', '.join(accepted)}" if accepted else "see the factory's arguments"
    return f"env '{env_id}' has no argument '{name}' (env.kwargs): {hint}{listed}"


# ----------------------------------------------------------------------- built-in ids
# Spelled-out signatures (not **kwargs) so that a misspelt env.kwargs key can be told the accepted names.
def _alice_and_bob(max_cycles: int = 100, render_mode: str | None = None) -> Any:
    from .alice_and_bob import parallel_env

    return parallel_env(max_cycles=max_cycles, render_mode=render_mode)


def _simple_spread(N: int = 3, local_ratio: float = 0.5, max_cycles: int = 25, continuous_actions: bool = False,
                   render_mode: str | None = None, **more: Any) -> Any:
    from mpe2 import simple_spread_v3

    return simple_spread_v3.parallel_env(N=N, local_ratio=local_ratio, max_cycles=max_cycles,
                                         continuous_actions=continuous_actions, render_mode=render_mode, **more)


register("alice_and_bob", _alice_and_bob)
# The mpe2 defaults, written out so that a config shows exactly what it runs.
register("simple_spread_v3", _simple_spread, N=3, local_ratio=0.5, max_cycles=25, continuous_actions=False)
register(
    "simple_spread_v3_continuous",
    _simple_spread,
    N=3,
    local_ratio=0.5,
    max_cycles=25,
    continuous_actions=True,
)


def _overcooked(layout: str = "cramped_room", max_steps: int = 400, shaped_reward: bool = False,
                render_mode: str | None = None) -> Any:
    if importlib.util.find_spec("jaxmarl") is None:
        raise EnvError("Overcooked needs the optional extra jaxmarl: pip install -c constraints.txt -e '.[overcooked]'")
    from .overcooked import parallel_env

    return parallel_env(layout=layout, max_steps=max_steps, shaped_reward=shaped_reward, render_mode=render_mode)


# The paper's Overcooked layouts (JaxMARL, Carroll et al. 2019 dynamics); sparse reward by default.
for _layout in ("cramped_room", "asymmetric_advantages", "coordination_ring"):
    register(f"overcooked_{_layout}", _overcooked, layout=_layout, max_steps=400, shaped_reward=False)
