"""Where the app's models come from, and what the app agrees to run.

A model key says where a model comes from: "local:<name>" (a folder in the weights folder),
"hub:<repo id>@<revision>" (a visitor's Hub load: anonymous, never with the server's token),
"preset:<repo id>" (a Hub model the operator listed in PIXELRNN_HUB_MODELS: loaded with the server's token)
or "trained:<run id>" (a run of the Train tab).
"""
import json
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlencode

import pixelrnn
from pixelrnn import hub
from pixelrnn.card import card_fields
from pixelrnn.checkpoint import CARD_NAME, CONFIG_NAME, HUB_PREFIX, MAX_CONFIG_BYTES, WEIGHTS_NAME
from pixelrnn.sample import last
from pixelrnn.weights import check_weights

from .hubcache import HubCache
from .text import plain, url_part

WEIGHTS_ENV, PRESETS_ENV = "PIXELRNN_WEIGHTS", "PIXELRNN_HUB_MODELS"
DEFAULT_CHECKPOINT = "binarized-mnist"
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME)
# A visitor's model: at most this many parameters, and this many sequential steps to draw one image
# (RNN steps, times the window for many-to-one, plus one head pass per value for the autoregressive head).
MAX_PARAMETERS = int(os.environ.get("PIXELRNN_MAX_PARAMETERS", 50_000_000))
MAX_STEPS_PER_IMAGE = int(os.environ.get("PIXELRNN_MAX_STEPS_PER_IMAGE", 20_000))
# Values in one image (height x width x channels): a grid of 64 samples of it must fit in memory many times over.
MAX_IMAGE_VALUES = int(os.environ.get("PIXELRNN_MAX_IMAGE_VALUES", 65_536))
MAX_CARD_BYTES = 2**20
MAX_REVISION = 128  # characters: a branch, a tag or a 40-digit commit id
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
    rnn_steps = tokens * (config["window"] if config["mode"] == "many-to-one" else 1) * config["num_layers"]
    rnn_steps *= 2 if config.get("bidirectional") else 1  # each layer, and each direction, waits for the one before
    head_steps = config["height"] * config["width"] * config["channels"] if config["row_head"] == "autoregressive" else tokens
    return rnn_steps + head_steps


def check_affordable(model) -> None:
    c = model.config
    values = c["height"] * c["width"] * c["channels"]
    if values > MAX_IMAGE_VALUES:
        raise pixelrnn.PixelRNNError(
            f"this model's images are {c['height']}x{c['width']}x{c['channels']} ({values:,} values); this app runs "
            f"models of at most {MAX_IMAGE_VALUES:,} values per image. Run it with the library instead"
        )
    steps = sequential_steps(c)
    if steps > MAX_STEPS_PER_IMAGE:
        raise pixelrnn.PixelRNNError(
            f"this model takes {steps:,} sequential steps to draw one image; this app runs models of at most "
            f"{MAX_STEPS_PER_IMAGE:,} (a smaller image, a shorter window or many-to-many). Run it with the library instead"
        )


class Models:
    """Loaded models by key, the least recently used dropped first; a dropped model reloads from its source."""

    def __init__(self, device, capacity: int = 4, hub_cache: HubCache | None = None):
        self.device, self.capacity = device, capacity
        self.hub_cache = hub_cache
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

    def samples(self, key: str, max_seconds: float = float("inf")):
        """A grid of 16 samples (seed 0): the checkpoint's samples.png, else drawn once and kept.

        Drawing it is model work like any request: past `max_seconds` it stops with a message.
        """
        key = key or default_key()
        kind, _, name = key.partition(":")
        shipped = weights_dir() / name / "samples.png"
        if kind == "local" and shipped.is_file():
            return str(shipped)
        with self._lock:
            if key in self._samples:
                return self._samples[key]
        model = self.get(key)
        picture = pixelrnn.to_pil(last(pixelrnn.generate(model, n=16, seed=0), max_seconds).image, model)
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
            check_revision(revision)
            options.update(revision=revision or None, token=False)  # a visitor's load never uses the server's token
            if self.hub_cache is not None:
                options["cache_dir"] = str(self.hub_cache.folder)
        elif kind == "trained" and name in self._trained:
            source = self._trained[name]
        else:
            raise pixelrnn.PixelRNNError(f"unknown model {key!r}: choose one in the model list")
        if kind not in ("preset", "hub"):
            model = pixelrnn.PixelRNN.from_pretrained(source, **options)
            return self._checked(model, source), _card_metrics(source, options)
        # A Hub load: each file's size is checked before it is fetched, and the whole load (every request) ends
        # by one deadline; a visitor's files go to the app's bounded cache.
        limits = {CONFIG_NAME: MAX_CONFIG_BYTES, CARD_NAME: MAX_CARD_BYTES, WEIGHTS_NAME: max_weights_bytes()}
        with hub.deadline(), hub.size_limits(limits), self._caching(source):
            model = pixelrnn.PixelRNN.from_pretrained(HUB_PREFIX + source, **options)  # never a folder of that name
            return self._checked(model, source), _card_metrics(source, options)

    def _checked(self, model, source):
        check_affordable(model)
        check_weights(model, str(source))
        return model.to(self.device)

    def _caching(self, repo_id):
        from contextlib import nullcontext

        return self.hub_cache.using(repo_id) if self.hub_cache is not None else nullcontext()


def max_weights_bytes() -> int:
    """The largest model.safetensors fetched: MAX_PARAMETERS float32 numbers, and room for the header."""
    return MAX_PARAMETERS * 4 + 2**20


def hub_key(repo_id: str, revision: str = "") -> str:
    repo_id = (repo_id or "").strip() if isinstance(repo_id, str) else ""
    revision = (revision or "").strip() if isinstance(revision, str) else None
    check_repo_id(repo_id)
    check_revision(revision)
    return f"hub:{repo_id}@{revision}"


def check_revision(revision) -> None:
    """A branch, a tag or a commit id: printable, without spaces, at most MAX_REVISION characters."""
    if not isinstance(revision, str) or len(revision) > MAX_REVISION or not all(" " < c < "\x7f" for c in revision):
        raise pixelrnn.PixelRNNError(
            f"that is not a revision: write a branch, a tag or a commit id (at most {MAX_REVISION} characters, "
            "no spaces), or leave it empty for main"
        )


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


def _exists(name: str) -> bool:
    try:
        return Path(name).exists()
    except (OSError, ValueError):
        return True  # a name the file system cannot even look up is no repo id either


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
    # Every name and number here may come from a visitor or a Hub repo: shown as plain text (text.plain).
    lines = [
        f"**{plain(label(key))}** on **{model.device.type}**: {c['height']}x{c['width']} {color}, {plain(c['values'])} values; "
        f"{plain(', '.join(options))}; {pixelrnn.count_parameters(model):,} parameters."
    ]
    if metrics:
        lines.append("Measured: " + ", ".join(f"{plain(name)} {plain(_figure(value))}" for name, value in metrics.items()) + ".")
    repo, revision = _shareable(key)
    if repo:
        hub_model = key.startswith(("hub:", "preset:"))
        card = f"{HUB_URL}/{url_part(repo, '/')}" + (f"/tree/{url_part(revision)}" if revision else "") if hub_model else None
        query = "?" + urlencode({"model": repo, **({"revision": revision} if revision else {})})
        links = [f"[share this model]({query})"] + ([f"[model card]({card})"] if card else [])
        lines.append(" · ".join(links))
        if card:
            load_args = _literal(repo) + (f", revision={_literal(revision)}" if revision else "")
            lines.append(
                f"```python\nimport pixelrnn\nmodel = pixelrnn.PixelRNN.from_pretrained({load_args})\n"
                "last = pixelrnn.sample.last(pixelrnn.generate(model, n=16, seed=0))\n```"
            )
    return "\n\n".join(lines)


def _literal(text: str) -> str:
    """A Python string literal of `text` without a markup character (the same string: \\u003c is <)."""
    return json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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
            card = Path(hub.fetch(str(source), CARD_NAME, options.get("revision"), token=options.get("token"),
                                  cache_dir=options.get("cache_dir")))  # fmt: skip
        with open(card, "rb") as file:
            text = file.read(MAX_CARD_BYTES + 1)
        if len(text) > MAX_CARD_BYTES:
            return {}
        return card_fields(text.decode("utf-8")).get("metrics", {})
    except (OSError, UnicodeDecodeError, pixelrnn.PixelRNNError):
        return {}


def _figure(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
