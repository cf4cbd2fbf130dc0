"""HMASD environments: Alice_and_Bob and the PettingZoo array adapter.

`make_env(env_id, **kwargs)` returns an `ArrayEnv` for a registered id or an import string
"package.module:factory"; see `registry` and `adapter`. This package imports neither torch nor
hmasd, so env worker processes stay light.
"""
from .adapter import ArrayEnv, EnvSpec, EnvStep
from .errors import EnvError
from .registry import make_env, register, registered_ids, validate_env_id

__all__ = [
    "ArrayEnv",
    "EnvError",
    "EnvSpec",
    "EnvStep",
    "make_env",
    "register",
    "registered_ids",
    "validate_env_id",
]
