class PixelRNNError(ValueError):
    """Every error a user can cause: bad images, bad configs, bad checkpoints, bad requests.

    The message is meant for a person: it says what was wrong and what to do about it.
    """
