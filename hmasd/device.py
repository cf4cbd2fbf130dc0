"""Where the update runs (config key `device`), and how the acting copy of the agent follows it.

Acting stays on the CPU, where the envs are: each env step is one forward pass over E*A rows, so
it is latency-bound, and a round trip to an accelerator per step would cost more than the CPU's
arithmetic. The update is the throughput-bound part (epochs x minibatches over the whole rollout),
so on `device: cuda` the learner owns its own copy of the agent there and, after each update, the
CPU acting copy is synced from it: one state_dict's worth of transfer per update.
On `device: cpu` there is a single agent and no sync at all.
"""
from __future__ import annotations

import torch
from torch import nn

from hmasd.config import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu. Raises ConfigError (one line, with the fix) for
    `cuda` on a machine without a usable CUDA device, so the run stops before any env is built."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' is not available here (torch.cuda.is_available() is False): "
                          "use device=cpu or auto")
    return torch.device(name)


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    # Every parameter and every buffer, persistent or not. This is all of the agent's changing state:
    # the policy version, the value normalisers' and the input normalisers' statistics are buffers;
    # their plain attributes (beta, epsilon, enabled, eps) are fixed by the config at construction.
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


@torch.no_grad()
def sync_acting_copy(src: nn.Module, dst: nn.Module) -> None:
    """Copy every parameter and buffer of `src` into `dst` in place (across devices as needed), so
    `dst` acts exactly as `src` would. In place: the collector and evaluation keep their reference to
    `dst`. The two must be built from the same config (same names and shapes)."""
    source, target = _state(src), _state(dst)
    if source.keys() != target.keys():
        raise ValueError(f"agents differ: {sorted(source.keys() ^ target.keys())[:3]}")
    for name, tensor in source.items():
        target[name].copy_(tensor)


def to_cpu(tree):
    """A state_dict (or nested dicts/lists of them, e.g. an optimiser's) with every tensor on the CPU,
    so checkpoints load on any machine. Tensors already on the CPU are returned as they are (no copy)."""
    if isinstance(tree, torch.Tensor):
        return tree.cpu()
    if isinstance(tree, dict):
        out = type(tree)((k, to_cpu(v)) for k, v in tree.items())
        if hasattr(tree, "_metadata"):  # a module state_dict's per-module versions, read by load_state_dict
            out._metadata = tree._metadata
        return out
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_cpu(v) for v in tree)
    return tree
