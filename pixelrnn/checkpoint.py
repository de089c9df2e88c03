"""Checkpoints: a folder (or Hub repo) with model.safetensors + config.json + README.md. Never pickle.

Loading is strict: the config is validated, every tensor name and shape must match, and pickle files
(pytorch_model.bin, *.pt, *.pth, *.ckpt) are refused rather than unpickled.
"""
import inspect
import json
from pathlib import Path

import torch

from .errors import PixelRNNError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def load(cls, source, revision=None, *, token=None, cache_dir=None, local_files_only=False, map_location="cpu", force_download=False):
    """Build a model from a local folder or a Hub repo id; return it in eval mode."""
    source = str(source)
    if Path(source).exists():
        config_path, weights_path = _local_files(Path(source))
        model = cls(**read_config(config_path, cls))
    else:
        from . import hub

        options = dict(token=token, cache_dir=cache_dir, local_files_only=local_files_only, force_download=force_download)
        model = cls(**read_config(hub.fetch(source, CONFIG_NAME, revision, **options), cls))
        weights_path = hub.fetch(source, WEIGHTS_NAME, revision, **options)  # only once the config is known to be good
    state = _read_weights(weights_path)
    check_state(model, state, origin=source)
    model.load_state_dict(state, strict=True)
    return model.to(map_location).eval()


def _local_files(folder: Path):
    if not folder.is_dir():
        raise PixelRNNError(f"{str(folder)!r} is a file; give the checkpoint folder that holds {WEIGHTS_NAME} and {CONFIG_NAME}")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise PixelRNNError(refuse_pickle_message(pickles))
        raise PixelRNNError(f"no {WEIGHTS_NAME} in {str(folder)!r}: not a pixelrnn checkpoint folder")
    config = folder / CONFIG_NAME
    if not config.is_file():
        raise PixelRNNError(f"no {CONFIG_NAME} in {str(folder)!r}: the weights cannot be used without their configuration")
    return config, weights


def refuse_pickle_message(names) -> str:
    return (
        f"refusing to load pickle checkpoint file(s) {', '.join(names)}: pickle can run arbitrary code. "
        f"pixelrnn loads only {WEIGHTS_NAME}; convert with safetensors.torch.save_file(state_dict, '{WEIGHTS_NAME}')"
    )


def read_config(path, cls) -> dict:
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PixelRNNError(f"{CONFIG_NAME} cannot be read as JSON: {error}") from None
    if not isinstance(config, dict):
        raise PixelRNNError(f"{CONFIG_NAME} must hold a JSON object of PixelRNN options")
    known = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise PixelRNNError(
            f"{CONFIG_NAME} is not a pixelrnn config: unknown option(s) {', '.join(unknown)} "
            f"(expected some of {', '.join(sorted(known))})"
        )
    return config


def _read_weights(path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise PixelRNNError(f"{WEIGHTS_NAME} is damaged or not a safetensors file: {error}") from None


def check_state(model: torch.nn.Module, state: dict, origin: str = "the checkpoint") -> None:
    """Compare names and shapes before torch does, so a mismatch reads as a sentence, not a traceback."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [
        f"{name} {tuple(state[name].shape)} (config expects {tuple(expected[name].shape)})"
        for name in sorted(set(expected) & set(state))
        if state[name].shape != expected[name].shape
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
    from safetensors.torch import save_file

    from .card import model_card

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    _atomic_write(folder / WEIGHTS_NAME, lambda path: save_file(state, str(path), metadata={"format": "pt"}))
    config_text = json.dumps(model.config, indent=2, sort_keys=True) + "\n"
    _atomic_write(folder / CONFIG_NAME, lambda path: path.write_text(config_text, encoding="utf-8"))
    card_text = model_card(model, **card_kwargs)
    _atomic_write(folder / "README.md", lambda path: path.write_text(card_text, encoding="utf-8"))
    return folder


def _atomic_write(target: Path, write) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        write(temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
