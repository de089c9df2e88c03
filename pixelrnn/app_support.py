"""What app.py needs besides its layout: where checkpoints live, a cache of loaded models, pictures and plots
of results, bounded training runs in per-session folders, and errors turned into messages for the page.

Nothing here builds UI; app.py keeps the handlers (thin adapters to the public API), the layout and the wiring.
"""
import functools
import inspect
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import pandas as pd
import torch

import pixelrnn

log = logging.getLogger("pixelrnn.app")

WEIGHTS_ENV = "PIXELRNN_WEIGHTS"
DEFAULT_CHECKPOINT = "binarized-mnist"
CHECKPOINT_FILES = ("config.json", "model.safetensors")
DISPLAY_WIDTH = 448  # pixels: results are upscaled (nearest neighbour) to about this width
MAX_DISPLAY_SCALE = 16
HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# -- errors -------------------------------------------------------------------------------------------
def friendly_errors(handler):
    """Let a handler's PixelRNNError reach the page as its message; anything else as a short generic one.

    Unexpected errors are logged here with their traceback; the page never sees a stack trace.
    """
    import gradio as gr

    def translate(error):
        if isinstance(error, gr.Error):
            return error
        if isinstance(error, pixelrnn.PixelRNNError):
            return gr.Error(str(error), print_exception=False)
        log.exception("unexpected error in %s", handler.__name__)
        return gr.Error(
            f"Something went wrong on the server ({type(error).__name__}); it has been logged. "
            "Try again, or with other settings.",
            print_exception=False,
        )

    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def stream(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - every error becomes a message
                raise translate(error) from None

        return stream

    @functools.wraps(handler)
    def call(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - every error becomes a message
            raise translate(error) from None

    return call


def scrub(message: str, secret: str | None) -> str:
    """A message with a secret (the Hub token) blanked out, in case a library quotes it."""
    return message.replace(secret, "***") if secret else message


# -- devices ------------------------------------------------------------------------------------------
def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def gpu(duration: int | None = None):
    """`spaces.GPU` on Hugging Face ZeroGPU hardware (the package is there), a no-op decorator elsewhere."""
    try:
        import spaces
    except ImportError:
        return lambda handler: handler
    return spaces.GPU(duration=duration) if duration else spaces.GPU


# -- checkpoints and the model cache --------------------------------------------------------------------
def weights_dir() -> Path:
    return Path(os.environ.get(WEIGHTS_ENV) or Path(__file__).resolve().parent.parent / "weights")


def local_checkpoints() -> list[str]:
    """Names of the checkpoint folders in the weights folder, the default first."""
    folder = weights_dir()
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir() if all((p / f).is_file() for f in CHECKPOINT_FILES))
    return sorted(names, key=lambda name: name != DEFAULT_CHECKPOINT)


def default_key() -> str:
    """The model a new session starts with: the default checkpoint, else the first one, else none ("")."""
    names = local_checkpoints()
    return f"local:{names[0]}" if names else ""


def no_checkpoint_message() -> str:
    return (
        f"No checkpoint found in {weights_dir()} (each model is a folder with {' and '.join(CHECKPOINT_FILES)}; "
        f"the default is {DEFAULT_CHECKPOINT}). Train one in the Train tab, or load one from the Hub."
    )


class Models:
    """Loaded models by key, the least recently used dropped first; a dropped model reloads from its source.

    A key says where a model comes from: "local:<name>" (a folder in the weights folder),
    "hub:<repo id>@<revision>", or "trained:<run id>" (a run of the Train tab).
    """

    def __init__(self, device: torch.device, capacity: int = 4):
        self.device, self.capacity = device, capacity
        self._loaded = OrderedDict()
        self._trained = {}  # run id -> checkpoint folder
        self._lock = threading.Lock()

    def get(self, key: str) -> pixelrnn.PixelRNN:
        key = key or default_key()
        if not key:
            raise pixelrnn.PixelRNNError(no_checkpoint_message())
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        model = self._load(key)  # outside the lock: a Hub download must not block other sessions
        with self._lock:
            self._loaded[key] = model
            while len(self._loaded) > self.capacity:
                self._loaded.popitem(last=False)
        return model

    def add_trained(self, run_id: str, folder: Path) -> str:
        key = f"trained:{run_id}"
        with self._lock:
            self._trained[run_id] = Path(folder)
            self._loaded.pop(key, None)
        return key

    def forget_trained(self, run_id: str) -> None:
        with self._lock:
            self._trained.pop(run_id, None)
            self._loaded.pop(f"trained:{run_id}", None)

    def _load(self, key: str) -> pixelrnn.PixelRNN:
        kind, _, name = key.partition(":")
        if kind == "local":
            if name not in local_checkpoints():
                raise pixelrnn.PixelRNNError(f"there is no checkpoint {name!r} in {weights_dir()}")
            source, revision = weights_dir() / name, None
        elif kind == "hub":
            source, _, revision = name.rpartition("@")
            check_repo_id(source)
        elif kind == "trained" and name in self._trained:
            source, revision = self._trained[name], None
        else:
            raise pixelrnn.PixelRNNError(f"unknown model {key!r}: choose one in the model list")
        return pixelrnn.PixelRNN.from_pretrained(source, revision=revision or None).to(self.device)


def hub_key(repo_id: str, revision: str) -> str:
    repo_id = (repo_id or "").strip()
    check_repo_id(repo_id)
    return f"hub:{repo_id}@{(revision or '').strip()}"


def check_repo_id(repo_id: str, loading: bool = True) -> None:
    # from_pretrained also accepts local paths: the Hub box must not reach the server's files
    if not HUB_REPO_ID.match(repo_id) or (loading and Path(repo_id).exists()):
        raise pixelrnn.PixelRNNError(f"{repo_id!r} is not a Hub model id: write it as owner/name, e.g. user/pixelrnn-mnist")


def label(key: str) -> str:
    kind, _, name = key.partition(":")
    return {"local": name, "hub": f"Hub: {name.rstrip('@')}", "trained": "trained in this session"}.get(kind, key)


def describe(model: pixelrnn.PixelRNN, key: str) -> str:
    """One paragraph about the model in use: where from, device, shape, options, parameter count."""
    c = model.config
    color = "gray" if c["channels"] == 1 else "RGB"
    layers = f"{c['num_layers']} layer{'s' if c['num_layers'] > 1 else ''}"
    options = [f"{c['cell'].upper()} {c['hidden_size']} x {layers}", c["mode"], f"{c['row_head']} row head"]
    if c["mode"] == "many-to-one":
        options.append(f"window {c['window']}" + (", bidirectional" if c["bidirectional"] else ""))
    if c["batch_norm"]:
        options.append("batch norm")
    return (
        f"**{label(key)}** on **{model.device.type}**: {c['height']}x{c['width']} {color}, {c['values']} values; "
        f"{', '.join(options)}; {pixelrnn.count_parameters(model):,} parameters."
    )


# -- pictures and plots ---------------------------------------------------------------------------------
def display_scale(config: dict, n: int = 1) -> int:
    columns = math.ceil(math.sqrt(n))  # to_pil lays a batch out as a near-square grid with 1-pixel gaps
    width = config["width"] if n == 1 else columns * (config["width"] + 1) + 1
    return max(1, min(MAX_DISPLAY_SCALE, DISPLAY_WIDTH // width))


def picture(x: torch.Tensor, model):
    """(C, H, W) or (B, C, H, W) in value space -> a crisp, upscaled PIL image."""
    n = x.shape[0] if x.dim() == 4 else 1
    return pixelrnn.to_pil(x, model, scale=display_scale(model.config, n))


def error_map(original: torch.Tensor, shown: torch.Tensor, rows_done: int, model):
    """Where the result differs from the original, over the rows produced so far.

    Binary: the original dimmed, values turned off in blue, turned on in red. 8-bit: the mean absolute
    difference on a black-red-yellow-white scale.
    """
    original = original.reshape(shown.shape[-3:]).float().cpu()
    shown = shown.reshape(shown.shape[-3:]).float().cpu()
    height, width = original.shape[-2:]
    rgb = torch.zeros(3, height, width)
    if model.config["values"] == "binary":
        truth, result = original.mean(0), shown.mean(0)
        rgb[:] = truth * 70
        missed, extra = truth > result, truth < result
        rgb[:, missed] = torch.tensor([60.0, 120.0, 255.0])[:, None]
        rgb[:, extra] = torch.tensor([255.0, 60.0, 60.0])[:, None]
    else:
        level = (original - shown).abs().mean(0) / 255 * 3
        rgb = torch.stack([level, level - 1, level - 2]).clamp(0, 1) * 255
    rgb[:, rows_done + 1 :] = 0
    config = dict(model.config, channels=3, values="8bit")
    return pixelrnn.to_pil(rgb.round(), config, scale=display_scale(config))


class UniqueFrames:
    """Marks each streamed picture with its own PNG text chunk, so each becomes its own file.

    Gradio names an output file by its content and rewrites that file when the same content comes again
    (a black row adds nothing to a picture); the rewrite can cut short a download of the same file that
    is still in flight. Pixels are untouched.
    """

    def __init__(self):
        self.prefix, self.count = secrets.token_hex(8), 0

    def __call__(self, image):
        self.count += 1
        image = image.copy()
        image.info["frame"] = f"{self.prefix}-{self.count}"
        return image


def row_loss_frame(row_losses: list) -> pd.DataFrame:
    return pd.DataFrame({"row": range(len(row_losses)), "loss": row_losses})


# -- training runs --------------------------------------------------------------------------------------
class TrainingRuns:
    """One training folder per session (a new run replaces the old one) and its Stop button."""

    def __init__(self, models: Models):
        self.models = models
        self.root = Path(tempfile.mkdtemp(prefix="pixelrnn-app-runs-"))
        self._runs = {}  # session -> (run id, folder)
        self._stops = {}  # session -> threading.Event
        self._lock = threading.Lock()

    def start(self, session: str) -> tuple[str, Path, threading.Event]:
        self.end(session)
        run_id = secrets.token_hex(8)
        folder = self.root / run_id
        stop = threading.Event()
        with self._lock:
            self._runs[session] = (run_id, folder)
            self._stops[session] = stop
        return run_id, folder, stop

    def stop(self, session: str) -> bool:
        with self._lock:
            stop = self._stops.get(session)
        if stop is not None:
            stop.set()
        return stop is not None

    def checkpoint(self, session: str) -> Path:
        """The session's trained checkpoint: the best by validation NLL, else the last state."""
        with self._lock:
            run = self._runs.get(session)
        if run is None:
            raise pixelrnn.PixelRNNError("no model was trained in this session yet: train one first")
        folder = run[1]
        for candidate in (folder, folder / "last"):
            if all((candidate / f).is_file() for f in CHECKPOINT_FILES):
                return candidate
        raise pixelrnn.PixelRNNError("the training run stopped before its first step: there is no model to keep")

    def end(self, session: str) -> None:
        """Forget a session's run and delete its files (a new run, or the page closed)."""
        with self._lock:
            run = self._runs.pop(session, None)
            stop = self._stops.pop(session, None)
        if stop is not None:
            stop.set()
        if run is not None:
            self.models.forget_trained(run[0])
            shutil.rmtree(run[1], ignore_errors=True)


def steps_until_stopped(steps, stop: threading.Event, max_seconds: float):
    """Pass on train.run's Progress until it ends, Stop is pressed or time is up; closing it saves the model."""
    deadline = time.monotonic() + max_seconds
    try:
        for progress in steps:
            yield progress
            if stop.is_set() or time.monotonic() > deadline:
                break
    finally:
        steps.close()


def training_status(progress, finished: bool = False) -> str:
    """A line about a training run: where it is, or how it ended."""
    if progress is None:
        return "Stopped before the first step."
    figures = f"training NLL {progress.loss:.2f} nats per image"
    if progress.best_valid_nll < math.inf:
        figures += f", best validation NLL {progress.best_valid_nll:.2f}"
    if not finished:
        return f"Step {progress.step} of {progress.total_steps}, epoch {progress.epoch}: {figures}."
    ending = "Done" if progress.step >= progress.total_steps else f"Stopped after {progress.step} of {progress.total_steps} steps"
    return f"{ending} ({figures}). The model is now in use in the other tabs: download it below or push it to the Hub."


def zip_checkpoint(folder: Path, target: Path) -> Path:
    """The checkpoint files (safetensors weights, config, model card) in one zip, for download."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in (*CHECKPOINT_FILES, "README.md"):
            if (folder / name).is_file():
                archive.write(folder / name, f"pixelrnn-model/{name}")
    return target


def loss_frame(history: list) -> pd.DataFrame:
    """(step, nll, series) records -> the training curve."""
    return pd.DataFrame(history, columns=["step", "nll", "series"])


def fresh_seed() -> int:
    return secrets.randbelow(2**31)
