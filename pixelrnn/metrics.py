"""What sampling (`sample.py`) and scoring (`evaluate.py`) share: eval mode for a while, and bits per dimension."""
import contextlib
import math


@contextlib.contextmanager
def eval_mode(model):
    """Run a block in eval mode (batch norm is causal there) and put the model back as it was."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def bits_per_dim(nll_nats: float, dims: int) -> float:
    """Negative log-likelihood of an image in nats -> bits per value (dims values per image)."""
    return nll_nats / (dims * math.log(2))
