"""What the app agrees to run: every bound that keeps a public Space responsive, and the checks that apply them.

Each is read from its environment variable once, at start-up (the README's Security section lists them); the
checks read them when they run. Three modules keep bounds of their own beside the code they guard: uploads.py
(Gradio's upload route), fairness.py (the queue per session and address) and training.py (run folders).
"""
import os
from pathlib import Path

import pixelrnn
from pixelrnn.options import sampling_steps

# -- model work ---------------------------------------------------------------------------------------------
# A model: at most this many parameters, and this many sequential steps to draw one image (pixelrnn.options.sampling_steps).
MAX_PARAMETERS = int(os.environ.get("PIXELRNN_MAX_PARAMETERS", 50_000_000))
MAX_STEPS_PER_IMAGE = int(os.environ.get("PIXELRNN_MAX_STEPS_PER_IMAGE", 20_000))
# Values in one image (height x width x channels): a grid of 64 samples of it must fit in memory many times over.
MAX_IMAGE_VALUES = int(os.environ.get("PIXELRNN_MAX_IMAGE_VALUES", 65_536))
REQUEST_SECONDS = float(os.environ.get("PIXELRNN_REQUEST_SECONDS", 60))  # every event that loads or draws
CONCURRENCY, QUEUE_SIZE = int(os.environ.get("PIXELRNN_CONCURRENCY", 4)), 64  # sampling slots; places in the queue
THREADS = int(os.environ.get("PIXELRNN_THREADS", 1))  # per process; concurrent requests share them (README: threads)
MAX_LOADED_MODELS = 4
MAX_SAMPLES, MAX_COMPLETIONS = 64, 16  # per request
FRAMES_PER_SECOND = 10  # streamed pictures; the first and the last row are always sent
PLOT_EVERY = 0.5  # seconds between curve updates

# -- training -----------------------------------------------------------------------------------------------
TRAIN_SECONDS = int(os.environ.get("PIXELRNN_TRAIN_SECONDS", 180))  # reading the images included
MAX_SIDE, MAX_HIDDEN, MAX_LAYERS, MAX_WINDOW, MAX_TRAIN_STEPS = 64, 256, 3, 16, 2000
MAX_TRAIN_FILES = 8

# -- the Hub ------------------------------------------------------------------------------------------------
HUB_CACHE_BYTES = int(float(os.environ.get("PIXELRNN_HUB_CACHE_MB", 1024)) * 10**6)  # visitors' Hub downloads on disk
MAX_CARD_BYTES = 2**20
MAX_REVISION = 128  # characters: a branch, a tag or a 40-digit commit id


def max_weights_bytes() -> int:
    """The largest model.safetensors fetched: MAX_PARAMETERS float32 numbers, and room for the header."""
    return MAX_PARAMETERS * 4 + 2**20


def check_affordable(model) -> None:
    c = model.config
    values = c["height"] * c["width"] * c["channels"]
    if values > MAX_IMAGE_VALUES:
        raise pixelrnn.PixelRNNError(
            f"this model's images are {c['height']}x{c['width']}x{c['channels']} ({values:,} values); this app runs "
            f"models of at most {MAX_IMAGE_VALUES:,} values per image. Run it with the library instead"
        )
    steps = sampling_steps(c)
    if steps > MAX_STEPS_PER_IMAGE:
        raise pixelrnn.PixelRNNError(
            f"this model takes {steps:,} sequential steps to draw one image; this app runs models of at most "
            f"{MAX_STEPS_PER_IMAGE:,} (a smaller image, a shorter window or many-to-many). Run it with the library instead"
        )


def check_revision(revision) -> None:
    """A branch, a tag or a commit id: printable, without spaces, at most MAX_REVISION characters."""
    if not isinstance(revision, str) or len(revision) > MAX_REVISION or not all(" " < c < "\x7f" for c in revision):
        raise pixelrnn.PixelRNNError(
            f"that is not a revision: write a branch, a tag or a commit id (at most {MAX_REVISION} characters, "
            "no spaces), or leave it empty for main"
        )


def check_repo_id(repo_id: str, loading: bool = True) -> None:
    """owner/name only: the Hub box must never reach the server's files (from_pretrained also takes paths)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    problem = not isinstance(repo_id, str) or repo_id.count("/") != 1
    try:
        validate_repo_id(repo_id)  # also at most 96 characters: checked before the name reaches the file system
    except HFValidationError:
        problem = True
    if not problem and loading:
        problem = _exists(repo_id)
    if problem:
        shown = repr(repo_id if len(str(repo_id)) <= 100 else str(repo_id)[:100] + "...")
        raise pixelrnn.PixelRNNError(f"{shown} is not a Hub model id: write it as owner/name, e.g. user/pixelrnn-mnist")


def check_token(token) -> str:
    """A Hub token typed into the page, stripped: there, and made of the characters a token has."""
    token = (token or "").strip() if isinstance(token, str) else ""
    if not token:
        raise pixelrnn.PixelRNNError("paste a Hugging Face token with write access (it is used once and not kept)")
    if not all(" " < c < "\x7f" for c in token):
        raise pixelrnn.PixelRNNError("that token holds spaces, line breaks or other characters a Hugging Face token never has: paste it again")
    return token


def _exists(name: str) -> bool:
    try:
        return Path(name).exists()
    except (OSError, ValueError):
        return True  # a name the file system cannot even look up is no repo id either
