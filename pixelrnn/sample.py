"""The sampling engine: generate, complete and reconstruct share one loop that yields after every image row.

Many-to-many models carry their RNN state from token to token, so an image costs T RNN steps rather than
re-reading the prefix for every row. Every call runs in eval mode (batch norm is causal there), under
`torch.inference_mode`, on the model's device.
"""
import contextlib
import math
from dataclasses import dataclass, field

import torch

from . import distributions
from .errors import PixelRNNError


@dataclass
class Step:
    """The state of the image after one more row.

    `image` (B, C, H, W) holds the rows produced so far and 0 below. On `complete` and `reconstruct`,
    `row_loss` is the sampling loss of this row: the cross-entropy (nats per value) of the distributions
    the model predicted, scored against the original values; `loss` is the same over all rows so far,
    `row_losses` the curve, `losses` the sampling loss of each image of the batch so far, `error_rate` the fraction of values shown so far that differ from the original,
    and `nll` / `bits_per_dim` score the whole original under the model (teacher-forced, exact).
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

    @property
    def done(self) -> bool:
        return self.row == self.height - 1


def generate(model, n: int = 16, temperature: float = 1.0, seed: int | None = None, greedy: bool = False):
    """Draw `n` images from nothing, yielding one Step per row."""
    n = _check_count(n)
    return _run(model, None, n, keep_rows=0, teacher=False, temperature=temperature, seed=seed, greedy=greedy)


def complete(model, image, keep_rows: int, temperature: float = 1.0, seed: int | None = None, greedy: bool = False, n: int = 1):
    """Keep the first `keep_rows` rows of `image` and draw the rest (`n` completions side by side)."""
    original = _original(model, image)
    height = model.config["height"]
    if isinstance(keep_rows, bool) or not isinstance(keep_rows, int) or not 0 <= keep_rows <= height:
        raise PixelRNNError(f"keep_rows must be a whole number from 0 to {height}, got {keep_rows!r}")
    n = _check_count(n)
    return _run(model, original, n, keep_rows, False, temperature, seed, greedy)


def reconstruct(model, image):
    """Teacher-forced restore: each value's most likely level given the true values before it."""
    original = _original(model, image)
    return _run(model, original, original.shape[0], keep_rows=0, teacher=True, temperature=1.0, seed=None, greedy=True)


def _run(model, original, batch, keep_rows, teacher, temperature, seed, greedy):
    if not greedy and not (isinstance(temperature, (int, float)) and 0.01 <= temperature <= 100):
        raise PixelRNNError(f"temperature must be between 0.01 and 100, got {temperature!r}")
    return _loop(model, original, batch, keep_rows, teacher, float(temperature), seed, greedy)


def _loop(model, original, batch, keep_rows, teacher, temperature, seed, greedy):
    config, device = model.config, model.device
    values = config["values"]
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(int(seed))
    # Inference mode is entered per row, never held across a `yield`: a UI may resume the generator on
    # another thread, and a mode left on would leak into whatever that thread runs next.
    with _eval_mode(model):
        with torch.inference_mode():
            true_tokens = None
            nll = bits = None
            if original is not None:
                original = original.to(device)
                nll = -model.log_prob(original).sum(dim=(1, 2, 3)).mean().item()  # nats per image
                bits = nll / (original[0].numel() * math.log(2))
                true_tokens = model.to_tokens(original.expand(batch, -1, -1, -1))
            tokens = torch.zeros(batch, model.num_tokens, model.token_size, device=device)
        keep_tokens = keep_rows * model.tokens_per_row
        row_losses, total_ce, wrong, seen = [], 0.0, 0.0, 0
        row_ce, row_count, image_ce = 0.0, 0, torch.zeros(batch, device=device)
        state, previous = None, None
        for t in range(model.num_tokens):
            with torch.inference_mode():
                context, state = model.context_step(previous, state, batch_size=batch)
                if teacher or t < keep_tokens:
                    params = model.token_params(context, true_tokens[:, t])
                    fed = true_tokens[:, t]
                    shown = fed if t < keep_tokens else distributions.mode(params, values)
                else:
                    shown, params = model.sample_token(context, temperature, greedy, generator)
                    fed = shown
                tokens[:, t] = shown
                previous = fed
                if true_tokens is not None:
                    cross_entropy = -distributions.log_prob(params, true_tokens[:, t], values)
                    row_ce += cross_entropy.sum().item()
                    image_ce += cross_entropy.sum(dim=1)
                    row_count += cross_entropy.numel()
                    wrong += (shown != true_tokens[:, t]).sum().item()
            if (t + 1) % model.tokens_per_row:
                continue
            step = Step(row=t // model.tokens_per_row, image=model.to_image(tokens).clone(), height=config["height"])
            if true_tokens is not None:
                total_ce, seen = total_ce + row_ce, seen + row_count
                row_losses.append(row_ce / row_count)
                step.row_loss, step.row_losses = row_losses[-1], list(row_losses)
                step.loss, step.error_rate = total_ce / seen, wrong / seen
                step.losses = (image_ce / (seen / batch)).tolist()
                step.nll, step.bits_per_dim = nll, bits
                row_ce, row_count = 0.0, 0
            yield step


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


@contextlib.contextmanager
def _eval_mode(model):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
