"""PixelRNN, row by row: an image is a sequence of rows, an RNN reads the rows above and predicts the next.

After "Pixel Recurrent Neural Networks" (van den Oord, Kalchbrenner, Kavukcuoglu, 2016), in the simple
encoder -> RNN -> decoder shape of a row-sequence model:

    tokens (B, T, D) -> encoder -> shift right (start token) -> RNN -> decoder -> head -> (B, T, D, K)

A token is one row (`step="row"`: T = H, D = W*C, values pixel-major: R, G, B of pixel 0, then pixel 1)
or one pixel (`step="pixel"`: T = H*W, D = C). Each of the D values gets K distribution parameters.
NOTE: the row head is a MADE-style masked network (heads.py), so the values inside a token are predicted
autoregressively and the likelihood is exact; `row_head="independent"` is the original design, where they
are conditionally independent given the tokens above. `core="spatial"` replaces the vector core by the
Row LSTM's state per column (spatial.py). This module holds only modules; the options are options.py's,
the checkpoint methods hub_mixin.py's, the one-step kernels rnn_steps.py's.
"""
import inspect

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import distributions, spatial
from .errors import PixelRNNError
from .heads import IndependentRowHead, MaskedRowHead
from .hub_mixin import MIXIN_KEYWORDS, CheckpointMethods
from .options import DEFAULTS, OPTIONS, class_names, parameter_count, token_size, validate_config
from .rnn_steps import bfloat16_rnn_weights, fast_rnn_step, lstm_step
from .views import view_count
from .weight_cache import WeightCache

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class PixelRNN(nn.Module, CheckpointMethods, **MIXIN_KEYWORDS):
    """A row-by-row autoregressive image model. Every keyword is validated and stored in `config`.

    The keywords are the options of options.py, named once there: config.json and the CLI flags derive from them.
    """

    def __init__(self, **options):
        config = PixelRNN.check_config(options)  # unknown keywords included, before anything is built
        super().__init__()
        self._config = config
        self._hub_mixin_config = dict(config)
        self._fast_rnn = WeightCache()  # the RNN's bfloat16 weights for `context_step(fast=True)`
        height, width, channels, values = (config[k] for k in ("height", "width", "channels", "values"))
        cell, hidden_size, num_layers, head_size, head_layers = (config[k] for k in ("cell", "hidden_size", "num_layers", "head_size", "head_layers"))
        step, dropout, head_dropout = config["step"], config["dropout"], config["head_dropout"]

        self.token_size = token_size(config)  # D
        self.num_tokens = height if step == "row" else height * width  # T
        self.tokens_per_row = 1 if step == "row" else width
        self.params_per_value = distributions.params_per_value(values, config["mixtures"])  # K
        classes = config["classes"]
        # Class-conditional: a learned vector per class joins the recurrent core's input at every step;
        # p(class), from the training counts, is kept for the marginal log p(x) and for drawing classes.
        self.class_vectors = nn.Embedding(classes, hidden_size) if classes else None
        if classes:
            self.register_buffer("class_log_prior", torch.full((classes,), -float(torch.log(torch.tensor(float(classes))))))

        if config["core"] == "spatial":
            kernel_size = config["kernel_size"]
            self.core = spatial.RowStateCore(channels, width, hidden_size, num_layers, kernel_size, cell, dropout)
            self.head = spatial.CausalRowHead(channels, self.params_per_value, hidden_size, head_size, head_layers, kernel_size, head_dropout)
            return
        directions = 2 if config["bidirectional"] else 1
        batch_norm = config["batch_norm"]
        self.encoder = _dense(self.token_size, hidden_size, batch_norm)
        self.start = nn.Parameter(torch.randn(hidden_size) * 0.1)
        self.rnn = CELLS[cell](
            hidden_size, hidden_size, num_layers=num_layers, batch_first=True,
            bidirectional=config["bidirectional"], dropout=dropout if num_layers > 1 else 0.0,
        )  # fmt: skip
        self.decoder = _dense(hidden_size * directions, hidden_size, batch_norm)
        self.drop = nn.Dropout(dropout)
        self.input_drop = nn.Dropout(config["input_dropout"])  # on the RNN's input: the encoded rows above, while training
        # Distribution augmentation (Jun et al. 2020): trained on shifted copies too, told which shift each is;
        # view 0 is the image as it is, the only one evaluated and sampled.
        view_shift = config["view_shift"]
        self.views = nn.Embedding(view_count(view_shift), hidden_size) if view_shift else None
        if config["row_head"] == "autoregressive":
            self.head = MaskedRowHead(
                self.token_size, self.params_per_value, hidden_size, head_size, head_layers, config["direct_connections"], head_dropout
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
        config["class_names"] = class_names(config) if config["classes"] else []  # always a list, as config.json holds it
        return config

    @staticmethod
    def parameter_count(config: dict) -> int:
        """How many parameters PixelRNN(**config) has, from a valid config alone (see `parameter_count`)."""
        return parameter_count(config)

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
    def forward(self, x: torch.Tensor, views: torch.Tensor | None = None, labels=None) -> torch.Tensor:
        """(B, C, H, W) in value space -> distribution parameters (B, T, D, K) for every value.

        `views` (B,): which shifted view of its image each is (see `views.shifted_views`); None is view 0 for all.
        `labels`: a class-conditional model's class of each image (B,), or one class for all; see `labels_for`.
        """
        self.check_batch(x)
        if self.class_vectors is not None and labels is None:
            raise PixelRNNError("this model is class-conditional: pass labels (log_prob without them gives the marginal log p(x))")
        tokens = self.to_tokens(x.to(self.head_parameter.dtype))
        inputs = distributions.normalize(tokens, self._config["values"])
        return self.head(self.contexts(inputs, views, self.labels_for(labels, len(x))), inputs)

    def log_prob(self, x: torch.Tensor, labels=None) -> torch.Tensor:
        """Exact log-likelihood of every value, in nats: (B, C, H, W) -> (B, C, H, W).

        A class-conditional model given `labels` scores log p(x | class). Without them it scores the marginal
        log p(x) = logsumexp over classes of log p(class) + log p(x | class), value by value: value i gets
        log p(x_i | the values before it), with the classes weighted by their posterior given those values.
        """
        if self.class_vectors is not None and labels is None:
            return self._marginal_log_prob(x)
        params = self(x, labels=labels)
        tokens = self.to_tokens(x.to(params.dtype))
        return self.to_image(distributions.log_prob(params, tokens, self._config["values"]))

    def class_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(class, x) of every image and class (B, classes), in nats: the model as a classifier, exactly."""
        if self.class_vectors is None:
            raise PixelRNNError("this model has no classes (classes=0)")
        joint = [self.log_prob(x, labels=c).sum(dim=(1, 2, 3)) for c in range(self.class_vectors.num_embeddings)]
        return torch.stack(joint, dim=1) + self.class_log_prior

    def _marginal_log_prob(self, x):
        self.check_batch(x)
        per_class = [self.to_tokens(self.log_prob(x, labels=c)).flatten(1) for c in range(self.class_vectors.num_embeddings)]
        prior = self.class_log_prior.double()[None, :, None]
        seen = prior + torch.stack(per_class, dim=1).double().cumsum(dim=2)  # log p(class, values 0..i): (B, classes, T D)
        before = torch.cat([prior.expand(len(x), -1, 1), seen[..., :-1]], dim=2)  # log p(class, values 0..i-1)
        marginal = torch.logsumexp(seen, dim=1) - torch.logsumexp(before, dim=1)  # log p(value i | values 0..i-1)
        return self.to_image(marginal.to(per_class[0].dtype).reshape(len(x), self.num_tokens, self.token_size))

    def labels_for(self, labels, batch: int) -> torch.Tensor | None:
        """Labels as the model reads them: None (an unconditional model), or the class index of each image (batch,).

        `labels`: one class index for all, or `batch` of them (a sequence or a tensor).
        """
        if self.class_vectors is None:
            if labels is not None:
                raise PixelRNNError("this model has no classes (classes=0): labels are for class-conditional models")
            return None
        classes = self.class_vectors.num_embeddings
        if isinstance(labels, torch.Tensor) and labels.dim() == 0:
            labels = labels.item()
        if isinstance(labels, bool) or not isinstance(labels, (int, list, tuple, torch.Tensor)):
            raise PixelRNNError(f"labels must be a class index from 0 to {classes - 1} or one per image, got {labels!r}")
        if isinstance(labels, int):
            labels = [labels] * batch
        labels = torch.as_tensor(labels)
        if labels.shape != (batch,) or labels.is_floating_point() or labels.dtype == torch.bool or \
                not bool(((labels >= 0) & (labels < classes)).all()):  # fmt: skip
            raise PixelRNNError(f"labels must be {batch} class indices from 0 to {classes - 1}, one per image, or one for all")
        return labels.to(self.device, torch.long)

    def set_class_counts(self, counts: torch.Tensor) -> None:
        """p(class) from how many training images each class has (every class at least one)."""
        counts = torch.as_tensor(counts, dtype=torch.float64)
        if self.class_vectors is None or counts.shape != self.class_log_prior.shape or not bool((counts > 0).all()):
            raise PixelRNNError(f"class counts must be {self.class_log_prior.numel() if self.class_vectors is not None else 0} "
                                "positive numbers, one per class")  # fmt: skip
        with torch.no_grad():
            self.class_log_prior.copy_((counts / counts.sum()).log())

    def contexts(self, inputs: torch.Tensor, views: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Normalized tokens (B, T, D) -> the context for each token (B, T, hidden), from earlier tokens only.

        `labels` (B,): checked class indices (`labels_for`), None for an unconditional model.
        """
        batch, steps, _ = inputs.shape
        class_vector = self._class_vector(labels)
        if self._config["core"] == "spatial":
            c = self._config
            return self.core(inputs.reshape(batch, c["height"], c["width"], c["channels"]), class_vector)
        embedded = self.input_drop(self._encode(inputs))
        sequence = torch.cat([self.start.expand(batch, 1, -1), embedded[:, :-1]], dim=1)  # shift right
        sequence = self._with_view(sequence, views)
        if class_vector is not None:
            sequence = sequence + class_vector.unsqueeze(1)
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
    def context_step(self, previous: torch.Tensor | None, state=None, batch_size: int = 1, fast: bool = False, labels=None):
        """Context for the next token, given the token just produced (None at the start of an image).

        Many-to-many carries the RNN state: an image costs T RNN steps. Many-to-one re-reads its window of
        the last `window` tokens for every token: T x window steps. Returns (context (B, hidden), state).
        `fast` (many-to-many, eval mode): the RNN step's matrix products in bfloat16, the rest in the model's
        precision (see `rnn_steps.fast_rnn_step`); it changes nothing elsewhere. `labels` (B,): as in `contexts`.
        """
        class_vector = self._class_vector(labels)
        if self._config["core"] == "spatial":
            row_above = None
            if previous is not None:
                c = self._config
                row_above = distributions.normalize(previous, c["values"]).reshape(-1, c["width"], c["channels"])
            return self.core.step(row_above, state, batch_size, class_vector)
        if previous is None:
            step_input = self.start.expand(batch_size, 1, -1)
        else:
            step_input = self._encode(distributions.normalize(previous, self._config["values"]).unsqueeze(1))
        step_input = self._with_view(step_input, None)
        if class_vector is not None:
            step_input = step_input + class_vector.unsqueeze(1)
        many_to_many = self._config["mode"] == "many-to-many"
        fused_lstm = isinstance(self.rnn, nn.LSTM) and not self.training and step_input.device.type == "cpu"
        if many_to_many and fast and not self.training:
            weights = self._fast_rnn.get(self.rnn.parameters(), lambda: bfloat16_rnn_weights(self.rnn))
            output, state = fast_rnn_step(self.rnn, weights, step_input, state)
        elif many_to_many and fused_lstm:
            output, state = lstm_step(self.rnn, step_input, state)
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
    def _class_vector(self, labels):
        """The class vectors (B, hidden) of checked labels; None for an unconditional model."""
        if self.class_vectors is None:
            if labels is not None:
                raise PixelRNNError("this model has no classes (classes=0): labels are for class-conditional models")
            return None
        if labels is None:
            raise PixelRNNError("this model is class-conditional: pass labels")
        return self.class_vectors(labels)

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


def _dense(in_features, out_features, batch_norm):
    layers = [nn.Linear(in_features, out_features)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(out_features))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _apply_dense(block, x):
    """Apply a Linear/BatchNorm1d/ReLU block to (..., F): batch norm wants (N, F)."""
    return block(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)


# The signature the Hub mixin and `inspect` read: the options, keyword-only, with their types and defaults.
PixelRNN.__init__.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *OPTIONS.values()]
)


def count_parameters(model: nn.Module) -> int:
    """The parameters of a built model (`options.parameter_count` says it from a config, before building)."""
    return sum(p.numel() for p in model.parameters())
