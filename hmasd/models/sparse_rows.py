"""Layer-normalised rows of a sparse input, and the Linear over them that never makes them dense.

Grid observations are mostly zeros (Overcooked's lossless grid: about 3% of its 1,170 entries), but
their LayerNorm x_hat = (x - mean) * rstd is dense, so a dense first layer multiplies all of it. For
inputs that every epoch of an update sees unchanged, `SparseRows` keeps x sparse (CSR) with each
row's mean and rstd, and `rows_linear` computes

    x_hat @ W^T = rstd * (x @ W^T - mean * W 1)
    dL/dW = sum_r rstd_r g_r (x_r - mean_r)^T = (x^T (rstd g))^T - (rstd g)^T mean 1^T

(g = dL/d output), two sparse products instead of two dense ones of the input's width. The same
values as the dense path up to float rounding (tests/test_models.py).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

# Below this share of nonzero entries the sparse products win: on one CPU thread at Overcooked's size
# (25,600 rows of 1,175 entries, 64 outputs) they were 8x (forward) and 4.5x (weight gradient) faster
# at 3%, and the gain shrinks about in proportion to the density (bench/test_bench_first_layer.py).
MAX_DENSITY = 0.1


@dataclass(frozen=True)
class SparseRows:
    """x [..., D] as CSR rows [R, D] (and their transpose, for the weight gradient), with each row's
    LayerNorm statistics (mean and rstd [R, 1]; 0 and 1 where no LayerNorm applies). `lead` is the
    shape of the leading axes, restored on the output. Built once per update; never gathered: the
    learner builds it only when every epoch uses the whole batch."""

    rows: torch.Tensor
    rows_t: torch.Tensor
    mean: torch.Tensor
    rstd: torch.Tensor
    lead: tuple[int, ...]

    def __getitem__(self, index):
        raise TypeError("SparseRows are used whole: build them only where no minibatch gathers rows")

    @staticmethod
    def worthwhile(x: torch.Tensor) -> bool:
        """Mostly zeros, on the CPU: the gain was measured there; on a GPU the dense product of this
        size takes well under a millisecond, and the sparse one is not known to win."""
        return x.device.type == "cpu" and x.numel() > 0 and int(torch.count_nonzero(x)) <= MAX_DENSITY * x.numel()

    @classmethod
    def of(cls, x: torch.Tensor, eps: float | None) -> "SparseRows":
        """x [..., D] dense; eps: the LayerNorm's (None: no LayerNorm, x is used as it is)."""
        flat = x.reshape(-1, x.shape[-1])
        (n, d), ones = flat.shape, flat.new_ones(flat.shape[-1], 1)
        with warnings.catch_warnings():  # torch calls its sparse CSR layout beta; the products used here are plain
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            rows = flat.to_sparse_csr()
            by_column = rows.to_sparse_csc()  # x's columns are the rows of x^T: read as CSR of x^T
            # Both reuse the index arrays of tensors torch built, so they hold by construction.
            rows_t = torch.sparse_csr_tensor(by_column.ccol_indices(), by_column.row_indices(), by_column.values(),
                                             size=(d, n), check_invariants=False)
            squares = torch.sparse_csr_tensor(rows.crow_indices(), rows.col_indices(), rows.values() ** 2,
                                               size=(n, d), check_invariants=False)
        if eps is None:
            mean, rstd = flat.new_zeros(n, 1), flat.new_ones(n, 1)
        else:  # as F.layer_norm computes them (biased variance, eps inside the root), from the nonzeros only.
            # mean^2 <= (the row's share of nonzeros) * mean of squares (Cauchy-Schwarz over its nonzeros),
            # so for mostly-zero rows the subtraction below cancels little: at 10%, a tenth at most.
            mean = (rows @ ones) / d
            var = ((squares @ ones) / d - mean * mean).clamp_min(0.0)
            rstd = (var + eps).rsqrt()
        return cls(rows, rows_t, mean, rstd, tuple(x.shape[:-1]))


class _RowsLinear(torch.autograd.Function):
    """x_hat @ weight^T for `SparseRows`; a gradient for the weight only (the rows are data)."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, x: SparseRows) -> torch.Tensor:
        ctx.x = x
        return x.rstd * (x.rows @ weight.t() - x.mean * weight.sum(1))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x = ctx.x
        g = grad * x.rstd  # [R, H]
        return (x.rows_t @ g).t() - (g * x.mean).sum(0)[:, None], None


def rows_linear(x: SparseRows, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """F.linear(x_hat, weight, bias) -> [*x.lead, out]."""
    out = _RowsLinear.apply(weight, x) + bias
    return out.reshape(*x.lead, out.shape[-1])
