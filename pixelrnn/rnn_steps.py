"""One step of the vector core's RNN at a time, for sampling: faster kernels than nn.LSTM's for a single step.

Both compute the same function as `rnn(step_input, state)`: `lstm_step` to float rounding, `fast_rnn_step`
with its matrix products in bfloat16 (`bench/sampling.py` measures both).
"""
import torch
import torch.nn as nn


def lstm_step(rnn: nn.LSTM, step_input: torch.Tensor, state):
    """One step of a unidirectional nn.LSTM in eval mode on the CPU, layer by layer through the fused LSTM cell.

    The same function as `rnn(step_input, state)`, to float rounding; on the CPU, nn.LSTM's sequence kernel
    costs about twice as much for a single step (`bench/sampling.py`), which sampling takes once per row.
    """
    batch = step_input.shape[0]
    if state is None:
        zeros = step_input.new_zeros(rnn.num_layers, batch, rnn.hidden_size)
        state = (zeros, zeros)
    x, hidden, cell = step_input[:, 0], [], []
    for layer in range(rnn.num_layers):
        weights = [getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        x, c = torch.ops.aten.lstm_cell(x, [state[0][layer], state[1][layer]], *weights)
        hidden.append(x)
        cell.append(c)
    return x.unsqueeze(1), (torch.stack(hidden), torch.stack(cell))


@torch.no_grad()
def bfloat16_rnn_weights(rnn) -> list:
    """Per layer: (input weights, hidden weights) transposed in bfloat16, and their biases as they are.

    An LSTM's or a plain RNN's two products are summed at once, so their weights are stacked into one.
    """
    layers = []
    for layer in range(rnn.num_layers):
        w_ih, w_hh, b_ih, b_hh = (getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        if isinstance(rnn, nn.GRU):  # its new-gate candidate needs the hidden product on its own
            layers.append(([w_ih.T.contiguous().bfloat16(), w_hh.T.contiguous().bfloat16()], [b_ih, b_hh]))
        else:
            layers.append(([torch.cat([w_ih, w_hh], 1).T.contiguous().bfloat16()], [b_ih + b_hh]))
    return layers


def fast_rnn_step(rnn, weights: list, step_input: torch.Tensor, state):
    """One step of a unidirectional many-to-many RNN, GRU or LSTM with its matrix products in bfloat16.

    Only the products' inputs are rounded to bfloat16; they accumulate in float32, and the gates, the cell
    state and the carried state stay in the model's precision. On a CPU with bfloat16 instructions (AVX512-BF16, AMX)
    the shipped binarized-mnist draws 1.48x faster with this step (`bench/sampling.py --only-fast`), and its
    test NLL, scored with this step, moves by about 1e-4 nats (`bench/sampling.py --fidelity`).
    """
    batch, lstm, dtype = step_input.shape[0], isinstance(rnn, nn.LSTM), step_input.dtype
    if state is None:
        zeros = step_input.new_zeros(rnn.num_layers, batch, rnn.hidden_size)
        state = (zeros, zeros) if lstm else zeros
    hidden_in, cell_in = state if lstm else (state, None)
    x, hidden, cell = step_input[:, 0], [], []
    for layer, (matrices, biases) in enumerate(weights):
        h = hidden_in[layer]
        if isinstance(rnn, nn.GRU):
            gi = torch.mm(x.bfloat16(), matrices[0]).to(dtype).add_(biases[0])
            gh = torch.mm(h.bfloat16(), matrices[1]).to(dtype).add_(biases[1])
            (i_r, i_z, i_n), (h_r, h_z, h_n) = gi.chunk(3, 1), gh.chunk(3, 1)
            reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            x = torch.lerp(torch.tanh(i_n + reset * h_n), h, update)  # (1 - z) n + z h
        else:
            gates = torch.mm(torch.cat([x, h], 1).bfloat16(), matrices[0]).to(dtype).add_(biases[0])
            if lstm:
                i, f, g, o = gates.chunk(4, 1)
                c = torch.sigmoid(f) * cell_in[layer] + torch.sigmoid(i) * torch.tanh(g)
                x = torch.sigmoid(o) * torch.tanh(c)
                cell.append(c)
            else:
                x = torch.tanh(gates)
        hidden.append(x)
    hidden = torch.stack(hidden)
    return x.unsqueeze(1), ((hidden, torch.stack(cell)) if lstm else hidden)
