"""Scores of a model on a set of images: NLL (nats per image), bits/dim, and the teacher-forced sampling loss."""
import torch
from tqdm import tqdm

from . import distributions
from .metrics import bits_per_dim, eval_mode
from .errors import PixelRNNError

ERROR_IMAGES_8BIT = 500  # the most likely of 256 levels costs 256x the memory and time of the NLL


@torch.inference_mode()
def evaluate(model, images: torch.Tensor, batch_size: int = 500, error_images: int | None = None, progress: bool = False,
             labels: torch.Tensor | None = None) -> dict:  # fmt: skip
    """Exact NLL of `images` (N, C, H, W) under the model, in eval mode, plus greedy reconstruction errors.

    A class-conditional model's NLL is the marginal -log p(x) (every class weighed by p(class)); with the
    images' `labels` (N,) it also gives `conditional_nll_nats`, -log p(x | its class), the accuracy of the
    model as a classifier (the most likely class given the image), and its reconstruction errors given the
    true class. Without labels, no reconstruction errors are measured for it.

    The sampling loss of `reconstruct` is the NLL per value (the same distributions, scored on the same
    values), so it is computed here in one parallel pass rather than row by row. The reconstruction error
    rate (most likely level != true level) is measured on the first `error_images` images: all of them for
    binary models, ERROR_IMAGES_8BIT for 8-bit ones by default. `progress` shows a bar on stderr.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise PixelRNNError(f"batch size must be a whole number of at least 1, got {batch_size!r}")
    if not len(images):
        raise PixelRNNError("there are no images to score")
    values = model.config["values"]
    if error_images is None:
        error_images = len(images) if values == "binary" else ERROR_IMAGES_8BIT
    conditional = bool(model.config["classes"])
    if labels is not None and len(labels) != len(images):
        raise PixelRNNError(f"{len(labels)} labels for {len(images)} images")
    if conditional and labels is None:
        error_images = 0
    total_nll, wrong, scored = 0.0, 0.0, 0
    conditional_nll, correct = 0.0, 0
    with eval_mode(model):
        for start in tqdm(range(0, len(images), batch_size), disable=not progress, unit="batch", desc="scoring", leave=False):
            x = images[start : start + batch_size].to(model.device)
            tokens = model.to_tokens(x)
            if conditional:
                joint = model.class_log_prob(x).double()  # log p(class, x): (B, classes)
                total_nll -= torch.logsumexp(joint, dim=1).sum().item()
                if labels is None:
                    continue
                y = model.labels_for(labels[start : start + batch_size], len(x))
                conditional_nll -= (joint.gather(1, y[:, None])[:, 0] - model.class_log_prior[y].double()).sum().item()
                correct += int((joint.argmax(dim=1) == y).sum())
                if start >= error_images:
                    continue
                params = model(x, labels=y)
            else:
                params = model(x)
                total_nll -= distributions.log_prob(params, tokens, values).double().sum().item()
            to_score = max(0, min(len(x), error_images - start))
            chunk = len(x) if values == "binary" else 8  # keeps the 8-bit level table small
            for first in range(0, to_score, chunk):
                part = slice(first, min(first + chunk, to_score))
                wrong += (distributions.mode(params[part], values) != tokens[part]).double().sum().item()
                scored += part.stop - part.start
    dims = images[0].numel()
    nll = total_nll / len(images)
    figures = {
        "nll_nats": nll,
        "bits_per_dim": bits_per_dim(nll, dims),
        "sampling_loss": nll / dims,
        "reconstruction_error_rate": wrong / (max(scored, 1) * dims),
        "error_images": scored,
        "images": len(images),
    }
    if conditional and labels is not None:
        given = conditional_nll / len(images)
        figures.update(conditional_nll_nats=given, conditional_bits_per_dim=bits_per_dim(given, dims), class_accuracy=correct / len(images))
    return figures
