"""Weights that load but cannot work: NaN or infinite numbers, or batch-norm variances below zero.

Such a checkpoint would show "nan" figures and noise; `check_weights` refuses it with a message instead.
"""
import torch

from .errors import PixelRNNError


def check_weights(model, origin: str = "the checkpoint") -> None:
    """Raise PixelRNNError naming the first tensor of `model` that holds NaN, infinity or a negative variance."""
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point():
            continue
        if not bool(torch.isfinite(tensor).all()):
            raise PixelRNNError(f"the weights in {origin} are broken: {name} holds NaN or infinite numbers")
        if name.endswith("running_var") and bool((tensor < 0).any()):
            raise PixelRNNError(f"the weights in {origin} are broken: {name} holds negative variances")
