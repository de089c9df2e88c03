"""PixelRNN, row by row: an image is a sequence of rows, an RNN reads the rows above and predicts the next.

After "Pixel Recurrent Neural Networks" (van den Oord, Kalchbrenner, Kavukcuoglu, 2016), in the simple
encoder -> RNN -> decoder shape of a row-sequence model:

    tokens (B, T, D) -> encoder -> shift right (start token) -> RNN -> decoder -> head -> (B, T, D, K)

A token is one row (`step="row"`: T = H, D = W*C, values pixel-major: R, G, B of pixel 0, then pixel 1)
or one pixel (`step="pixel"`: T = H*W, D = C). Each of the D values gets K distribution parameters.
NOTE: the row head is a MADE-style masked network (Germain et al. 2015), so the values inside a token
are predicted autoregressively and the likelihood is exact; `row_head="independent"` is the original
design, where they are conditionally independent given the tokens above.
"""
import warnings
from typing import List, NamedTuple, Tuple

import inspect
import reprlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin

from . import checkpoint, distributions, spatial
from .card import HUB_METADATA
from .errors import PixelRNNError
from .views import view_count

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks per RNN layer and direction
MODES = ("many-to-many", "many-to-one")
ROW_HEADS = ("autoregressive", "independent")
STEPS = ("row", "pixel")
CORES = ("vector", "spatial")  # one hidden vector per row, or a feature map over its columns (spatial.py)
MAX_SIDE, MAX_HIDDEN, MAX_LAYERS, MAX_WINDOW, MAX_MIXTURES = 1024, 8192, 16, 4096, 32
MAX_LAYER_WEIGHTS = 2**27  # one weight matrix above this (512 MiB in float32) is refused
MAX_PARAMETERS = 2**28  # a model above this (1 GiB in float32) is refused; the shipped ones have < 10 M
MAX_HEAD_LAYERS = 8
MAX_VIEW_SHIFT = 4


class PixelRNN(nn.Module, PyTorchModelHubMixin, **{**HUB_METADATA, "tags": list(HUB_METADATA["tags"])}):
    """A row-by-row autoregressive image model. Every keyword is validated and stored in `config`.

    The keywords of __init__ are the options, named once: `OPTIONS`, config.json and the CLI flags derive from them.
    """

    def __init__(
        self,
        height: int = 28,
        width: int = 28,
        channels: int = 1,
        values: str = "binary",
        cell: str = "gru",
        hidden_size: int = 256,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        head_dropout: float = 0.0,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        batch_norm: bool = True,
        mode: str = "many-to-many",
        window: int = 8,
        row_head: str = "autoregressive",
        step: str = "row",
        head_size: int = 256,
        head_layers: int = 1,
        mixtures: int = 5,
        direct_connections: bool = True,
        view_shift: int = 0,
        core: str = "vector",
        kernel_size: int = 3,
    ):
        arguments = locals()  # first thing: the keywords as given
        config = {name: arguments[name] for name in OPTIONS}
        validate_config(config)
        super().__init__()
        self._config = config
        self._hub_mixin_config = dict(config)
        self._fast_rnn = None  # (parameter versions, weights) for `context_step(fast=True)`

        self.token_size = width * channels if step == "row" else channels  # D
        self.num_tokens = height if step == "row" else height * width  # T
        self.tokens_per_row = 1 if step == "row" else width
        self.params_per_value = distributions.params_per_value(values, mixtures)  # K

        if core == "spatial":
            self.core = spatial.RowStateCore(channels, width, hidden_size, num_layers, kernel_size, cell, dropout)
            self.head = spatial.CausalRowHead(channels, self.params_per_value, hidden_size, head_size, head_layers, kernel_size, head_dropout)
            return
        directions = 2 if bidirectional else 1
        self.encoder = _dense(self.token_size, hidden_size, batch_norm)
        self.start = nn.Parameter(torch.randn(hidden_size) * 0.1)
        self.rnn = CELLS[cell](
            hidden_size, hidden_size, num_layers=num_layers, batch_first=True,
            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0,
        )  # fmt: skip
        self.decoder = _dense(hidden_size * directions, hidden_size, batch_norm)
        self.drop = nn.Dropout(dropout)
        self.input_drop = nn.Dropout(input_dropout)  # on the RNN's input: the encoded rows above, while training
        # Distribution augmentation (Jun et al. 2020): trained on shifted copies too, told which shift each is;
        # view 0 is the image as it is, the only one evaluated and sampled.
        self.views = nn.Embedding(view_count(view_shift), hidden_size) if view_shift else None
        if row_head == "autoregressive":
            self.head = MaskedRowHead(
                self.token_size, self.params_per_value, hidden_size, head_size, head_layers, direct_connections, head_dropout
            )
        else:
            self.head = IndependentRowHead(self.token_size, self.params_per_value, hidden_size)

    @property
    def config(self) -> dict:
        """The full configuration, defaults included: what config.json holds."""
        return dict(self._config)

    @property
    def head_parameter(self) -> torch.Tensor:
        """A parameter whose device and dtype are the model's."""
        return next(self.head.parameters())

    @property
    def device(self) -> torch.device:
        return self.head_parameter.device

    @classmethod
    def check_config(cls, options: dict, max_parameters: int | None = None) -> dict:
        """The full configuration for these options (defaults filled in), validated without building anything."""
        config = {**DEFAULTS, **options}
        validate_config(config, max_parameters)
        return config

    @staticmethod
    def parameter_count(config: dict) -> int:
        """How many parameters PixelRNN(**config) has, from a valid config alone (see `parameter_count`)."""
        return parameter_count(config)

    # -- checkpoints (see checkpoint.py; publishing in publish.py) ------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, revision: str | None = None, *,
                        max_parameters: int | None = None, **kwargs) -> "PixelRNN":  # fmt: skip
        """Load from a checkpoint folder or a Hub repo id: strict, safetensors only, in eval mode.

        `token=False` loads anonymously (no token is sent, even with HF_TOKEN set); `max_parameters` refuses a
        larger model from its config.json, before its weights are downloaded or anything is built.
        """
        return checkpoint.load(cls, pretrained_model_name_or_path, revision, max_parameters=max_parameters, **kwargs)

    def save_pretrained(self, save_directory, *, model_card_kwargs: dict | None = None, push_to_hub=False, repo_id=None, **push_kwargs):
        """Write model.safetensors, config.json and a model card (README.md) to a folder (and publish it)."""
        checkpoint.save(self, save_directory, **(model_card_kwargs or {}))
        if push_to_hub:
            from .publish import push  # the one import back up: the mixin's API publishes from the model

            return push(save_directory, repo_id, **push_kwargs)
        return None

    def push_to_hub(self, repo_id: str, *, private: bool = False, revision: str | None = None, token: str | None = None,
                    commit_message: str | None = None, model_card_kwargs: dict | None = None) -> str:  # fmt: skip
        """Publish this model to a Hub repo, through the same checks as `python -m pixelrnn push`."""
        import tempfile

        from .publish import push  # the one import back up: the mixin's API publishes from the model

        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, model_card_kwargs=model_card_kwargs)
            return push(folder, repo_id, private=private, revision=revision, token=token, commit_message=commit_message)

    # -- layout ---------------------------------------------------------------------------------
    def to_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, T, D): rows (or pixels) in raster order, channels last inside."""
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], self.num_tokens, self.token_size)

    def to_image(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, C, H, W)."""
        c = self._config
        return tokens.reshape(tokens.shape[0], c["height"], c["width"], c["channels"]).permute(0, 3, 1, 2)

    def check_batch(self, x: torch.Tensor) -> None:
        c = self._config
        expected = (c["channels"], c["height"], c["width"])
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise PixelRNNError(f"expected a batch of shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")

    # -- the parallel, teacher-forced pass --------------------------------------------------------
    def forward(self, x: torch.Tensor, views: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) in value space -> distribution parameters (B, T, D, K) for every value.

        `views` (B,): which shifted view of its image each is (see `views.shifted_views`); None is view 0 for all.
        """
        self.check_batch(x)
        tokens = self.to_tokens(x.to(self.head_parameter.dtype))
        inputs = distributions.normalize(tokens, self._config["values"])
        return self.head(self.contexts(inputs, views), inputs)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-likelihood of every value, in nats: (B, C, H, W) -> (B, C, H, W)."""
        params = self(x)
        tokens = self.to_tokens(x.to(params.dtype))
        return self.to_image(distributions.log_prob(params, tokens, self._config["values"]))

    def contexts(self, inputs: torch.Tensor, views: torch.Tensor | None = None) -> torch.Tensor:
        """Normalized tokens (B, T, D) -> the context for each token (B, T, hidden), from earlier tokens only."""
        batch, steps, _ = inputs.shape
        if self._config["core"] == "spatial":
            c = self._config
            return self.core(inputs.reshape(batch, c["height"], c["width"], c["channels"]))
        embedded = self.input_drop(self._encode(inputs))
        sequence = torch.cat([self.start.expand(batch, 1, -1), embedded[:, :-1]], dim=1)  # shift right
        sequence = self._with_view(sequence, views)
        if self._config["mode"] == "many-to-many":
            outputs, _ = self._run_rnn(sequence)
        else:
            window = self._config["window"]
            padded = F.pad(sequence, (0, 0, window - 1, 0))  # zeros before the start token
            windows = padded.unfold(1, window, 1).permute(0, 1, 3, 2)  # (B, T, window, E)
            outputs, _ = self._run_rnn(windows.reshape(batch * steps, window, -1))
            outputs = outputs[:, -1].reshape(batch, steps, -1)
        return self._decode(outputs)

    def _run_rnn(self, sequence: torch.Tensor):
        """The RNN over whole sequences; while training, with `recurrent_dropout` on its hidden-to-hidden weights.

        One mask per pass, shared by every step and image (DropConnect, as in AWD-LSTM's weight drop): it
        regularizes the recurrence itself, which dropout on the RNN's inputs and outputs does not reach.
        """
        rate = self._config["recurrent_dropout"]
        if not (self.training and rate > 0):
            return self.rnn(sequence)
        weights = {name: F.dropout(w, rate) if name.startswith("weight_hh") else w for name, w in self.rnn.named_parameters()}
        return torch.func.functional_call(self.rnn, weights, (sequence,))

    # -- one token at a time, with carried state --------------------------------------------------
    def context_step(self, previous: torch.Tensor | None, state=None, batch_size: int = 1, fast: bool = False):
        """Context for the next token, given the token just produced (None at the start of an image).

        Many-to-many carries the RNN state: an image costs T RNN steps. Many-to-one re-reads its window of
        the last `window` tokens for every token: T x window steps. Returns (context (B, hidden), state).
        `fast` (many-to-many, eval mode): the RNN step's matrix products in bfloat16, the rest in the model's
        precision (see `_fast_rnn_step`); it changes nothing elsewhere.
        """
        if self._config["core"] == "spatial":
            row_above = None
            if previous is not None:
                c = self._config
                row_above = distributions.normalize(previous, c["values"]).reshape(-1, c["width"], c["channels"])
            return self.core.step(row_above, state, batch_size)
        if previous is None:
            step_input = self.start.expand(batch_size, 1, -1)
        else:
            step_input = self._encode(distributions.normalize(previous, self._config["values"]).unsqueeze(1))
        step_input = self._with_view(step_input, None)
        many_to_many = self._config["mode"] == "many-to-many"
        fused_lstm = isinstance(self.rnn, nn.LSTM) and not self.training and step_input.device.type == "cpu"
        if many_to_many and fast and not self.training:
            output, state = _fast_rnn_step(self.rnn, self._fast_rnn_weights(), step_input, state)
        elif many_to_many and fused_lstm:
            output, state = _lstm_step(self.rnn, step_input, state)
        elif many_to_many:
            output, state = self.rnn(step_input, state)
        else:
            if state is None:
                state = step_input.new_zeros(step_input.shape[0], self._config["window"], step_input.shape[-1])
            state = torch.cat([state[:, 1:], step_input], dim=1)
            output, _ = self.rnn(state)
        return self._decode(output[:, -1:])[:, 0], state

    def token_params(self, context: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        """Distribution parameters (B, D, K) for a known token (B, D) given its context: teacher forcing."""
        inputs = distributions.normalize(token, self._config["values"])
        return self.head(context.unsqueeze(1), inputs.unsqueeze(1))[:, 0]

    def sample_token(self, context, temperature=1.0, greedy=False, generator=None):
        """Draw one token (B, D) value by value; returns it with the parameters each value was drawn from."""
        c = self._config
        noise = None  # greedy: the most likely level of each value
        if not greedy:
            shape = (context.shape[0], self.token_size, distributions.noise_size(c["values"], c["mixtures"]))
            uniform = torch.rand(shape, generator=generator, device=context.device, dtype=context.dtype)
            noise = distributions.prepare_noise(uniform, c["values"])
        return self.head.sample(context, c["values"], float(temperature), noise)

    # -- pieces -------------------------------------------------------------------------------------
    def _with_view(self, sequence, views):
        """The RNN's input (B, T, hidden) told which view it reads: `views` (B,), or None for view 0."""
        if self.views is None:
            if views is not None and bool((views != 0).any()):
                raise PixelRNNError("this model was not trained on shifted views (view_shift is 0)")
            return sequence
        if views is None:
            return sequence + self.views.weight[0]
        count = self.views.num_embeddings
        if views.shape != sequence.shape[:1] or views.is_floating_point() or not bool(((views >= 0) & (views < count)).all()):
            raise PixelRNNError(f"views must be {sequence.shape[0]} whole numbers in 0..{count - 1}, one per image")
        return sequence + self.views(views).unsqueeze(1)

    def _encode(self, inputs):
        return _apply_dense(self.encoder, inputs)

    def _decode(self, outputs):
        return _apply_dense(self.decoder, self.drop(outputs))

    def _fast_rnn_weights(self) -> list:
        """The RNN's weights for `_fast_rnn_step`, rebuilt only when a parameter changes."""
        key = tuple((p.data_ptr(), p._version, p.dtype) for p in self.rnn.parameters())
        if self._fast_rnn is None or self._fast_rnn[0] != key:
            self._fast_rnn = (key, _bfloat16_rnn_weights(self.rnn))
        return self._fast_rnn[1]


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
        self._plan = None  # (parameter versions, _SamplingPlan), see `sample`
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
            token = _sample_values_compiled()(
                params, pre_activation, noise, values, temperature, plan.bounds, plan.in_weight, plan.hidden, plan.future,
                self.direct is not None,
            )  # fmt: skip
        return token, params

    def _sampling_plan(self, values: str) -> "_SamplingPlan":
        """The masked weights rearranged for `sample`, rebuilt only when a parameter changes."""
        key = (values, *((p.data_ptr(), p._version) for p in self.parameters()))
        if self._plan is None or self._plan[0] != key:
            self._plan = (key, self._build_sampling_plan(values))
        return self._plan[1]

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
            order=order, bounds=bounds,
            context_in=self.context_in.weight[order].T, in_bias=(self.context_in.bias + self.inp.bias)[order] - in_weight.sum(1),
            in_weight=(scale * in_weight).T.contiguous(), out_bias=out_bias, future=future,
            hidden=[_blocks_by_degree((layer.weight * layer.mask)[order][:, order], layer.bias[order], bounds) for layer in self.hidden],
        )  # fmt: skip


class _SamplingPlan(NamedTuple):
    order: torch.Tensor  # hidden units sorted by degree
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


_compiled = []


def _sample_values_compiled():
    """`_sample_values` scripted once per process; the plain function where TorchScript is unavailable."""
    if not _compiled:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, not gone
                _compiled.append(torch.jit.script(_sample_values))
        except Exception:  # noqa: BLE001 - any failure to script leaves the same loop, run by Python
            _compiled.append(_sample_values)
    return _compiled[0]


def _lstm_step(rnn: nn.LSTM, step_input: torch.Tensor, state):
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
def _bfloat16_rnn_weights(rnn) -> list:
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


def _fast_rnn_step(rnn, weights: list, step_input: torch.Tensor, state):
    """One step of a unidirectional many-to-many RNN, GRU or LSTM with its matrix products in bfloat16.

    Only the products' inputs are rounded to bfloat16; they accumulate in float32, and the gates, the cell
    state and the carried state stay in the model's precision. On a CPU with bfloat16 instructions (AVX512-BF16, AMX) the
    products take about half the time (`bench/sampling.py`); the shipped binarized-mnist's test NLL, scored
    with this step, moves by about 1e-4 nats (`bench/sampling.py --fidelity`).
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


def _dense(in_features, out_features, batch_norm):
    layers = [nn.Linear(in_features, out_features)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(out_features))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _apply_dense(block, x):
    """Apply a Linear/BatchNorm1d/ReLU block to (..., F): batch norm wants (N, F)."""
    return block(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)


# The options, named once (PixelRNN's keywords): name -> inspect.Parameter, with its type and default.
OPTIONS = {name: p for name, p in inspect.signature(PixelRNN.__init__).parameters.items() if name != "self"}
DEFAULTS = {name: p.default for name, p in OPTIONS.items()}
# What each option may be beyond its type: whole numbers in a range, or one of a few choices.
RANGES = {
    "height": (1, MAX_SIDE), "width": (1, MAX_SIDE), "hidden_size": (1, MAX_HIDDEN), "num_layers": (1, MAX_LAYERS),
    "window": (1, MAX_WINDOW), "head_size": (1, MAX_HIDDEN), "head_layers": (1, MAX_HEAD_LAYERS),
    "mixtures": (1, MAX_MIXTURES), "view_shift": (0, MAX_VIEW_SHIFT), "kernel_size": (1, 15),
}  # fmt: skip
CHOICES = {"channels": (1, 3), "values": tuple(distributions.LEVELS), "cell": tuple(CELLS), "mode": MODES,
           "row_head": ROW_HEADS, "step": STEPS, "core": CORES}  # fmt: skip


def validate_config(config: dict, max_parameters: int | None = None) -> None:
    """Refuse invalid or absurd configurations with one clear message per problem, before anything is built.

    `max_parameters` lowers the limit on the total parameter count (MAX_PARAMETERS).
    """
    problems = []
    unknown, missing = sorted(set(config) - set(OPTIONS)), [name for name in OPTIONS if name not in config]
    if unknown or missing:
        problems += [f"unknown option(s) {', '.join(map(_shown, unknown))}"] if unknown else []
        problems += [f"missing option(s) {', '.join(missing)}"] if missing else []
        raise PixelRNNError("invalid PixelRNN configuration: " + "; ".join(problems))
    for name, option in OPTIONS.items():
        value = config[name]
        if name in CHOICES:
            if not any(type(value) is type(choice) and value == choice for choice in CHOICES[name]):
                problems.append(f"{name} must be one of {', '.join(map(repr, CHOICES[name]))}, got {_shown(value)}")
        elif option.annotation is bool:
            if not isinstance(value, bool):
                problems.append(f"{name} must be true or false, got {_shown(value)}")
        elif option.annotation is int:
            low, high = RANGES[name]
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{name} must be a whole number, got {_shown(value)}")
            elif not low <= value <= high:
                problems.append(f"{name} must be between {low} and {high}, got {_shown(value)}")
        elif option.annotation is float:  # a probability: dropout
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                problems.append(f"{name} must be a number in [0, 1), got {_shown(value)}")
        else:
            raise AssertionError(f"no rule for the option {name}")
    if config["bidirectional"] is True and config["mode"] == "many-to-many":
        problems.append(
            "bidirectional=True needs mode='many-to-one': in many-to-many the backward direction would read "
            "rows below the one being predicted, so the model would not be causal"
        )
    if config["core"] == "spatial":
        problems += _spatial_problems(config)
    if not problems:
        token_size = config["width"] * config["channels"] if config["step"] == "row" else config["channels"]
        outputs = token_size * distributions.params_per_value(config["values"], config["mixtures"])
        largest = max(outputs * max(config["head_size"], config["hidden_size"]), config["hidden_size"] ** 2 * 4)
        if largest > MAX_LAYER_WEIGHTS:
            problems.append(
                f"this configuration needs a weight matrix of {largest:,} numbers (limit {MAX_LAYER_WEIGHTS:,}): "
                "use a smaller image, hidden_size or head_size"
            )
        limit = MAX_PARAMETERS if max_parameters is None else min(max_parameters, MAX_PARAMETERS)
        total = parameter_count(config)
        if total > limit:
            problems.append(
                f"this configuration has {total:,} parameters (limit {limit:,}): "
                "use a smaller hidden_size, num_layers, head_size, head_layers or image"
            )
    if problems:
        raise PixelRNNError("invalid PixelRNN configuration: " + "; ".join(problems))


def _spatial_problems(config: dict) -> list:
    """What core='spatial' does not combine with: it is many-to-many, one row per step, its own row head."""
    wanted = {"mode": "many-to-many", "step": "row", "row_head": "autoregressive", "bidirectional": False,
              "batch_norm": False, "view_shift": 0, "input_dropout": 0.0, "recurrent_dropout": 0.0}  # fmt: skip
    problems = [f"core='spatial' needs {name}={value!r}, got {_shown(config[name])}" for name, value in wanted.items() if config[name] != value]
    if config["kernel_size"] % 2 == 0:
        problems.append(f"kernel_size must be odd (a column and as many on each side), got {config['kernel_size']}")
    return problems


def parameter_count(config: dict) -> int:
    """How many parameters PixelRNN(**config) has, from a valid config alone: nothing is built or allocated."""
    c = {**DEFAULTS, **config}
    if c["core"] == "spatial":
        return spatial.parameter_count(c, distributions.params_per_value(c["values"], c["mixtures"]))
    hidden, directions = c["hidden_size"], 2 if c["bidirectional"] else 1
    token_size = c["width"] * c["channels"] if c["step"] == "row" else c["channels"]  # D
    outputs = token_size * distributions.params_per_value(c["values"], c["mixtures"])  # D * K
    norm = 2 * hidden if c["batch_norm"] else 0  # batch norm's weight and bias
    encoder = token_size * hidden + hidden + norm
    decoder = hidden * directions * hidden + hidden + norm
    gates = GATES[c["cell"]] * hidden
    layer_inputs = [hidden] + [hidden * directions] * (c["num_layers"] - 1)
    rnn = directions * sum(gates * (inputs + hidden + 2) for inputs in layer_inputs)  # input, hidden weights, two biases
    if c["row_head"] == "autoregressive":
        size = c["head_size"]
        head = (token_size + 1) * size + (hidden + 1) * size + (c["head_layers"] - 1) * (size + 1) * size
        head += (size + 1) * outputs + (hidden + 1) * outputs
        head += token_size * outputs if c["direct_connections"] else 0
    else:
        head = (hidden + 1) * outputs
    views = view_count(c["view_shift"]) * hidden if c["view_shift"] else 0
    return hidden + encoder + rnn + decoder + head + views  # hidden: the start token


def _shown(value) -> str:
    """A value as a message shows it: short, whatever its size or depth."""
    if isinstance(value, int) and value.bit_length() > 200:  # repr would be long, or refused past 4300 digits
        digits = int((value.bit_length() - 1) * 0.30102999566398) + 1  # at most one short
        return f"a whole number of {digits + (abs(value) >= 10**digits)} digits"
    return reprlib.repr(value)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
