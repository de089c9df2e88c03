"""pixelrnn: image generation with recurrent networks, row by row."""
from .data import load_image, to_pil
from .errors import PixelRNNError
from .model import PixelRNN, count_parameters
from .sample import Step, complete, generate, reconstruct

__all__ = [
    "PixelRNN", "PixelRNNError", "Step", "complete", "count_parameters", "generate", "load_image",
    "reconstruct", "to_pil",
]  # fmt: skip
__version__ = "0.1.0"
