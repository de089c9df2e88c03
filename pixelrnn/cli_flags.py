"""The table of `train`'s flags (and eval's data flags), read from the options and TrainConfig once and cached.

Building it imports torch (seconds); the table is kept in the user's cache (FLAG_CACHE_ENV, else
$XDG_CACHE_HOME/pixelrnn or ~/.cache/pixelrnn), under a key made of the package's source and place, so any
change to the code builds it afresh and `--help` answers without torch.
"""
import dataclasses
import hashlib
import json
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
FLAG_CACHE_ENV = "PIXELRNN_CACHE"


def flag_table() -> dict:
    """{"model": [[name, default, help, choices], ...], "training": [...]}: the flags of train (and eval's data flags).

    Built from pixelrnn.model and pixelrnn.train, which import torch (seconds), then read from the cache.
    """
    key = hashlib.sha256(str(PACKAGE).encode())
    for path in sorted(PACKAGE.glob("*.py")):
        key.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    folder = Path(os.environ.get(FLAG_CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pixelrnn")
    cached = folder / f"flags-{key.hexdigest()[:20]}.json"
    try:
        return _decoded(json.loads(cached.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):  # not there yet (or damaged): build it
        pass
    table = _built_flag_table()
    text = json.dumps(table)
    if _decoded(json.loads(text)) == table and all(type(a[1]) is type(b[1]) for a, b in zip(_rows(table), _rows(_decoded(json.loads(text))))):
        temporary = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("flags-*.json"):
                old.unlink(missing_ok=True)
            temporary.write_text(text, encoding="utf-8")
            temporary.replace(cached)
        except OSError:  # a read-only home: every command builds the table, as before
            temporary.unlink(missing_ok=True)
    return table


def _rows(table):
    return table["model"] + table["training"]


def _decoded(table) -> dict:
    """The table as _built_flag_table gives it: choices as tuples."""
    return {part: [[name, default, help, tuple(choices) if choices is not None else None] for name, default, help, choices in table[part]]
            for part in ("model", "training")}  # fmt: skip


def _built_flag_table() -> dict:
    from .datasets import DATA_DIR_ENV, DEFAULT_DATA_DIR
    from .options import CHOICES, HELP, OPTIONS
    from .train import TrainConfig

    model = [[name, p.default, HELP[name], tuple(CHOICES[name]) if name in CHOICES else None] for name, p in OPTIONS.items()]
    training = []
    for spec in dataclasses.fields(TrainConfig):
        if spec.metadata["flag"]:
            help = spec.metadata["help"]
            if spec.name == "data_dir":  # the default said as the path it is, whatever the current folder
                help = f"folder holding the .npz data sets; when not given: ${DATA_DIR_ENV}, else {DEFAULT_DATA_DIR} (beside the project)"
            choices = spec.metadata["choices"]
            training.append([spec.name, spec.default, help, tuple(choices) if choices is not None else None])
    return {"model": model, "training": training}
