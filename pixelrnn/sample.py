"""The sampling engine: generate, complete and reconstruct share one loop that yields after every image row.

Many-to-many models carry their RNN state from token to token, so an image costs T RNN steps rather than
re-reading the prefix for every row. Every call runs in eval mode (batch norm is causal there), under
`torch.inference_mode`, on the model's device.
"""
import operator
import time
from dataclasses import dataclass, field

import torch

from . import distributions
from .errors import PixelRNNError
from .metrics import bits_per_dim, eval_mode
from .seeds import MAX_SEED



@dataclass
class Step:
    """The state of the image after one more row.

    `image` (B, C, H, W) holds the rows produced so far and 0 below. On `complete` and `reconstruct`,
    `row_loss` is the sampling loss of this row: the cross-entropy (nats per value) of the distributions
    the model predicted, scored against the original values; `loss` is the same over all rows so far,
    `row_losses` the curve, `losses` the sampling loss of each image of the batch so far, `error_rate` the fraction of values shown so far that differ from the original,
    and `nll` / `bits_per_dim` score the whole original under the model (teacher-forced, exact; given its
    class for a class-conditional model).
    """

    row: int
    image: torch.Tensor
    height: int
    row_loss: float | None = None
    loss: float | None = None
    row_losses: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    error_rate: float | None = None
    nll: float | None = None
    bits_per_dim: float | None = None
    labels: list | None = None  # a class-conditional model's class index of each image; None otherwise

    @property
    def done(self) -> bool:
        return self.row == self.height - 1


def generate(model, n: int = 16, temperature: float = 1.0, seed: int | None = None, greedy: bool = False, fast: bool = False,
             labels=None):  # fmt: skip
    """Draw `n` images from nothing, yielding one Step per row.

    `labels` (class-conditional models): one class index for all, or one per image; None draws each image's
    class from the model's p(class) (with the seed).

    `fast=True` runs the RNN step's matrix products in bfloat16 (many-to-many models): on a CPU with bfloat16
    instructions, draws 1.48x faster (the shipped binarized-mnist, `bench/sampling.py --only-fast`), from a
    model that scores within about 1e-4 nats of the exact one (`bench/sampling.py --fidelity`); the same seed
    may then draw a few values differently.
    """
    n = _check_count(n)
    labels = model.labels_for(labels, n) if labels is not None else None
    return _run(model, None, n, keep_rows=0, teacher=False, temperature=temperature, seed=seed, greedy=greedy, fast=fast,
                labels=labels)  # fmt: skip


def complete(model, image, keep_rows: int, temperature: float = 1.0, seed: int | None = None, greedy: bool = False, n: int = 1,
             fast: bool = False, labels=None):  # fmt: skip
    """Keep the first `keep_rows` rows of `image` and draw the rest: `n` completions side by side of one
    image, or one completion of each image of a batch (B, C, H, W). `fast`: as in `generate`.

    `labels` (class-conditional models): as in `generate`; None draws each completion's class from its
    posterior p(class | the kept rows), so the completion goes on as what the kept rows look like.
    """
    original = _original(model, image)
    height = model.config["height"]
    if isinstance(keep_rows, bool) or not isinstance(keep_rows, int) or not 0 <= keep_rows <= height:
        raise PixelRNNError(f"keep_rows must be a whole number from 0 to {height}, got {keep_rows!r}")
    n = _check_count(n)
    if n > 1 and len(original) > 1:
        raise PixelRNNError(f"n={n} completions are for one image; a batch of {len(original)} images gets one completion each")
    batch = max(n, len(original))
    labels = model.labels_for(labels, batch) if labels is not None else None
    return _run(model, original, batch, keep_rows, False, temperature, seed, greedy, fast, labels)


def reconstruct(model, image, labels=None):
    """Teacher-forced restore: each value's most likely level given the true values before it.

    `labels` (class-conditional models): one class, or one per image; None takes each image's most likely class.
    """
    original = _original(model, image)
    labels = model.labels_for(labels, len(original)) if labels is not None else None
    return _run(model, original, original.shape[0], keep_rows=0, teacher=True, temperature=1.0, seed=None, greedy=True, labels=labels)


def last(steps, max_seconds: float = float("inf")):
    """The last of `steps` (a `generate`, `complete` or `reconstruct`), keeping one step alive at a time.

    `*_, last = steps` keeps every step, each a whole batch of images: memory then grows with the image's
    height. Past `max_seconds` this stops with a PixelRNNError.
    """
    deadline, step = time.monotonic() + max_seconds, None
    for step in steps:
        if time.monotonic() > deadline:
            raise PixelRNNError(f"stopped after {max_seconds:.0f} s, the limit here: ask for fewer images or a smaller model")
    if step is None:
        raise PixelRNNError("there were no steps to take")
    return step


def _run(model, original, batch, keep_rows, teacher, temperature, seed, greedy, fast=False, labels=None):
    # `_loop` is a generator: nothing in it runs before the first `next()`, so a check there would fail late,
    # wherever the steps are consumed (a UI thread, mid-stream). Checked here, a bad argument fails the call.
    if not greedy and not (isinstance(temperature, (int, float)) and 0.01 <= temperature <= 100):
        raise PixelRNNError(f"temperature must be between 0.01 and 100, got {temperature!r}")
    return _loop(model, original, batch, keep_rows, teacher, float(temperature), _check_seed(seed), greedy, bool(fast), labels)


def _loop(model, original, batch, keep_rows, teacher, temperature, seed, greedy, fast, labels):
    config, device = model.config, model.device
    values = config["values"]
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    # Inference mode is entered per row, never held across a `yield`: a UI may resume the generator on
    # another thread, and a mode left on would leak into whatever that thread runs next.
    with eval_mode(model):
        with torch.inference_mode():
            true_tokens, scorer = None, None
            if original is not None:
                original = original.to(device)
            if model.config["classes"] and labels is None:
                labels = _chosen_labels(model, original, batch, keep_rows, teacher, generator)
            if original is not None:
                scored = original.expand(batch, -1, -1, -1) if labels is not None else original
                nll = -model.log_prob(scored, labels).sum(dim=(1, 2, 3)).mean().item()  # nats per image
                scorer = _Scorer(nll, bits_per_dim(nll, original[0].numel()), batch, device)
                true_tokens = model.to_tokens(original.expand(batch, -1, -1, -1))
            tokens = torch.zeros(batch, model.num_tokens, model.token_size, device=device)
        keep_tokens = keep_rows * model.tokens_per_row
        state, previous = None, None
        for t in range(model.num_tokens):
            with torch.inference_mode():
                context, state = model.context_step(previous, state, batch_size=batch, fast=fast, labels=labels)
                if teacher or t < keep_tokens:
                    params = model.token_params(context, true_tokens[:, t])
                    fed = true_tokens[:, t]
                    shown = fed if t < keep_tokens else distributions.mode(params, values)
                else:
                    shown, params = model.sample_token(context, temperature, greedy, generator)
                    fed = shown
                tokens[:, t] = shown
                previous = fed
                if scorer is not None:
                    scorer.add(-distributions.log_prob(params, true_tokens[:, t], values), shown != true_tokens[:, t])
            if (t + 1) % model.tokens_per_row:
                continue
            scores = scorer.end_row() if scorer is not None else {}
            yield Step(row=t // model.tokens_per_row, image=model.to_image(tokens).clone(), height=config["height"],
                       labels=labels.tolist() if labels is not None else None, **scores)  # fmt: skip


def _chosen_labels(model, original, batch, keep_rows, teacher, generator) -> torch.Tensor:
    """The classes a class-conditional model draws with when none are given: from p(class) for `generate`,
    from p(class | the kept rows) for `complete`, and the most likely class given the image for `reconstruct`."""
    log_weights = model.class_log_prior.expand(batch, -1)
    if original is not None and (teacher or keep_rows):
        log_values = torch.stack([model.log_prob(original, labels=c) for c in range(model.config["classes"])], dim=1)  # (B', classes, C, H, W)
        kept = log_values if teacher else log_values[..., :keep_rows, :]
        log_weights = (model.class_log_prior + kept.sum(dim=(2, 3, 4))).expand(batch, -1)  # log p(class, kept values)
    if teacher:
        return log_weights.argmax(dim=1)
    posterior = torch.softmax(log_weights.double(), dim=1)
    return torch.multinomial(posterior, 1, generator=generator)[:, 0].to(model.device)


class _Scorer:
    """The running scores of a `complete` or `reconstruct` against the original: what each Step reports."""

    def __init__(self, nll: float, bits: float, batch: int, device):
        self.nll, self.bits_per_dim = nll, bits  # of the whole original, teacher-forced
        self.row_losses = []
        self.total = self.wrong = 0.0  # cross-entropy (nats) and values shown wrong, over all rows so far
        self.seen = 0  # values scored so far, over the batch
        self.per_image = torch.zeros(batch, device=device)  # cross-entropy of each image so far
        self.row_total, self.row_seen = 0.0, 0

    def add(self, cross_entropy: torch.Tensor, wrong: torch.Tensor) -> None:
        """One token's cross-entropies and wrong values (B, D)."""
        self.row_total += cross_entropy.sum().item()
        self.per_image += cross_entropy.sum(dim=1)
        self.row_seen += cross_entropy.numel()
        self.wrong += wrong.sum().item()

    def end_row(self) -> dict:
        """Close the image row: the Step fields it fills."""
        self.total, self.seen = self.total + self.row_total, self.seen + self.row_seen
        self.row_losses.append(self.row_total / self.row_seen)
        self.row_total, self.row_seen = 0.0, 0
        return dict(row_loss=self.row_losses[-1], loss=self.total / self.seen, row_losses=list(self.row_losses),
                    error_rate=self.wrong / self.seen, losses=(self.per_image / (self.seen / len(self.per_image))).tolist(),
                    nll=self.nll, bits_per_dim=self.bits_per_dim)  # fmt: skip


def _original(model, image) -> torch.Tensor:
    from .data import load_image

    if isinstance(image, torch.Tensor) and image.dim() == 4:
        model.check_batch(image)
        return torch.stack([load_image(x, model) for x in image])
    return load_image(image, model).unsqueeze(0)


def _check_count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1024:
        raise PixelRNNError(f"the number of images must be a whole number from 1 to 1024, got {n!r}")
    return n


def _check_seed(seed) -> int | None:
    """None, or a whole number in torch's 64-bit seed range (a whole float such as 7.0 from a UI counts)."""
    if seed is None:
        return None
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)
    try:
        value = None if isinstance(seed, bool) else operator.index(seed)
    except TypeError:
        value = None
    if value is None or not 0 <= value <= MAX_SEED:
        raise PixelRNNError(f"seed must be a whole number from 0 to 2**64 - 1 ({MAX_SEED}), got {seed!r}")
    return value
