#!/usr/bin/env python3
"""The Alice_and_Bob per-seed table of docs/results.md ("Six seeds, aggregated"), in the statistics of hmasd/stats.py."""
# Success (%) per seed at 1M and 3M env steps: seeds 1-4 from docs/results.md, seeds 101 and 202
# as reported by the fresh-seed trial that opened the Overcooked study (configs/alice_and_bob_extrinsic.yaml).
import numpy as np
from hmasd.stats import iqm, stratified_bootstrap_ci
runs = {
    "HMASD, lambda_e 10": {"1M": [100, 100, 0, 0, 0, 100], "3M": [100, 100, 0, 0, 95, 100]},
    "MAPPO": {"1M": [0, 0, 100, 0, 100, 0], "3M": [100, 0, 100, 100, 100, 0]},
}
for label, at in runs.items():
    for step, x in at.items():
        m = stratified_bootstrap_ci(x, np.mean, rng=0); q = stratified_bootstrap_ci(x, iqm, rng=0)
        print(f"| {label} | {step} | {sum(v >= 70 for v in x)} of {len(x)} | {m[0]:.0f} [{m[1]:.0f}, {m[2]:.0f}] | {q[0]:.0f} [{q[1]:.0f}, {q[2]:.0f}] |")
