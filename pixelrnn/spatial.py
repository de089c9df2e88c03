"""The spatial row state (`core="spatial"`): the PixelRNN paper's Row LSTM, still one recurrent step per row.

A row's recurrent state is a feature map, `hidden_size` channels by `width` columns, updated from the row
above by convolutions along the row: input-to-state and state-to-state, with weights shared across
columns (van den Oord et al. 2016, section 3.1), and a residual connection around each layer.

NOTE: two deviations from the paper's Row LSTM, both causal because the row above is fully known when a
row is drawn. (1) The row above is read by a stack of dilated convolutions wide enough to cover the whole
row, so every column's state sees every column of the row above (the Diagonal BiLSTM's full context, not
the Row LSTM's widening cone). (2) Inside a row, values are predicted left to right by causal (dilated)
convolutions over the row's own values, conditioned on each column's state, and within a pixel R, then G,
then B by a small masked layer: the likelihood is exact.
"""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import distributions
from .scripting import scripted
from .weight_cache import WeightCache

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
HEAD_DILATIONS = (1, 2, 4, 8)  # the causal row head cycles through these


def row_dilations(width: int, kernel_size: int) -> list:
    """Dilations of the residual blocks that read the row above, doubling until every column sees the whole row."""
    reach, dilations = kernel_size // 2, []  # columns seen on each side
    while 0 < reach < width - 1:  # kernel 1 reads each column alone: nothing to widen
        dilation = 2 ** len(dilations)
        dilations.append(dilation)
        reach += dilation * (kernel_size // 2)
    return dilations


class RowConv(nn.Module):
    """A convolution along a row, channels last: (..., W, in) -> (..., W, out), as one matrix product.

    `reach`: "centered" (columns j - d (k-1)/2 .. j + d (k-1)/2), "causal" (j - d (k-1) .. j) or "before"
    (j - k .. j - 1). Written as shifted copies and a Linear because on a CPU that is several times faster
    than Conv1d at these sizes, forward and backward.
    """

    def __init__(self, in_size, out_size, kernel_size, dilation=1, reach="centered", bias=True):
        super().__init__()
        self.kernel_size, self.dilation, self.reach = kernel_size, dilation, reach
        self.linear = nn.Linear(kernel_size * in_size, out_size, bias=bias)

    def forward(self, x):
        k, d, width = self.kernel_size, self.dilation, x.shape[-2]
        if k == 1 and self.reach != "before":
            return self.linear(x)
        span = d * (k - 1)
        left = {"centered": span // 2, "causal": span, "before": k}[self.reach]
        padded = F.pad(x, (0, 0, left, span - left if self.reach == "centered" else 0))
        taps = [padded[..., i * d : i * d + width, :] for i in range(k)]
        return self.linear(torch.cat(taps, dim=-1))


class ResidualBlock(nn.Module):
    """x + W(relu(conv(relu(x)) [+ V context])) along a row: (..., W, F) -> (..., W, F)."""

    def __init__(self, size, kernel_size, dilation, reach, context_size=0, dropout=0.0):
        super().__init__()
        self.conv = RowConv(size, size, kernel_size, dilation, reach)
        self.context = nn.Linear(context_size, size, bias=False) if context_size else None
        self.out = nn.Linear(size, size)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, context=None):
        a = self.conv(F.relu(x))
        if self.context is not None:
            a = a + self.context(context)
        return x + self.out(self.drop(F.relu(a)))


class RowStateLayer(nn.Module):
    """One recurrent layer of the spatial state: gates from its input (per column) and from the state (along the row)."""

    def __init__(self, size, kernel_size, cell):
        super().__init__()
        self.cell = cell
        self.input_to_state = nn.Linear(size, GATES[cell] * size)
        self.state_to_state = RowConv(size, GATES[cell] * size, kernel_size, bias=False)
        if cell == "lstm":
            with torch.no_grad():
                self.input_to_state.bias[size : 2 * size].fill_(1.0)  # forget gates open at the start

    def forward(self, u):
        """(B, H, W, F): each row's input -> (B, H, W, F): u + the state after reading it, row by row."""
        gates = self.input_to_state(u)  # all rows at once: only the state-to-state part is sequential
        state, outputs = None, []
        for row in range(u.shape[1]):
            hidden, state = self.step(gates[:, row], state)
            outputs.append(hidden)
        return u + torch.stack(outputs, dim=1)

    def step(self, input_gates, state):
        """One row: the input's gate terms (B, W, G F) and the state (None at the start) -> (hidden, state)."""
        if state is None:
            zeros = input_gates.new_zeros(*input_gates.shape[:-1], input_gates.shape[-1] // GATES[self.cell])
            state = (zeros, zeros) if self.cell == "lstm" else zeros
        hidden = state[0] if self.cell == "lstm" else state
        recurrent = self.state_to_state(hidden)
        if self.cell == "lstm":
            i, f, o, g = (input_gates + recurrent).chunk(4, dim=-1)
            cell = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
            hidden = torch.sigmoid(o) * torch.tanh(cell)
            return hidden, (hidden, cell)
        if self.cell == "gru":
            (x_r, x_z, x_n), (h_r, h_z, h_n) = input_gates.chunk(3, dim=-1), recurrent.chunk(3, dim=-1)
            reset, update = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            hidden = torch.lerp(torch.tanh(x_n + reset * h_n), hidden, update)
            return hidden, hidden
        hidden = torch.tanh(input_gates + recurrent)
        return hidden, hidden


class RowStateCore(nn.Module):
    """The rows above -> each row's context (B, H, W, hidden_size), carried row to row by `step`."""

    def __init__(self, channels, width, hidden_size, num_layers, kernel_size, cell, dropout):
        super().__init__()
        self.channels, self.width = channels, width
        # The extra input channel marks a real row: the first row reads an all-zero "row above" without it.
        self.embed = RowConv(channels + 1, hidden_size, kernel_size)
        self.row_above = nn.ModuleList(
            ResidualBlock(hidden_size, kernel_size, d, "centered", dropout=dropout) for d in row_dilations(width, kernel_size)
        )
        self.layers = nn.ModuleList(RowStateLayer(hidden_size, kernel_size, cell) for _ in range(num_layers))
        self.drop = nn.Dropout(dropout)

    def read_rows(self, rows: torch.Tensor, real: bool = True) -> torch.Tensor:
        """Normalized rows (..., W, C) -> their features (..., W, hidden), every column seeing the whole row."""
        flag = rows.new_full((*rows.shape[:-1], 1), 1.0 if real else 0.0)
        x = self.embed(torch.cat([rows, flag], dim=-1))
        for block in self.row_above:
            x = block(x)
        return x

    def forward(self, image: torch.Tensor, class_vector: torch.Tensor | None = None) -> torch.Tensor:
        """Normalized image, channels last (B, H, W, C) -> contexts (B, H, W, hidden); row r's from rows 0..r-1.

        `class_vector` (B, hidden): a class-conditional model's class, added to every row's input.
        """
        start = self.read_rows(image.new_zeros(image.shape[0], 1, *image.shape[2:]), real=False)
        u = torch.cat([start, self.read_rows(image[:, :-1])], dim=1)  # row r reads row r - 1
        if class_vector is not None:
            u = u + class_vector[:, None, None, :]
        for layer in self.layers:
            u = layer(self.drop(u))
        return u

    def step(self, row_above: torch.Tensor | None, state, batch_size: int, class_vector: torch.Tensor | None = None):
        """One row: the normalized row just produced (B, W, C), None at the start -> (context (B, W, hidden), state)."""
        if row_above is None:
            u = self.read_rows(self.embed.linear.weight.new_zeros(batch_size, self.width, self.channels), real=False)
            state = [None] * len(self.layers)
        else:
            u = self.read_rows(row_above)
        if class_vector is not None:
            u = u + class_vector[:, None, :]
        states = []
        for layer, layer_state in zip(self.layers, state):
            hidden, layer_state = layer.step(layer.input_to_state(u), layer_state)
            u = u + hidden
            states.append(layer_state)
        return u, states


class CausalRowHead(nn.Module):
    """Inside a row, left to right: value (column j, channel c) sees its row's context, the values of the
    columns before j, and the channels before c of column j. (N, W, hidden), (N, W, C) -> (N, W, C, K).
    """

    def __init__(self, channels, params_per_value, context_size, head_size, head_layers, kernel_size, dropout):
        super().__init__()
        self.channels, self.params_per_value = channels, params_per_value
        self._plan = WeightCache()  # the weights of `sample`, see `_sampling_plan`
        self.first = RowConv(channels, head_size, kernel_size, reach="before")
        self.context_in = nn.Linear(context_size, head_size)
        self.blocks = nn.ModuleList(
            ResidualBlock(head_size, kernel_size, HEAD_DILATIONS[b % len(HEAD_DILATIONS)], "causal", context_size, dropout)
            for b in range(head_layers)
        )
        # Per channel c: hidden_c = relu(A_c f + B_c v_<c), params_c = O_c hidden_c + D_c v_<c.
        self.pixel_in = nn.Linear(head_size, channels * head_size)
        self.pixel_out = nn.Parameter(torch.randn(channels, head_size, params_per_value) / head_size**0.5)
        self.pixel_bias = nn.Parameter(torch.zeros(channels, params_per_value))
        if channels > 1:
            earlier = (torch.arange(channels)[:, None] > torch.arange(channels)[None, :]).float()  # c sees channels < c
            self.register_buffer("hidden_mask", earlier.repeat_interleave(head_size, 0), persistent=False)
            self.register_buffer("direct_mask", earlier.repeat_interleave(params_per_value, 0), persistent=False)
            self.channel_in = nn.Linear(channels, channels * head_size, bias=False)
            self.channel_out = nn.Linear(channels, channels * params_per_value, bias=False)

    def features(self, context, values):
        """(N, W, hidden), normalized (N, W, C) -> each column's features (N, W, head), from the columns before it."""
        x = self.first(values) + self.context_in(context)
        for block in self.blocks:
            x = block(x, context)
        return F.relu(x)

    def pixel_params(self, features, values):
        """Column features (..., W, head) and the same columns' values (..., W, C) -> (..., W, C, K)."""
        hidden = self.pixel_in(features)  # (N, W', C head)
        if self.channels > 1:
            hidden = hidden + F.linear(values, self.channel_in.weight * self.hidden_mask)
        hidden = F.relu(hidden).unflatten(-1, (self.channels, -1))  # (N, W', C, head)
        params = torch.einsum("...ch,chk->...ck", hidden, self.pixel_out) + self.pixel_bias
        if self.channels > 1:
            params = params + F.linear(values, self.channel_out.weight * self.direct_mask).unflatten(-1, (self.channels, -1))
        return params

    def forward(self, context, inputs):
        """(B, T, W, hidden), normalized tokens (B, T, W C) -> parameters (B, T, W C, K)."""
        values = inputs.unflatten(-1, (context.shape[2], self.channels))  # (B, T, W, C)
        params = self.pixel_params(self.features(context, values), values)
        return params.flatten(2, 3)

    @torch.no_grad()
    def sample(self, context, values, temperature, noise):
        """Draw a row value by value: context (B, W, hidden) -> token (B, W C) and its parameters (B, W C, K).

        `noise` (B, W C, noise_size) as in `MaskedRowHead.sample`; None picks the most likely levels. Column by
        column, each layer is computed at the new column only, from the columns before it kept in `layers`:
        the same sums as `forward`, a width's worth less work than re-running the row for every column.
        """
        batch, width, _ = context.shape
        scale = float(distributions.normalize(torch.ones(()), values) + 1)
        pending = [self.context_in(context)] + [block.context(context) for block in self.blocks]  # (B, W, head): the row's context terms
        if noise is None:
            noise = context.new_zeros(batch, 0, 0)
        plan = self._plan.get(self.parameters(), self._sampling_plan)  # rebuilt only when a weight changes
        row, params = scripted(_sample_row, "slower")(pending, *plan, noise, values, float(temperature), scale, self.channels, self.params_per_value)
        levels = ((row + 1.0) / scale).round()
        return levels.reshape(batch, -1), params.reshape(batch, width * self.channels, -1)

    def _sampling_plan(self) -> tuple:
        """The weights `_sample_row` reads, transposed for its products; per channel c, the weights from the
        channels before it (empty for the first) into its hidden units and parameters, and its output layer."""
        size, k, empty = self.pixel_out.shape[1], self.params_per_value, self.pixel_bias.new_zeros(0, 0)
        blocks = [(b.conv.linear.weight.T, b.conv.linear.bias, b.conv.dilation, b.conv.kernel_size, b.out.weight.T, b.out.bias)
                  for b in self.blocks]  # fmt: skip
        steps = [(self.channel_in.weight[c * size : (c + 1) * size, :c].T if c else empty, self.pixel_out[c], self.pixel_bias[c],
                  self.channel_out.weight[c * k : (c + 1) * k, :c].T if c else empty) for c in range(self.channels)]  # fmt: skip
        return (self.first.linear.weight.T, self.first.linear.bias, self.first.kernel_size, blocks, self.pixel_in.weight.T,
                self.pixel_in.bias, steps)  # fmt: skip


def _sample_row(
    pending: List[torch.Tensor], first_weight: torch.Tensor, first_bias: torch.Tensor, first_kernel: int,
    blocks: List[Tuple[torch.Tensor, torch.Tensor, int, int, torch.Tensor, torch.Tensor]], pixel_weight: torch.Tensor,
    pixel_bias: torch.Tensor, steps: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]], noise: torch.Tensor,
    values: str, temperature: float, scale: float, channels: int, params_per_value: int,
) -> Tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """`CausalRowHead.sample`'s loop: column by column, each layer at the new column only, from the columns kept
    in `layers`; then R, G, B of that column. Scripted: each operation is small, Python's cost would dominate."""
    batch, width, size = pending[0].shape
    row = pending[0].new_zeros(batch, width, channels)  # normalized values drawn so far; later columns are never read
    params = pending[0].new_zeros(batch, width, channels, params_per_value)
    zero_values, zero_units = row.new_zeros(batch, channels), row.new_zeros(batch, size)
    layers = [row.new_zeros(batch, width, size) for _ in range(len(blocks) + 1)]  # each layer's output, column by column
    for j in range(width):
        taps = [row[:, j - first_kernel + i] if j - first_kernel + i >= 0 else zero_values for i in range(first_kernel)]
        x = torch.addmm(first_bias, torch.cat(taps, dim=1), first_weight) + pending[0][:, j]
        layers[0][:, j] = x
        for b in range(len(blocks)):
            conv_weight, conv_bias, dilation, kernel, out_weight, out_bias = blocks[b]
            below = layers[b]
            taps = [torch.relu(below[:, j - dilation * (kernel - 1 - i)]) if j - dilation * (kernel - 1 - i) >= 0 else zero_units
                    for i in range(kernel)]  # fmt: skip
            a = torch.relu(torch.addmm(conv_bias, torch.cat(taps, dim=1), conv_weight) + pending[b + 1][:, j])
            x = x + torch.addmm(out_bias, a, out_weight)
            layers[b + 1][:, j] = x
        hidden = torch.addmm(pixel_bias, torch.relu(x), pixel_weight)  # (B, C head)
        for c in range(channels):
            hidden_weight, unit_weight, unit_bias, direct_weight = steps[c]
            h = hidden[:, c * size : (c + 1) * size]
            if c > 0:
                h = torch.addmm(h, row[:, j, :c], hidden_weight)
            p = torch.addmm(unit_bias, torch.relu(h), unit_weight)
            if c > 0:
                p = torch.addmm(p, row[:, j, :c], direct_weight)
            if noise.shape[1] == 0:
                level = distributions.mode(p, values)
            else:
                level = distributions.sample(p, noise[:, j * channels + c], values, temperature)
            params[:, j, c] = p
            row[:, j, c] = level * scale - 1.0
    return row, params


def parameter_count(config: dict, params_per_value: int) -> int:
    """How many parameters the spatial core and its row head have, from a valid config alone."""
    c, k, K = config["channels"], config["kernel_size"], params_per_value
    hidden, head, gates = config["hidden_size"], config["head_size"], GATES[config["cell"]] * config["hidden_size"]
    residual = lambda size, context=0: (k * size + 1) * size + context * size + (size + 1) * size  # noqa: E731
    core = ((c + 1) * k + 1) * hidden + len(row_dilations(config["width"], k)) * residual(hidden)
    core += config["num_layers"] * ((hidden + 1) * gates + k * hidden * gates)
    row_head = (c * k + 1) * head + (hidden + 1) * head + config["head_layers"] * residual(head, hidden)
    row_head += (head + 1) * c * head + c * head * K + c * K
    if c > 1:
        row_head += c * c * head + c * c * K
    return core + row_head
