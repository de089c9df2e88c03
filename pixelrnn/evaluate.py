"""Scores of a model on a set of images: NLL (nats per image), bits/dim, and the teacher-forced sampling loss."""
import math

import torch

from . import distributions


@torch.inference_mode()
def evaluate(model, images: torch.Tensor, batch_size: int = 500) -> dict:
    """Exact NLL of `images` (N, C, H, W) under the model, in eval mode, plus greedy reconstruction errors.

    The sampling loss of `reconstruct` is the NLL per value (the same distributions, scored on the same
    values), so it is computed here in one parallel pass rather than row by row.
    """
    was_training = model.training
    model.eval()
    values = model.config["values"]
    total_nll, wrong, count = 0.0, 0.0, 0
    try:
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(model.device)
            params = model(x)
            tokens = model.to_tokens(x)
            total_nll -= distributions.log_prob(params, tokens, values).double().sum().item()
            wrong += (distributions.mode(params, values) != tokens).double().sum().item()
            count += len(x)
    finally:
        model.train(was_training)
    dims = images[0].numel()
    nll = total_nll / count
    return {
        "nll_nats": nll,
        "bits_per_dim": nll / (dims * math.log(2)),
        "sampling_loss": nll / dims,
        "reconstruction_error_rate": wrong / (count * dims),
        "images": count,
    }
