"""The row heads: what turns a token's context into the distributions of its D values.

`MaskedRowHead` is MADE (Germain et al. 2015) over the values of a token, so they are predicted one after
another and the likelihood is exact; `IndependentRowHead` is the original design, every value from the
context alone. Each draws a whole token with `sample`.
"""
from typing import List, NamedTuple, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import distributions
from .scripting import scripted
from .weight_cache import WeightCache


class IndependentRowHead(nn.Module):
    """The original design: every value of a token is predicted from the context alone."""

    def __init__(self, token_size, params_per_value, context_size):
        super().__init__()
        self.token_size, self.params_per_value = token_size, params_per_value
        self.out = nn.Linear(context_size, token_size * params_per_value)

    def forward(self, context, inputs):  # (B, T, hidden), ignored -> (B, T, D, K)
        return self.out(context).unflatten(-1, (self.token_size, self.params_per_value))

    def sample(self, context, values, temperature, noise):
        """Draw a token (B, D) at once (noise None: the most likely levels); returns it and its parameters."""
        params = self(context.unsqueeze(1), None)[:, 0]
        if noise is None:
            return distributions.mode(params, values), params
        return distributions.sample(params, noise, values, temperature), params


class MaskedLinear(nn.Linear):
    def __init__(self, in_features, out_features, mask, bias=True):
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MaskedRowHead(nn.Module):
    """MADE over the D values of a token: value d sees the context and values 0..d-1 of its own token.

    With direct connections (MADE's input-to-output weights), value d also sees values 0..d-1 linearly:
    the left neighbour, which matters most in an image, does not have to squeeze through the few hidden
    units whose degree lets them see it.
    """

    def __init__(self, token_size, params_per_value, context_size, head_size, head_layers, direct_connections=True, dropout=0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)  # on every hidden layer's units while training; sampling runs in eval mode
        self.token_size, self.params_per_value = token_size, params_per_value
        input_degree = torch.arange(1, token_size + 1)
        hidden_degree = torch.arange(head_size) % max(token_size - 1, 1) + 1
        output_degree = input_degree.repeat_interleave(params_per_value)
        self.inp = MaskedLinear(token_size, head_size, hidden_degree[:, None] >= input_degree[None, :])
        self.context_in = nn.Linear(context_size, head_size)
        self.hidden = nn.ModuleList(
            MaskedLinear(head_size, head_size, hidden_degree[:, None] >= hidden_degree[None, :])
            for _ in range(head_layers - 1)
        )
        self.out = MaskedLinear(head_size, token_size * params_per_value, output_degree[:, None] > hidden_degree[None, :])
        self.context_out = nn.Linear(context_size, token_size * params_per_value)
        self.register_buffer("hidden_degree", hidden_degree, persistent=False)
        self._plan = WeightCache()  # the _SamplingPlan of `sample`, per kind of values
        self.direct = None
        if direct_connections:
            self.direct = MaskedLinear(token_size, token_size * params_per_value, output_degree[:, None] > input_degree[None, :], bias=False)

    def forward(self, context, inputs):  # (B, T, hidden), (B, T, D) -> (B, T, D, K)
        a = self._hidden(self.inp(inputs) + self.context_in(context))
        out = self.out(a) + self.context_out(context)
        if self.direct is not None:
            out = out + self.direct(inputs)
        return out.unflatten(-1, (self.token_size, self.params_per_value))

    def _hidden(self, pre_activation):
        a = self.drop(F.relu(pre_activation))
        for layer in self.hidden:
            a = self.drop(F.relu(layer(a)))
        return a

    def sample(self, context, values, temperature, noise):
        """Draw a token value by value: context (B, hidden) -> token (B, D) and its parameters (B, D, K).

        `noise` (B, D, noise_size) is prepared by `distributions.prepare_noise`; None picks the most likely
        level of each value. The loop itself is `_sample_values`. Its sums run in another order than the
        parallel pass's, so the parameters match `token_params` to float rounding, and a draw that falls
        within rounding of a level boundary may differ from the one the replaced loop made.
        """
        plan = self._sampling_plan(values)
        with torch.no_grad():  # draws are discrete: nothing here has a gradient
            params = torch.addmm(plan.out_bias, context, self.context_out.weight.T)  # (B, D K)
            params = params.unflatten(-1, (self.token_size, self.params_per_value))
            pre_activation = torch.addmm(plan.in_bias, context, plan.context_in)  # (B, head), by degree
            if noise is None:
                noise = params.new_zeros(params.shape[0], 0)
            token = scripted(_sample_values, "2-3x slower")(
                params, pre_activation, noise, values, temperature, plan.bounds, plan.in_weight, plan.hidden, plan.future,
                self.direct is not None,
            )  # fmt: skip
        return token, params

    def _sampling_plan(self, values: str) -> "_SamplingPlan":
        """The masked weights rearranged for `sample`, rebuilt only when a parameter changes."""
        return self._plan.get(self.parameters(), lambda: self._build_sampling_plan(values), values)

    @torch.no_grad()
    def _build_sampling_plan(self, values: str) -> "_SamplingPlan":
        size, k = self.token_size, self.params_per_value
        degree = self.hidden_degree
        order = torch.argsort(degree, stable=True)
        bounds = [int((degree <= m).sum()) for m in range(size)]  # units of degree <= m come first
        # Levels enter as they are drawn: the normalization (level * scale - 1) is folded into the weights,
        # its offset into the biases. A unit or a parameter is only read once all its inputs are in, so
        # adding every input's offset at the start gives the same sums.
        scale = float(distributions.normalize(torch.ones(()), values) + 1)
        in_weight = (self.inp.weight * self.inp.mask)[order]  # (head, D)
        out_bias = self.out.bias + self.context_out.bias
        future = []
        out_weight = (self.out.weight * self.out.mask)[:, order]  # (D K, head)
        for d in range(size - 1):
            rows = slice((d + 1) * k, None)  # the parameters of values d + 1 ...
            columns = [out_weight[rows, bounds[d] : bounds[d + 1]].T]
            if self.direct is not None:
                columns.append(scale * (self.direct.weight[rows, d] * self.direct.mask[rows, d])[None])
            future.append(torch.cat(columns).contiguous())  # (units + 1, (D - d - 1) K)
        if self.direct is not None:
            out_bias = out_bias - (self.direct.weight * self.direct.mask).sum(1)
        return _SamplingPlan(
            bounds=bounds,
            context_in=self.context_in.weight[order].T, in_bias=(self.context_in.bias + self.inp.bias)[order] - in_weight.sum(1),
            in_weight=(scale * in_weight).T.contiguous(), out_bias=out_bias, future=future,
            hidden=[_blocks_by_degree((layer.weight * layer.mask)[order][:, order], layer.bias[order], bounds) for layer in self.hidden],
        )  # fmt: skip


class _SamplingPlan(NamedTuple):
    bounds: list  # bounds[m]: how many units have degree <= m
    context_in: torch.Tensor  # (hidden, head)
    in_bias: torch.Tensor  # (head,)
    in_weight: torch.Tensor  # (D, head): level d's weight into each unit
    out_bias: torch.Tensor  # (D K,)
    future: list  # future[d]: (units of degree d + 1, then level d) -> parameters of the later values
    hidden: list  # per deeper layer, per value d: (weight (units of degree <= d + 1, units of degree d + 1), bias)


def _blocks_by_degree(weight, bias, bounds):
    """A deeper layer's weights (rows and columns by degree) cut into what each value's step reads, contiguous."""
    blocks = []
    for d in range(len(bounds) - 1):
        start, stop = bounds[d], bounds[d + 1]
        blocks.append((weight[start:stop, :stop].T.contiguous(), bias[start:stop].contiguous()))
    return blocks


def _sample_values(
    params: torch.Tensor, pre_activation: torch.Tensor, noise: torch.Tensor, values: str, temperature: float,
    bounds: List[int], in_weight: torch.Tensor, hidden: List[List[Tuple[torch.Tensor, torch.Tensor]]],
    future: List[torch.Tensor], direct: bool,
) -> torch.Tensor:  # fmt: skip
    """The masked row head's sampling loop (see `MaskedRowHead.sample`); fills `params` in place.

    The hidden units are visited in order of degree. Once value d is drawn, the units of degree d + 1 have
    seen every input they ever will: their activations are final, and they (with value d itself, through
    the direct connections) are added to the parameters of every later value in one small matmul. Each
    value costs one update of the units still open and one of the values still to come, not a pass over
    the whole head. It is scripted: each value's operations are so small that Python's own cost per
    operation would be most of the time.
    """
    batch, size = params.shape[0], params.shape[1]
    finals = [torch.zeros_like(pre_activation) for _ in hidden]  # final units of each layer, by degree
    rows, noises = params.unbind(1), noise.unbind(1)  # views: `params` fills in as values are drawn
    tokens: List[torch.Tensor] = []
    for d in range(size):
        if len(noises) == 0:
            tokens.append(distributions.mode(rows[d], values))
        else:
            tokens.append(distributions.sample(rows[d], noises[d], values, temperature))
        if d == size - 1:
            break
        value = tokens[-1]  # normalized by the plan's weights
        start, stop = bounds[d], bounds[d + 1]  # the units of degree d + 1
        pre_activation[:, start:].addr_(value, in_weight[d, start:])
        final = torch.relu(pre_activation[:, start:stop])
        for i in range(len(hidden)):
            weight, bias = hidden[i][d]
            finals[i][:, start:stop] = final
            final = torch.relu(torch.addmm(bias, finals[i][:, :stop], weight))
        features = torch.cat([final, value.unsqueeze(1)], dim=1) if direct else final  # (B, units (+ 1))
        if features.shape[1] > 0:
            params[:, d + 1 :].view(batch, -1).addmm_(features, future[d])  # (B, (D - d - 1) K)
    return torch.stack(tokens, dim=1)
