"""Where the app's models come from, and what the app agrees to run.

A model key says where a model comes from: "local:<name>" (a folder in the weights folder),
"hub:<repo id>@<revision>" (a visitor's Hub load: anonymous, never with the server's token),
"preset:<repo id>" (a Hub model the operator listed in PIXELRNN_HUB_MODELS: loaded with the server's token)
or "trained:<run id>" (a run of the Train tab).
"""
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlencode

import pixelrnn
from pixelrnn.card import card_fields
from pixelrnn.checkpoint import CONFIG_NAME, HUB_PREFIX, WEIGHTS_NAME

WEIGHTS_ENV, PRESETS_ENV = "PIXELRNN_WEIGHTS", "PIXELRNN_HUB_MODELS"
DEFAULT_CHECKPOINT = "binarized-mnist"
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME)
# A visitor's model: at most this many parameters, and this many sequential steps to draw one image
# (RNN steps, times the window for many-to-one, plus one head pass per value for the autoregressive head).
MAX_PARAMETERS = int(os.environ.get("PIXELRNN_MAX_PARAMETERS", 50_000_000))
MAX_STEPS_PER_IMAGE = int(os.environ.get("PIXELRNN_MAX_STEPS_PER_IMAGE", 20_000))
HUB_URL = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def weights_dir() -> Path:
    return Path(os.environ.get(WEIGHTS_ENV) or Path(__file__).resolve().parent.parent / "weights")


def local_checkpoints() -> list[str]:
    """Names of the checkpoint folders in the weights folder, the default first."""
    folder = weights_dir()
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir() if all((p / f).is_file() for f in CHECKPOINT_FILES))
    return sorted(names, key=lambda name: name != DEFAULT_CHECKPOINT)


def presets() -> list[str]:
    """The operator's Hub models (PIXELRNN_HUB_MODELS, comma-separated repo ids)."""
    return [name.strip() for name in os.environ.get(PRESETS_ENV, "").split(",") if name.strip()]


def default_key() -> str:
    """The model a new session starts with: the default checkpoint, else the first one, else none ("")."""
    names = local_checkpoints()
    if names:
        return f"local:{names[0]}"
    return f"preset:{presets()[0]}" if presets() else ""


def no_checkpoint_message() -> str:
    return (
        f"No checkpoint found in {weights_dir()} (each model is a folder with {' and '.join(CHECKPOINT_FILES)}; "
        f"the default is {DEFAULT_CHECKPOINT}). Train one in the Train tab, or load one from the Hub."
    )


def sequential_steps(config: dict) -> int:
    """The steps that drawing one image takes one after another, whatever the batch size."""
    tokens = config["height"] * (config["width"] if config["step"] == "pixel" else 1)
    rnn_steps = tokens * (config["window"] if config["mode"] == "many-to-one" else 1)
    head_steps = config["height"] * config["width"] * config["channels"] if config["row_head"] == "autoregressive" else tokens
    return rnn_steps + head_steps


def check_affordable(model) -> None:
    steps = sequential_steps(model.config)
    if steps > MAX_STEPS_PER_IMAGE:
        raise pixelrnn.PixelRNNError(
            f"this model takes {steps:,} sequential steps to draw one image; this app runs models of at most "
            f"{MAX_STEPS_PER_IMAGE:,} (a smaller image, a shorter window or many-to-many). Run it with the library instead"
        )


class Models:
    """Loaded models by key, the least recently used dropped first; a dropped model reloads from its source."""

    def __init__(self, device, capacity: int = 4):
        self.device, self.capacity = device, capacity
        self._loaded = OrderedDict()
        self._trained = {}  # run id -> checkpoint folder
        self._metrics = {}  # key -> the metrics its card states
        self._samples = {}  # key -> a grid of samples drawn here
        self._lock = threading.Lock()

    def get(self, key: str) -> pixelrnn.PixelRNN:
        key = key or default_key()
        if not key:
            raise pixelrnn.PixelRNNError(no_checkpoint_message())
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        model, metrics = self._load(key)  # outside the lock: a Hub download must not block other sessions
        with self._lock:
            self._loaded[key], self._metrics[key] = model, metrics
            while len(self._loaded) > self.capacity:
                self._forget(next(iter(self._loaded)))
        return model

    def _forget(self, key: str) -> None:
        """Drop a model and what was kept beside it (caller holds the lock): the cache stays bounded."""
        for kept in (self._loaded, self._metrics, self._samples):
            kept.pop(key, None)

    def add_trained(self, run_id: str, folder: Path) -> str:
        key = f"trained:{run_id}"
        with self._lock:
            self._trained[run_id] = Path(folder)
            self._loaded.pop(key, None)
        return key

    def forget_trained(self, run_id: str) -> None:
        with self._lock:
            self._trained.pop(run_id, None)
            self._forget(f"trained:{run_id}")

    def metrics(self, key: str) -> dict:
        """What the model's card says it measured (empty when it says nothing, or could not be read)."""
        with self._lock:
            return dict(self._metrics.get(key or default_key(), {}))

    def samples(self, key: str):
        """A grid of 16 samples (seed 0): the checkpoint's samples.png, else drawn once and kept."""
        key = key or default_key()
        kind, _, name = key.partition(":")
        shipped = weights_dir() / name / "samples.png"
        if kind == "local" and shipped.is_file():
            return str(shipped)
        with self._lock:
            if key in self._samples:
                return self._samples[key]
        model = self.get(key)
        *_, last = pixelrnn.generate(model, n=16, seed=0)
        picture = pixelrnn.to_pil(last.image, model)
        with self._lock:
            if key in self._loaded:  # not kept for a model dropped meanwhile
                self._samples[key] = picture
        return picture

    def _load(self, key: str):
        kind, _, name = key.partition(":")
        options = dict(max_parameters=MAX_PARAMETERS)
        if kind == "local":
            if name not in local_checkpoints():
                raise pixelrnn.PixelRNNError(f"there is no checkpoint {name!r} in {weights_dir()}")
            source = weights_dir() / name
        elif kind == "preset" and name in presets():
            source = name  # the operator's own list: the server's token may be used
        elif kind == "hub":
            source, _, revision = name.rpartition("@")
            check_repo_id(source)
            options.update(revision=revision or None, token=False)  # a visitor's load never uses the server's token
        elif kind == "trained" and name in self._trained:
            source = self._trained[name]
        else:
            raise pixelrnn.PixelRNNError(f"unknown model {key!r}: choose one in the model list")
        hub = kind in ("preset", "hub")  # a Hub repo id, even where a folder of that name exists here
        model = pixelrnn.PixelRNN.from_pretrained(HUB_PREFIX + source if hub else source, **options)
        check_affordable(model)
        return model.to(self.device), _card_metrics(source, options)


def hub_key(repo_id: str, revision: str = "") -> str:
    repo_id = (repo_id or "").strip()
    check_repo_id(repo_id)
    return f"hub:{repo_id}@{(revision or '').strip()}"


def key_for_link(name: str, revision: str = "") -> str:
    """The key of a `?model=` link: a checkpoint of this server by its name, else a Hub repo id."""
    name = (name or "").strip()
    if name in local_checkpoints():
        return f"local:{name}"
    if name in presets() and not revision:
        return f"preset:{name}"
    return hub_key(name, revision)


def check_repo_id(repo_id: str, loading: bool = True) -> None:
    """owner/name only: the Hub box must never reach the server's files (from_pretrained also takes paths)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    problem = repo_id.count("/") != 1 or (loading and Path(repo_id).exists())
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        problem = True
    if problem:
        raise pixelrnn.PixelRNNError(f"{repo_id!r} is not a Hub model id: write it as owner/name, e.g. user/pixelrnn-mnist")


def label(key: str) -> str:
    kind, _, name = key.partition(":")
    return {"local": name, "preset": name, "hub": f"Hub: {name.rstrip('@')}", "trained": "trained in this session"}.get(kind, key)


def describe(model: pixelrnn.PixelRNN, key: str, metrics: dict | None = None) -> str:
    """The model in use: where from, device, shape, options, parameters; its card's metrics; how to share and load it."""
    c = model.config
    color = "gray" if c["channels"] == 1 else "RGB"
    layers = f"{c['num_layers']} layer{'s' if c['num_layers'] > 1 else ''}"
    options = [f"{c['cell'].upper()} {c['hidden_size']} x {layers}", c["mode"], f"{c['row_head']} row head"]
    if c["mode"] == "many-to-one":
        options.append(f"window {c['window']}" + (", bidirectional" if c["bidirectional"] else ""))
    if c["batch_norm"]:
        options.append("batch norm")
    lines = [
        f"**{label(key)}** on **{model.device.type}**: {c['height']}x{c['width']} {color}, {c['values']} values; "
        f"{', '.join(options)}; {pixelrnn.count_parameters(model):,} parameters."
    ]
    if metrics:
        lines.append("Measured: " + ", ".join(f"{name} {_figure(value)}" for name, value in metrics.items()) + ".")
    repo, revision = _shareable(key)
    if repo:
        card = f"{HUB_URL}/{repo}" + (f"/tree/{revision}" if revision else "") if key.startswith(("hub:", "preset:")) else None
        query = "?" + urlencode({"model": repo, **({"revision": revision} if revision else {})})
        links = [f"[share this model]({query})"] + ([f"[model card]({card})"] if card else [])
        lines.append(" · ".join(links))
        if card:
            load_args = json.dumps(repo) + (f", revision={json.dumps(revision)}" if revision else "")
            lines.append(
                f"```python\nimport pixelrnn\nmodel = pixelrnn.PixelRNN.from_pretrained({load_args})\n"
                '*_, last = pixelrnn.generate(model, n=16, seed=0)\n```'
            )
    return "\n\n".join(lines)


def _shareable(key: str) -> tuple[str | None, str]:
    kind, _, name = key.partition(":")
    if kind == "hub":
        repo, _, revision = name.rpartition("@")
        return repo, revision
    if kind in ("local", "preset"):
        return name, ""
    return None, ""


def _card_metrics(source, options: dict) -> dict:
    """The metrics of a checkpoint's card; a card that is missing or unreadable gives none."""
    try:
        if Path(source).is_dir():
            card = Path(source) / "README.md"
        else:
            from pixelrnn.hub import fetch

            card = Path(fetch(str(source), "README.md", options.get("revision"), token=options.get("token")))
        if card.stat().st_size > 2**20:
            return {}
        return card_fields(card.read_text(encoding="utf-8")).get("metrics", {})
    except (OSError, UnicodeDecodeError, pixelrnn.PixelRNNError):
        return {}


def _figure(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
