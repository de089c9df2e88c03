"""A training run's folder: what is in it, what may be written over, and every write into it.

    out/                 the best checkpoint by validation NLL (model.safetensors, config.json, README.md)
    out/last/            the latest state for --resume: weights, optimizer.safetensors, state.json (and average.safetensors with --ema)
    out/metrics.jsonl    one JSON line per evaluation (and every `log_every` steps)
    out/loss.png         the loss curve
    out/train.json       the training settings in force, rewritten on --resume (it marks the folder as a pixelrnn run)

Nothing is lost: a new run refuses a folder that holds anything but its own kind of run, last/ is replaced
whole (a crash leaves the old one or the new one), a damaged last/ is named and left as it is, and a write
that fails (a full disk, a read-only folder) is one message that says what was kept.
"""
import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint
from .errors import PixelRNNError
from .plot import loss_curve

SETTINGS_NAME = "train.json"
# Everything a run writes into its folder; starting over removes these and nothing else.
RUN_FILES = (checkpoint.WEIGHTS_NAME, checkpoint.CONFIG_NAME, "README.md", "metrics.jsonl", "loss.png", SETTINGS_NAME)
RUN_FOLDERS = ("last", "last.new", "last.old")
AVERAGE_NAME = "average.safetensors"  # in last/: the weight average of a run with --ema


@dataclass
class RunState:
    """What --resume needs besides the weights and the optimizer; last/state.json holds it (and the settings)."""

    step: int = 0
    epoch: int = 0  # epochs finished
    batch_in_epoch: int = 0  # batches of the current epoch already trained
    best_valid_nll: float = math.inf
    train_seconds: float = 0.0
    best_metrics: dict | None = None  # the figures of the best checkpoint, once there is one

    @property
    def epoch_number(self) -> int:
        """The epoch in progress, counted from 1 (the one just finished between two epochs)."""
        return self.epoch + (1 if self.batch_in_epoch else 0)

    def to_json(self) -> dict:
        saved = dataclasses.asdict(self)
        if saved["best_metrics"] is None:  # the file's format since the first version: no key until a best exists
            del saved["best_metrics"]
        return saved

    @classmethod
    def from_json(cls, saved) -> "RunState":
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
        state = cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls) if f.name != "best_metrics"},
                    best_metrics=saved.get("best_metrics"))  # fmt: skip
        for name in ("step", "epoch", "batch_in_epoch"):
            value = getattr(state, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} is {value!r}")
        if not isinstance(state.best_valid_nll, (int, float)) or not isinstance(state.train_seconds, (int, float)):
            raise ValueError("best_valid_nll and train_seconds must be numbers")
        if state.best_metrics is not None and not isinstance(state.best_metrics, dict):
            raise ValueError("best_metrics must be an object")
        return state


class RunFolder:
    """The folder of one run, with the model, optimizer and settings whose state it keeps."""

    def __init__(self, out, model, optimizer, config, data_name=None, average=None):
        self.out, self.model, self.optimizer, self.config = Path(out), model, optimizer, config
        self.data_name, self.average = data_name, average

    @property
    def scored(self):
        """The model that is evaluated and kept: the weight average when there is one."""
        return self.model if self.average is None else self.average.model

    # -- starting ---------------------------------------------------------------------------------------
    def check_new(self, overwrite: bool) -> None:
        """A new run goes into a new or empty folder, or over a pixelrnn run when asked to (or when it saved nothing)."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise PixelRNNError(f"--out {out} is a file: give a folder for the run")
        if not out.exists() or not any(out.iterdir()):
            return
        if not self._holds_a_run():
            raise PixelRNNError(
                f"--out {out} is not empty and holds no pixelrnn training run (no {SETTINGS_NAME}): nothing in it was touched; "
                "choose a new or empty --out"
            )
        saved = (out / checkpoint.WEIGHTS_NAME).exists() or any((out / name / "state.json").exists() for name in RUN_FOLDERS)
        if saved and not overwrite:
            raise PixelRNNError(
                f"--out {out} holds a training run already: continue it with --resume, start it over with --overwrite "
                "(deletes its checkpoint, last/ and metrics), or choose another --out"
            )

    def _holds_a_run(self) -> bool:
        try:
            settings = json.loads((self.out / SETTINGS_NAME).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return False
        return isinstance(settings, dict) and {"data", "out", "epochs"} <= set(settings)

    def start_fresh(self) -> None:
        """Remove what an earlier run wrote here (only its own files), then record this run's settings."""
        self.out.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            (self.out / name).unlink(missing_ok=True)
        for name in RUN_FOLDERS:
            if (self.out / name).is_dir():
                shutil.rmtree(self.out / name)
        self.record_settings()

    def record_settings(self) -> None:
        (self.out / SETTINGS_NAME).write_text(json.dumps(dataclasses.asdict(self.config), indent=2) + "\n")

    # -- writing --------------------------------------------------------------------------------------
    def writing(self, write, *args):
        """Call `write(*args)`; a failed write (a full disk, a read-only folder) becomes one clear message."""
        from safetensors import SafetensorError

        try:
            return write(*args)
        except (OSError, SafetensorError) as error:
            out = self.out
            reason = getattr(error, "strerror", None) or str(error)
            where = getattr(error, "filename", None) or out
            kept = f"the last complete save is kept in {out / 'last'}" if (out / "last" / "state.json").exists() else "nothing was saved yet"
            raise PixelRNNError(f"cannot write {where}: {reason}; {kept}. Free some space or choose another --out") from None

    def save_last(self, state: "RunState") -> None:
        """Write last/ whole: into a fresh folder, then swap it in (a crash leaves the old one or the new one)."""
        fresh, last, old = self.out / "last.new", self.out / "last", self.out / "last.old"
        shutil.rmtree(fresh, ignore_errors=True)
        checkpoint.save(self.model, fresh, command=self.config.command or None)
        tensors, groups = _flatten_optimizer(self.optimizer.state_dict())
        tensors["rng.torch"] = torch.get_rng_state()
        checkpoint.write_tensors(tensors, fresh / "optimizer.safetensors")
        if self.average is not None:
            checkpoint.write_tensors(self.average.state_dict(), fresh / AVERAGE_NAME)
        saved = {**state.to_json(), "param_groups": groups, "config": dataclasses.asdict(self.config)}
        (fresh / "state.json").write_text(json.dumps(saved, indent=2))
        shutil.rmtree(old, ignore_errors=True)
        if last.exists():
            last.rename(old)
        fresh.rename(last)
        shutil.rmtree(old, ignore_errors=True)

    def save_best(self, state: "RunState", valid: dict) -> None:
        state.best_valid_nll = valid["nll_nats"]
        state.best_metrics = {
            "valid_nll_nats": round(valid["nll_nats"], 3), "valid_bits_per_dim": round(valid["bits_per_dim"], 5),
            "epoch": state.epoch, "step": state.step, **_conditional(valid, "valid"),
        }  # fmt: skip
        checkpoint.save(self.scored, self.out, metrics=state.best_metrics, data=self.data_name, command=self.config.command or None)

    def save_test(self, best, test: dict, state: "RunState") -> None:
        """Put the best checkpoint's test figures in its card and the log."""
        metrics = {**(state.best_metrics or {}), "test_nll_nats": round(test["nll_nats"], 3),
                   "test_bits_per_dim": round(test["bits_per_dim"], 5), **_conditional(test, "test")}  # fmt: skip
        checkpoint.save(best, self.out, metrics=metrics, data=self.data_name, command=self.config.command or None)
        self.log({"kind": "test", **test})

    # -- the log --------------------------------------------------------------------------------------
    def log(self, record: dict) -> None:
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")

    def metrics(self) -> list:
        path = self.out / "metrics.jsonl"
        return _parse_metrics(path.read_text(encoding="utf-8", errors="replace").splitlines()) if path.exists() else []

    def plot(self) -> None:
        loss_curve(self.metrics(), self.out / "loss.png")

    def forget_after(self, state: "RunState") -> None:
        """On resume: drop what a killed run logged after its last save, since those steps are trained again."""
        path = self.out / "metrics.jsonl"
        if not path.exists():
            return
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        kept = [r for r in _parse_metrics(lines) if not ((r.get("kind") in ("step", "eval") and r.get("step", 0) > state.step)
                                                         or (r.get("kind") == "epoch" and r.get("epoch", 0) > state.epoch))]  # fmt: skip
        if len(kept) == len(lines):
            return
        partial = path.with_name("metrics.jsonl.new")
        partial.write_text("".join(json.dumps(record) + "\n" for record in kept), encoding="utf-8")
        os.replace(partial, path)

    def diverged_message(self, state: "RunState", value) -> str:
        what = f"the loss is {value}" if not math.isfinite(value) else "the gradients are not finite"
        kept = (
            f"the last good checkpoint is kept in {self.out / 'last'}; lower --lr or --grad-clip and continue with --resume"
            if (self.out / "last" / "state.json").exists()
            else "no checkpoint had been saved yet; lower --lr or --grad-clip and start again"
        )
        return f"training stopped at step {state.step + 1}: {what} (not finite); {kept}"

    # -- resuming -------------------------------------------------------------------------------------
    def load_last(self) -> RunState:
        """Read last/ whole and check it before anything is changed; a damaged file is named, never repaired."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        out, model, optimizer, average = self.out, self.model, self.optimizer, self.average
        last = out / "last"
        if not (last / "state.json").exists() and (out / "last.old" / "state.json").exists():
            last = out / "last.old"  # killed during the swap
        if not (last / "state.json").exists():
            raise PixelRNNError(f"nothing to resume in {out}: no last/state.json (start without --resume)")

        def damaged(detail) -> PixelRNNError:
            return PixelRNNError(
                f"cannot resume: {last} is damaged ({detail}). It was left as it is, and so was the best checkpoint in {out}; "
                "to train again from the start, use --overwrite or another --out"
            )

        try:
            saved_model = type(model).from_pretrained(last)
        except PixelRNNError as error:
            raise damaged(error) from None
        if saved_model.config != model.config:
            changed = sorted(k for k in model.config if saved_model.config[k] != model.config[k])
            raise PixelRNNError(f"cannot resume: the model options differ from the saved run ({', '.join(changed)})")
        try:
            saved = json.loads((last / "state.json").read_text(encoding="utf-8"))
            state = RunState.from_json(saved)
            groups = saved["param_groups"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            raise damaged(f"state.json: {type(error).__name__}: {error}") from None
        try:
            tensors = load_file(str(last / "optimizer.safetensors"))
        except (OSError, SafetensorError) as error:
            raise damaged(f"optimizer.safetensors: {error}") from None
        rng = tensors.pop("rng.torch", None)
        expected = torch.get_rng_state()
        if rng is None or rng.dtype != expected.dtype or rng.shape != expected.shape:
            raise damaged("optimizer.safetensors holds no valid random number generator state")
        try:
            optimizer_state = _unflatten_optimizer(tensors, groups)
            _check_optimizer_state(optimizer_state, model)
            optimizer.load_state_dict(optimizer_state)
            torch.set_rng_state(rng)
        except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as error:
            raise damaged(f"optimizer state: {type(error).__name__}: {error}") from None
        averaged = None
        if average is not None and (last / AVERAGE_NAME).exists():  # else the average starts from the resumed weights
            try:
                averaged = load_file(str(last / AVERAGE_NAME))
                average.load_state_dict(averaged)  # checks every name and shape before the model is touched
            except (OSError, SafetensorError, RuntimeError) as error:
                raise damaged(f"{AVERAGE_NAME}: {error}") from None
        model.load_state_dict(saved_model.state_dict())
        if average is not None and averaged is None:
            average.load_state_dict(model.state_dict())
        return state


def _check_optimizer_state(optimizer_state: dict, model) -> None:
    """AdamW's moments for every parameter, shaped like it, or none yet (saved before the first step)."""
    state = optimizer_state["state"]
    if not state:
        return
    for index, parameter in enumerate(model.parameters()):
        moments = state.get(index)
        if moments is None or not {"step", "exp_avg", "exp_avg_sq"} <= set(moments):
            raise KeyError(f"no AdamW moments for parameter {index}")
        for key in ("exp_avg", "exp_avg_sq"):
            if moments[key].shape != parameter.shape:
                raise ValueError(f"{key} of parameter {index} is {tuple(moments[key].shape)}, not {tuple(parameter.shape)}")
    if len(state) != len(list(model.parameters())):
        raise ValueError(f"moments for {len(state)} parameters, the model has {len(list(model.parameters()))}")


def _flatten_optimizer(state_dict):
    tensors = {}
    for index, values in state_dict["state"].items():
        for key, value in values.items():
            tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous() if torch.is_tensor(value) else torch.tensor(value)
    return tensors, state_dict["param_groups"]


def _unflatten_optimizer(tensors, groups):
    state = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": groups}


def _parse_metrics(lines) -> list:
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:  # a line torn by a killed run
            continue
    return [record for record in records if isinstance(record, dict)]


def _conditional(figures: dict, split: str) -> dict:
    """A class-conditional model's figures given the true class (its nll_nats is the marginal), for the card."""
    if "conditional_nll_nats" not in figures:
        return {}
    return {f"{split}_conditional_nll_nats": round(figures["conditional_nll_nats"], 3),
            f"{split}_conditional_bits_per_dim": round(figures["conditional_bits_per_dim"], 5),
            f"{split}_class_accuracy": round(figures["class_accuracy"], 4)}  # fmt: skip
