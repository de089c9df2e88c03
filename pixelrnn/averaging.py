"""An exponential moving average of a model's weights (Polyak averaging), kept beside it while it trains.

Late in training the weights wander around a minimum with the noise of the batches; their average sits
nearer its middle, and usually scores better than any single step's weights.
"""
import copy

import torch


class WeightAverage:
    """`model`: a frozen copy in eval mode whose floating-point weights and buffers follow the trained model's."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the decay of a weight average must be in (0, 1), got {decay!r}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay after `step` optimizer steps: short at first, so the random start is soon forgotten."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        averaged, current = [], []
        for mine, theirs in zip(self.model.state_dict().values(), model.state_dict().values()):
            if mine.is_floating_point():
                averaged.append(mine)
                current.append(theirs.detach())
            else:
                mine.copy_(theirs)  # counters (batch norm's batches seen) are not averaged
        torch._foreach_lerp_(averaged, current, weight)

    def state_dict(self) -> dict:
        return {name: tensor.detach().cpu().contiguous() for name, tensor in self.model.state_dict().items()}

    def load_state_dict(self, tensors: dict) -> None:
        self.model.load_state_dict(tensors, strict=True)
