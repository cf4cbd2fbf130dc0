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
    except Exception as err:  # the module itself raises while it is imported
        raise EnvError(f"env id '{env_id}': importing module '{module_name}' raised {_first_line(err)}") from err
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


def _keyword_names(func: Any) -> list[str] | None:
    """The keyword arguments `func` names (plus "**kwargs" if it takes any), or None if unreadable."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names + (["**kwargs"] if any(p.kind is p.VAR_KEYWORD for p in params) else [])


def _callee(func: Any, name: str, depth: int = 3) -> Any:
    """The callable called `name` that `func` passes its **kwargs on to, looked up where `func` can see
    it: its module and the functions it closes over (PettingZoo's parallel_wrapper_fn -> env -> raw_env)."""
    if depth == 0 or not hasattr(func, "__globals__"):
        return None
    found = func.__globals__.get(name)
    if callable(found):
        return found
    for cell in getattr(func, "__closure__", None) or ():
        inner = getattr(cell, "cell_contents", None)
        if not callable(inner):
            continue
        if getattr(inner, "__name__", None) == name:
            return inner
        deeper = _callee(inner, name, depth - 1)
        if deeper is not None:
            return deeper
    return None


def _accepted_names(factory: Factory, err: BaseException | None = None) -> list[str] | None:
    """The keyword arguments the factory accepts, or None if they cannot be read.

    A factory that only forwards **kwargs says nothing; then the callee named by the TypeError
    ("raw_env.__init__() got an unexpected keyword argument") is looked up and read instead."""
    names = _keyword_names(factory)
    if names == ["**kwargs"] and err is not None:
        match = re.match(r"(\w+)(?:\.__init__)?\(\) got an unexpected keyword", str(err))
        inner = _callee(factory, match.group(1)) if match else None
        names = _keyword_names(inner) if inner is not None else names
    return names


def _accepted(factory: Factory, err: BaseException | None = None) -> str:
    """'; it accepts: a, b' for an error message ("" if the arguments cannot be read)."""
    names = _accepted_names(factory, err)
    if names is None:
        return ""
    return f"; it accepts: {', '.join(names) if names else 'no arguments'}"


def _rejected(env_id: str, factory: Factory, kwargs: dict[str, Any], err: BaseException) -> EnvError:
    """The one line for arguments a factory refused; a misspelt name gets the closest accepted one."""
    unknown = re.search(r"unexpected keyword argument '([^']+)'", str(err))
    if not unknown:
        return EnvError(f"env '{env_id}': the factory rejected arguments {kwargs}: {_first_line(err)}"
                        f"{_accepted(factory, err)}")
    name, names = unknown.group(1), _accepted_names(factory, err) or []
    close = difflib.get_close_matches(name, [n for n in names if n != "**kwargs"], n=1, cutoff=0.6)
    hint = f" did you mean '{close[0]}'?" if close else ""
    listed = f" it accepts: {', '.join(names)}" if names else ""
    return EnvError(f"env '{env_id}' has no argument '{name}' (env.kwargs):{hint}{listed}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _build(env_id: str, factory: Factory, kwargs: dict[str, Any]) -> Any:
    """factory(**kwargs), with every way it can fail turned into one EnvError naming the env."""
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as err:
        raise _rejected(env_id, factory, kwargs, err) from None
    except ValueError:
        pass  # no readable signature (a builtin): let the call decide
    try:
        return factory(**kwargs)
    except EnvError:
        raise
    except ImportError as err:
        # A registered factory imports its env package lazily; a missing simulator shows here.
        missing = getattr(err, "name", None)
        hint = f"install it (pip install {missing.split('.')[0]})" if missing else "install the env's package"
        raise EnvError(f"env '{env_id}': building it failed to import a module ({_first_line(err)}); {hint}") from err
    except (TypeError, ValueError, AssertionError) as err:
        # Mostly a misspelt or out-of-range kwarg; one line instead of a deep traceback.
        raise _rejected(env_id, factory, kwargs, err) from err
    except Exception as err:
        raise EnvError(f"env '{env_id}': the factory raised {_first_line(err)}") from err


def make_env(env_id: str, mask_in_obs: bool = False, **kwargs: Any) -> ArrayEnv:
    """Build the env named by `env_id` with the registered defaults overridden by `kwargs`.

    An AEC env is converted with `aec_to_parallel`. `mask_in_obs` also feeds a Dict observation's
    "action_mask" entry to the networks (config env.action_mask_in_obs).
    Raises EnvError for an unknown id, a bad import string, arguments the factory rejects, a
    factory that raises or does not return a PettingZoo env, or an env the adapter cannot handle.
    """
    validate_env_id(env_id)
    factory, defaults = _resolve(env_id)
    env = _build(env_id, factory, {**defaults, **kwargs})
    if isinstance(env, AECEnv):
        try:
            env = aec_to_parallel(env)
        except AssertionError:
            # PettingZoo refuses envs that update between the agents' turns (metadata is_parallelizable).
            raise EnvError(
                f"env '{env_id}' is a turn-based AEC env that PettingZoo cannot convert to a ParallelEnv "
                "(aec_to_parallel needs metadata is_parallelizable); HMASD acts for all agents at once: "
                "return a ParallelEnv"
            ) from None
    elif not isinstance(env, ParallelEnv) and not all(
        hasattr(env, name) for name in ("possible_agents", "reset", "step", "action_space")
    ):
        raise EnvError(
            f"env '{env_id}': the factory returned {type(env).__name__}, not a PettingZoo ParallelEnv; "
            "return a ParallelEnv, or an AECEnv (converted here; pettingzoo.utils.conversions.aec_to_parallel)"
        )
    return ArrayEnv(env, env_id, mask_in_obs=mask_in_obs)


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
