"""Serves app.py once per test process on 127.0.0.1, on tiny checkpoints in a temporary weights folder.

test_app.py and test_browser.py share the one server (app.py keeps its models in module globals).
"""
import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import pixelrnn
from conftest import free_port  # noqa: F401 - re-exported for test_app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TINY = dict(hidden_size=16, head_size=16)
CLASS_NAMES = ["a", "b", "<i>c</i>"]  # tiny-classes: the last as a stranger's Hub repo may name it, shown as text only


def make_checkpoints(folder: Path) -> None:
    """Tiny random checkpoints; PIXELRNN_TEST_CHECKPOINT may name a real one to serve as binarized-mnist
    (how the README's screenshots are taken: the tests hold for any 28x28 binary model)."""
    real = os.environ.get("PIXELRNN_TEST_CHECKPOINT")
    if real:
        (folder / "binarized-mnist").symlink_to(Path(real).resolve(), target_is_directory=True)
    else:
        pixelrnn.PixelRNN(height=28, width=28, **TINY).save_pretrained(folder / "binarized-mnist")
    pixelrnn.PixelRNN(height=8, width=8, channels=3, values="8bit", mixtures=2, **TINY).save_pretrained(folder / "rgb-8bit")
    pixelrnn.PixelRNN(height=8, width=8, classes=3, class_names=CLASS_NAMES, **TINY).save_pretrained(folder / "tiny-classes")


@functools.cache
def served():
    """(the imported app module, its URL, the weights folder) of the one running server."""
    weights = Path(tempfile.mkdtemp(prefix="pixelrnn-test-weights-"))
    atexit.register(shutil.rmtree, weights, ignore_errors=True)
    make_checkpoints(weights)
    os.environ["PIXELRNN_WEIGHTS"] = str(weights)
    import app

    port = free_port()
    app.demo.launch(**app.LAUNCH_OPTIONS, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    atexit.register(app.demo.close)
    return app, f"http://127.0.0.1:{port}/", weights


def pixels(image) -> np.ndarray:
    """A PNG file path or PIL image -> RGB pixels, to compare what the app sent with the library's result."""
    if not isinstance(image, Image.Image):
        with open(image, "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n", f"{image} is not a PNG"
        image = Image.open(image)
    return np.asarray(image.convert("RGB"))


def library_model(name="binarized-mnist"):
    """A checkpoint the app serves, on the app's device: the same seed then draws the same values."""
    app, _, weights = served()
    return pixelrnn.PixelRNN.from_pretrained(weights / name).to(app.DEVICE)


def app_fast() -> bool:
    """Whether the app draws with `fast=True` on this machine: the library must draw the same way to match it."""
    return served()[0].FAST_SAMPLING


def assert_same_picture(sent, x, model):
    """A picture the app sent (a file or a PIL image, any scale) shows exactly the library's values."""
    expected = np.asarray(pixelrnn.to_pil(x, model).convert("RGB"))
    got = pixels(sent)
    scale = got.shape[1] // expected.shape[1]
    assert scale >= 1 and got.shape == (expected.shape[0] * scale, expected.shape[1] * scale, 3)
    np.testing.assert_array_equal(got[::scale, ::scale], expected)
