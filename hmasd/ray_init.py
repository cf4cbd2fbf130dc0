"""Starting or joining Ray the way HMASD needs it: the one place that calls `ray.init`.

Without an address, Ray starts on this machine and every listener stays on 127.0.0.1: Ray would
otherwise rewrite 127.0.0.1 to the machine's network address (unless
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0), report usage statistics and start a dashboard. With an
address (`ray start --head` on a cluster), Ray is joined as it is.
"""
from __future__ import annotations

import os

# Set before `import ray` anywhere in this process and inherited by the Ray processes it starts.
# (RAY_worker_niceness is not about loopback, but has to be set at the same moment.)
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep 127.0.0.1 as given instead of the network address
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray starts its workers niced (15) to keep the driver responsive; here the actors are the env
    # workers the trainer waits on every step, so on a shared machine they must not yield to other jobs
    # more than the subprocess workers would.
    "RAY_worker_niceness": "0",
}


class RayUnavailable(RuntimeError):
    """The `ray` extra is not installed."""


def import_ray():
    for key, value in LOOPBACK_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable("Ray is not installed: pip install -c constraints.txt -e '.[ray]'") from exc
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None):
    """Start a local Ray on loopback (address None) or join the cluster at `address`; reuse a Ray
    already started in this process. Returns the `ray` module."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    common = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address is None:
        ray.init(_node_ip_address="127.0.0.1", num_cpus=num_cpus, **common)
    else:
        ray.init(address=address, **common)
    return ray
