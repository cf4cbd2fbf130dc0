"""Building blocks shared by the models: orthogonal init, the MLP trunk, the masked GRU, the running
input normaliser."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hmasd.models.sparse_rows import SparseRows, rows_linear

RELU_GAIN = math.sqrt(2.0)
OUTPUT_GAIN = 0.01  # paper settings: orthogonal init with gain 0.01 on output layers


def init_linear(layer: nn.Linear, gain: float = RELU_GAIN) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(in_dim: int, hidden: int, layers: int = 2, norm_input: bool = True) -> "Trunk":
    """Feature-normalised ReLU trunk: LN(in) -> [Linear -> ReLU] x layers (a `Trunk`).

    The input LayerNorm (MAPPO's feature normalisation) matters for raw observations; MAPPO's extra
    LayerNorm after every hidden layer is left out: on a CPU it costs as much as the Linear itself.
    LayerNorm is blind to the input's overall scale (LN(2x) = LN(x)), so observations that are
    already O(1) may do better without it (`norm_input=False`: an Identity keeps the module indices,
    and so the checkpoint keys of the Linear layers, unchanged).
    """
    mods: list[nn.Module] = [nn.LayerNorm(in_dim) if norm_input else nn.Identity()]
    dim = in_dim
    for _ in range(layers):
        mods += [init_linear(nn.Linear(dim, hidden)), nn.ReLU()]
        dim = hidden
    return Trunk(*mods)


class Trunk(nn.Sequential):
    """(LayerNorm | Identity) -> Linear -> ReLU -> ...: the same function and parameters as the plain
    Sequential, computed in two steps so that the widest layer costs less than a third of what it did
    (forward and backward at Overcooked's size, 25,600 x 1,175 -> 64 on one thread: 0.48 -> 0.14 s,
    bench/test_bench_first_layer.py; its sparse rows, below, 0.044 s).

    With x_hat = (x - mean(x)) / std(x), the LayerNorm is x_hat * gamma + beta, so the first Linear of it is
    x_hat @ (W * gamma)^T + (b + W beta). `normalize` computes x_hat, which holds no parameter; the
    learner does it once per update for inputs that every epoch sees unchanged, instead of once per
    epoch (on Overcooked's 1,175-wide grid the LayerNorm cost as much as the Linear). `from_normalized`
    applies the folded Linear and the rest: autograd then needs no gradient with respect to x_hat, one
    matrix product of the input's width fewer per backward pass, and the LayerNorm's own backward is
    gone; gamma and beta still get their exact gradients through W * gamma and W beta. The result
    differs from LayerNorm -> Linear only by float rounding (tests/test_models.py).
    """

    def normalize(self, x: torch.Tensor, sparse: bool = False) -> torch.Tensor | SparseRows:
        """x [..., in] -> x_hat [..., in]: the input LayerNorm without its affine part (no parameters).

        With `sparse`, and x mostly zeros (`SparseRows.worthwhile`), x_hat is kept as x's sparse rows
        and their statistics, and `from_normalized` never makes it dense: for inputs that the learner
        uses whole, every epoch (one minibatch), since sparse rows are not gathered.
        """
        norm = self[0]
        layer_norm = isinstance(norm, nn.LayerNorm)
        if sparse and SparseRows.worthwhile(x):
            return SparseRows.of(x, norm.eps if layer_norm else None)
        if layer_norm:
            return F.layer_norm(x, norm.normalized_shape, None, None, norm.eps)
        return x

    def from_normalized(self, x_hat: torch.Tensor | SparseRows) -> torch.Tensor:
        """`normalize`'s output -> the trunk's output."""
        norm, first = self[0], self[1]
        if isinstance(norm, nn.LayerNorm):
            weight, bias = first.weight * norm.weight, first.bias + first.weight @ norm.bias
        else:
            weight, bias = first.weight, first.bias
        out = rows_linear(x_hat, weight, bias) if isinstance(x_hat, SparseRows) else F.linear(x_hat, weight, bias)
        for layer in list(self)[2:]:
            out = layer(out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_normalized(self.normalize(x))


class RunningNorm(nn.Module):
    """Per-feature running mean/std normalisation of raw inputs (`model.input_norm: running`).

    Unlike LayerNorm it keeps the input's scale: every feature is shifted and divided by its own
    mean and std over all data seen so far (Chan et al.'s parallel variance merge), then clipped to
    +-10, as VecNormalize-style normalisers do. The statistics change only through `update`, which
    the learner calls once per update with the batch it has just learned from: a batch is collected
    and learned under the same statistics, so PPO's ratio compares like with like. Buffers, so the
    statistics travel in checkpoints and reach evaluation.
    """

    CLIP = 10.0

    def __init__(self, dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(dim, dtype=torch.float64))  # sum of squared deviations
        # float32 copies read by forward, refreshed by update (identity until the first update)
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the rows of x [..., dim] into the statistics."""
        x = x.detach().reshape(-1, self.mean.shape[0]).to(self.mean.device, torch.float64)
        n = x.shape[0]
        if n == 0:
            return
        batch_mean = x.mean(0)
        batch_m2 = ((x - batch_mean) ** 2).sum(0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * (n / total)
        self.m2 += batch_m2 + delta**2 * (self.count * n / total)
        self.count.copy_(total)
        self.shift.copy_(self.mean)
        self.scale.copy_((self.m2 / self.count + self.eps).sqrt())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.shift) / self.scale).clamp(-self.CLIP, self.CLIP)


class MaskedGRU(nn.Module):
    """A GRU whose hidden state is zeroed at episode starts.

    `forward(x [T, N, H], h0 [N, H], starts [T, N] bool)` -> (out [T, N, H], h_T [N, H]).
    starts[t, n] marks that x[t, n] is the first input of an episode, so the hidden state is reset
    before it. The sequence is cut at the steps where any row starts an episode and each piece runs
    through one fused nn.GRU call (the approach of ikostrikov's pytorch-a2c-ppo-acktr and MAPPO), which
    is exact and much faster than a Python loop over steps.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(hidden, hidden)
        for name, param in self.gru.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(param)
            else:
                nn.init.zeros_(param)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, h0: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = (~starts).to(x.dtype).unsqueeze(-1)  # [T, N, 1]
        cuts = [0] + (starts[1:].any(dim=1).nonzero().squeeze(-1) + 1).tolist() + [x.shape[0]]
        h = h0.unsqueeze(0)  # [1, N, H]
        outs = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            out, h = self.gru(x[a:b], h * keep[a].unsqueeze(0))
            outs.append(out)
        out = torch.cat(outs, dim=0) if len(outs) > 1 else outs[0]
        return self.norm(out), h.squeeze(0)
