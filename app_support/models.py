"""Where the app's models come from, and the cache of the ones loaded.

A model is named by its key (keys.ModelKey, a string on the page). `Models` loads it from its source once,
checked against the app's limits, and keeps it with its card's metrics and its samples, the least recently
used dropped first.
"""
import difflib
import os
import threading
from collections import OrderedDict
from contextlib import nullcontext
from pathlib import Path
from typing import NamedTuple

import pixelrnn
from pixelrnn import hub
from pixelrnn.card import card_fields
from pixelrnn.checkpoint import CARD_NAME, CONFIG_NAME, HUB_PREFIX, MAX_CONFIG_BYTES, WEIGHTS_NAME
from pixelrnn.weights import check_weights

from . import labels, limits
from .hubcache import HubCache
from .keys import ModelKey, label

WEIGHTS_ENV, PRESETS_ENV = "PIXELRNN_WEIGHTS", "PIXELRNN_HUB_MODELS"
DEFAULT_CHECKPOINT = "binarized-mnist"
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME)


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
        return str(ModelKey("local", names[0]))
    return str(ModelKey("preset", presets()[0])) if presets() else ""


def no_checkpoint_message() -> str:
    return labels.no_checkpoint_message(weights_dir(), CHECKPOINT_FILES, DEFAULT_CHECKPOINT)


def choices(session_models) -> list[tuple[str, str]]:
    """The model list: (name, key) of the checkpoint folders, the operator's Hub models and the session's own."""
    keys = [ModelKey("local", name) for name in local_checkpoints()] + [ModelKey("preset", name) for name in presets()]
    return [(key.label, str(key)) for key in keys] + [tuple(m) for m in session_models]


def with_session_model(session_models, key: str, replacing: str = "") -> list:
    """The session's own models (Hub loads, its trained one) with `key` last; models of kind `replacing` go."""
    kept = [m for m in session_models if m[1] != key and not (replacing and ModelKey.parse(m[1]).kind == replacing)]
    return kept + [[label(key), key]]


def compare_defaults() -> list:
    """The original design's two checkpoints when they are shipped, else the first two models."""
    names = local_checkpoints()
    preferred = [n for n in ("original-many-to-one", "original-many-to-many") if n in names]
    chosen = preferred if len(preferred) == 2 else names[:2]
    return [str(ModelKey("local", n)) for n in chosen] + [None] * (2 - len(chosen))


def hub_key(repo_id: str, revision: str = "") -> str:
    repo_id = (repo_id or "").strip() if isinstance(repo_id, str) else ""
    revision = (revision or "").strip() if isinstance(revision, str) else None
    limits.check_repo_id(repo_id)
    limits.check_revision(revision)
    return str(ModelKey("hub", repo_id, revision))


def key_for_link(name, revision="") -> str:
    """The key of a `?model=` link: a checkpoint of this server by its name, else a Hub repo id.

    A misspelt folder name gets the closest one; a revision, which only a Hub repo has, is refused for a folder of
    this server rather than ignored.
    """
    name, revision, folders = str(name).strip(), str(revision or "").strip(), local_checkpoints()
    if name in folders and revision:
        raise pixelrnn.PixelRNNError(f"{name} is a checkpoint folder of this server, which has no revisions: "
                                     f"open ?model={name} without &revision=")  # fmt: skip
    if "/" not in name and name not in folders and name not in presets():
        close = difflib.get_close_matches(name, folders + presets(), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise pixelrnn.PixelRNNError(f"there is no checkpoint {name} here and it is not a Hub model id (owner/name): {hint}"
                                     f"the checkpoints here are {', '.join(folders) or 'none'}")  # fmt: skip
    if name in folders:
        return str(ModelKey("local", name))
    if name in presets() and not revision:
        return str(ModelKey("preset", name))
    return hub_key(name, revision)


class Loaded(NamedTuple):
    model: pixelrnn.PixelRNN
    metrics: dict  # what its card says it measured (empty when it says nothing, or could not be read)


class Models:
    """Loaded models by key, the least recently used dropped first; a dropped model reloads from its source."""

    def __init__(self, device, capacity: int = limits.MAX_LOADED_MODELS, hub_cache: HubCache | None = None):
        self.device, self.capacity = device, capacity
        self.hub_cache = hub_cache
        self._loaded = OrderedDict()
        self._trained = {}  # run id -> checkpoint folder
        self._metrics = {}  # key -> the metrics its card states
        self._samples = {}  # key -> a grid of samples drawn here
        self._lock = threading.Lock()

    def get(self, key: str) -> pixelrnn.PixelRNN:
        return self.load(key).model

    def load(self, key: str) -> Loaded:
        """The model of `key` and its card's metrics, read together (loaded from its source when not kept)."""
        key = key or default_key()
        if not key:
            raise pixelrnn.PixelRNNError(no_checkpoint_message())
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return Loaded(self._loaded[key], dict(self._metrics.get(key, {})))
        model, metrics = self._load(ModelKey.parse(key))  # outside the lock: a Hub download must not block other sessions
        with self._lock:
            self._loaded[key], self._metrics[key] = model, metrics
            while len(self._loaded) > self.capacity:
                self._forget(next(iter(self._loaded)))
        return Loaded(model, dict(metrics))

    def _forget(self, key: str) -> None:
        """Drop a model and what was kept beside it (caller holds the lock): the cache stays bounded."""
        for kept in (self._loaded, self._metrics, self._samples):
            kept.pop(key, None)

    def add_trained(self, run_id: str, folder: Path) -> str:
        key = str(ModelKey("trained", run_id))
        with self._lock:
            self._trained[run_id] = Path(folder)
            self._loaded.pop(key, None)
        return key

    def forget_trained(self, run_id: str) -> None:
        with self._lock:
            self._trained.pop(run_id, None)
            self._forget(str(ModelKey("trained", run_id)))

    def samples(self, key: str, max_seconds: float = float("inf")):
        """A grid of 16 samples (seed 0): the checkpoint's samples.png, else drawn once and kept.

        Drawing it is model work like any request: past `max_seconds` it stops with a message.
        """
        key = key or default_key()
        parsed = ModelKey.parse(key)
        shipped = weights_dir() / parsed.name / "samples.png"
        if parsed.kind == "local" and shipped.is_file():
            return str(shipped)
        with self._lock:
            if key in self._samples:
                return self._samples[key]
        model = self.get(key)
        picture = pixelrnn.to_pil(pixelrnn.last(pixelrnn.generate(model, n=16, seed=0), max_seconds).image, model)
        with self._lock:
            if key in self._loaded:  # not kept for a model dropped meanwhile
                self._samples[key] = picture
        return picture

    def _load(self, key: ModelKey):
        options = dict(max_parameters=limits.MAX_PARAMETERS)
        if key.kind == "local" and key.name in local_checkpoints():
            source = weights_dir() / key.name
        elif key.kind == "local":
            raise pixelrnn.PixelRNNError(f"there is no checkpoint {key.name!r} in {weights_dir()}")
        elif key.kind == "preset" and key.name in presets():
            source = key.name  # the operator's own list: the server's token may be used
        elif key.kind == "hub":
            source = key.name
            limits.check_repo_id(source)
            limits.check_revision(key.revision)
            options.update(revision=key.revision or None, token=False)  # a visitor's load never uses the server's token
            if self.hub_cache is not None:
                options["cache_dir"] = str(self.hub_cache.folder)
        elif key.kind == "trained" and key.name in self._trained:
            source = self._trained[key.name]
        else:
            raise pixelrnn.PixelRNNError(f"unknown model {str(key)!r}: choose one in the model list")
        if not key.from_hub:
            model = pixelrnn.PixelRNN.from_pretrained(source, **options)
            return self._checked(model, source), _card_metrics(source, options)
        # A Hub load: each file's size is checked before it is fetched, and the whole load (every request) ends
        # by one deadline; a visitor's files go to the app's bounded cache.
        sizes = {CONFIG_NAME: MAX_CONFIG_BYTES, CARD_NAME: limits.MAX_CARD_BYTES, WEIGHTS_NAME: limits.max_weights_bytes()}
        caching = self.hub_cache.using(source) if self.hub_cache is not None else nullcontext()
        with hub.deadline(), hub.size_limits(sizes), caching:
            model = pixelrnn.PixelRNN.from_pretrained(HUB_PREFIX + source, **options)  # never a folder of that name
            return self._checked(model, source), _card_metrics(source, options)

    def _checked(self, model, source):
        limits.check_affordable(model)
        check_weights(model, str(source))
        return model.to(self.device)


def _card_metrics(source, options: dict) -> dict:
    """The metrics of a checkpoint's card; a card that is missing or unreadable gives none."""
    try:
        if Path(source).is_dir():
            card = Path(source) / "README.md"
        else:
            card = Path(hub.fetch(str(source), CARD_NAME, options.get("revision"), token=options.get("token"),
                                  cache_dir=options.get("cache_dir")))  # fmt: skip
        with open(card, "rb") as file:
            text = file.read(limits.MAX_CARD_BYTES + 1)
        if len(text) > limits.MAX_CARD_BYTES:
            return {}
        return card_fields(text.decode("utf-8")).get("metrics", {})
    except (OSError, UnicodeDecodeError, pixelrnn.PixelRNNError):
        return {}
