"""Checkpoints: a folder (or Hub repo) with model.safetensors + config.json + README.md. Never pickle.

Loading is strict and cheap to refuse: the config is read (at most MAX_CONFIG_BYTES) and checked, the total
parameter count included, before the weights are downloaded; the tensor names and shapes in the safetensors
header are compared with what the config builds (for a large model, on the meta device first: no memory)
before the weights are read;
pickle files (pytorch_model.bin, *.pt, *.pth, *.ckpt) are refused rather than unpickled.

This module knows the model only as the class it is given (`cls(**config)`, `cls.check_config`,
`cls.parameter_count`).
"""
import difflib
import inspect
import json
import os
from pathlib import Path

import torch

from . import hub
from .card import model_card
from .errors import PixelRNNError
from .weights import check_weights

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_CONFIG_BYTES = 2**20  # a config.json is a few hundred bytes
# Above this many parameters a model costs seconds and GiBs to build: its tensor names and shapes are compared
# with the weights' header on the meta device first. Below it the real model is as cheap as the meta one
# (whose first use in a process costs about a second of imports in torch).
META_CHECK_ABOVE = 2**24


HUB_PREFIX = "hf:"  # hf:owner/name is a Hub repo id, never a folder here


def load(cls, source, revision=None, *, token=None, cache_dir=None, local_files_only=False, map_location="cpu",
         force_download=False, max_parameters=None):  # fmt: skip
    """Build a model from a local folder or a Hub repo id; return it in eval mode.

    `token=False` sends no token to the Hub; `max_parameters` refuses larger models before anything is built.
    """
    if isinstance(source, str) and source.startswith(HUB_PREFIX):
        folder, source = None, source[len(HUB_PREFIX) :]
    else:
        folder = local_folder(source)
    if folder is not None:
        config_path, weights_path = _local_files(folder)
        config = cls.check_config(read_config(config_path, cls), max_parameters=max_parameters)
    else:
        source = str(source)
        options = dict(token=token, cache_dir=cache_dir, local_files_only=local_files_only, force_download=force_download)
        with hub.deadline():  # one deadline for the whole load, not one per request
            config = cls.check_config(read_config(hub.fetch(source, CONFIG_NAME, revision, **options), cls), max_parameters=max_parameters)
            limits = {WEIGHTS_NAME: 4 * cls.parameter_count(config) + 2**20}  # float32 and a header: nothing bigger is fetched
            with hub.size_limits(limits):
                weights_path = _fetch_weights(source, revision, options)  # only once the config is known to be good
    header = _header_shapes(weights_path)
    if cls.parameter_count(config) > META_CHECK_ABOVE:
        with torch.device("meta"):  # nothing allocated or initialised
            check_state(_shapes(cls(**config)), header, origin=str(source))
    model = cls(**config)
    check_state(_shapes(model), header, origin=str(source))
    model.load_state_dict(_read_weights(weights_path), strict=True)
    check_weights(model, origin=str(source))
    return model.to(map_location).eval()


def local_folder(source) -> Path | None:
    """The folder `source` names on this machine; None when it reads as a Hub repo id.

    A name that can only be a path (a Path object, absolute, ./x, ../x, ~/x) and does not exist is an error at
    once: no Hub request for a typo. So is a/b when the folder a holds a folder named much like b (a typo of
    weights/binarized-mnist); otherwise a/b is a repo id, even where a folder a exists here. `load` sends
    hf:a/b to the Hub without asking.
    """
    path = Path(source).expanduser()
    if _exists(path):
        return path
    text = str(source)
    surely_local = isinstance(source, os.PathLike) or path.is_absolute() or text.startswith(("./", "../", "~", ".\\", "..\\"))
    if not surely_local and len(Path(text).parts) != 2:
        return None
    guess = _nearest_folder(path)
    if not surely_local and guess is None:
        return None
    hint = f" (did you mean {guess!r}?)" if guess else ""
    if not surely_local:
        hint += f"; {HUB_PREFIX}{text} loads the Hub repo of that name"
    raise PixelRNNError(f"there is no folder {text!r} on this machine{hint}")


def _nearest_folder(path: Path) -> str | None:
    try:
        names = [p.name for p in path.parent.iterdir() if p.is_dir()] if path.parent.is_dir() else []
    except OSError:  # a folder we may not list
        return None
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.85)  # a typo, not a sibling model
    return str(path.parent / close[0]) if close else None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL byte in it
        return False


def _local_files(folder: Path):
    if not folder.is_dir():
        raise PixelRNNError(f"{str(folder)!r} is a file; give the checkpoint folder that holds {WEIGHTS_NAME} and {CONFIG_NAME}")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        _refuse_pickles(p.name for p in folder.iterdir())
        raise PixelRNNError(f"no {WEIGHTS_NAME} in {str(folder)!r}: not a pixelrnn checkpoint folder")
    config = folder / CONFIG_NAME
    if not config.is_file():
        raise PixelRNNError(f"no {CONFIG_NAME} in {str(folder)!r}: the weights cannot be used without their configuration")
    return config, weights


def _fetch_weights(repo_id, revision, options) -> str:
    try:
        return hub.fetch(repo_id, WEIGHTS_NAME, revision, **options)
    except hub.FileMissing:
        if not options["local_files_only"]:
            _refuse_pickles(hub.list_files(repo_id, revision, token=options["token"]))
        raise


def pickle_files(names) -> list[str]:
    return sorted(name for name in names if name.endswith(PICKLE_SUFFIXES))


def _refuse_pickles(names) -> None:
    """A checkpoint with pickle weights instead of safetensors: say why it is not loaded and how to convert it."""
    pickles = pickle_files(names)
    if pickles:
        raise PixelRNNError(
            f"refusing to load pickle checkpoint file(s) {', '.join(pickles)}: pickle can run arbitrary code. "
            f"pixelrnn loads only {WEIGHTS_NAME}; convert with safetensors.torch.save_file(state_dict, '{WEIGHTS_NAME}')"
        )


def read_config(path, cls) -> dict:
    """The options in a config.json, checked to be a JSON object of `cls`'s keyword arguments (not yet validated)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise PixelRNNError(f"{CONFIG_NAME} cannot be read: {error}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise PixelRNNError(f"{CONFIG_NAME} is larger than {MAX_CONFIG_BYTES // 2**10} KiB: it is not a pixelrnn config")
    try:
        config = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PixelRNNError(f"{CONFIG_NAME} cannot be read as JSON: {error}") from None
    except RecursionError:
        raise PixelRNNError(f"{CONFIG_NAME} is nested too deeply to be a pixelrnn config") from None
    except ValueError:  # an integer of more than sys.get_int_max_str_digits() digits
        raise PixelRNNError(f"{CONFIG_NAME} holds a number too long to be a pixelrnn option") from None
    if not isinstance(config, dict):
        raise PixelRNNError(f"{CONFIG_NAME} must hold a JSON object of PixelRNN options")
    known = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(config) - known)
    if unknown:
        shown = ", ".join(name if len(name) <= 40 else name[:40] + "..." for name in unknown[:10])
        raise PixelRNNError(
            f"{CONFIG_NAME} is not a pixelrnn config: unknown option(s) {shown}{' ...' if len(unknown) > 10 else ''} "
            f"(expected some of {', '.join(sorted(known))})"
        )
    return config


def _shapes(model) -> dict:
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def _header_shapes(path) -> dict:
    """Tensor name -> shape, from the safetensors header alone."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            return {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise PixelRNNError(f"{WEIGHTS_NAME} is damaged or not a safetensors file: {error}") from None


def _read_weights(path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise PixelRNNError(f"{WEIGHTS_NAME} is damaged or not a safetensors file: {error}") from None


def check_state(expected: dict, found: dict, origin: str = "the checkpoint") -> None:
    """Compare tensor names and shapes (name -> shape) before torch does, so a mismatch reads as a sentence."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong_shape = [
        f"{name} {found[name]} (config expects {expected[name]})"
        for name in sorted(set(expected) & set(found))
        if tuple(found[name]) != tuple(expected[name])
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
    if wrong_shape:
        problems.append(f"wrong shapes: {', '.join(wrong_shape[:5])}")
    if problems:
        raise PixelRNNError(f"the weights in {origin} do not match its {CONFIG_NAME}: " + "; ".join(problems))


def save(model, folder, **card_kwargs) -> Path:
    """Write the checkpoint folder; each file lands whole (temp file + rename) or not at all."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    _atomic_write(folder / WEIGHTS_NAME, lambda path: write_tensors(state, path, metadata={"format": "pt"}))
    config_text = json.dumps(model.config, indent=2, sort_keys=True) + "\n"
    _atomic_write(folder / CONFIG_NAME, lambda path: path.write_text(config_text, encoding="utf-8"))
    parameters = sum(p.numel() for p in model.parameters())
    card_text = model_card(model.config, parameters, **card_kwargs)
    _atomic_write(folder / CARD_NAME, lambda path: path.write_text(card_text, encoding="utf-8"))
    return folder


def write_tensors(tensors: dict, path, metadata: dict | None = None) -> None:
    """A safetensors file written by Python, so it gets the user's umask (safetensors' save_file makes it owner-only)."""
    from safetensors.torch import save

    Path(path).write_bytes(save(tensors, metadata=metadata))


def _atomic_write(target: Path, write) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        write(temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
