"""pixelrnn: image generation with recurrent networks, row by row.

The names below (and every submodule, as `pixelrnn.model`) are imported when first used, so that
`import pixelrnn` costs nothing until torch is needed: `python -m pixelrnn --help` answers at once.
"""
import importlib

from .errors import PixelRNNError

_HOMES = {
    "load_image": "data", "to_pil": "data", "PixelRNN": "model", "count_parameters": "model",
    "Step": "sample", "complete": "sample", "generate": "sample", "reconstruct": "sample", "last": "sample",
}  # fmt: skip
__all__ = [
    "PixelRNN", "PixelRNNError", "Step", "complete", "count_parameters", "generate", "last", "load_image",
    "reconstruct", "to_pil",
]  # fmt: skip
__version__ = "0.1.0"


def __getattr__(name):
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
        globals()[name] = value  # the next use is a plain attribute
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
