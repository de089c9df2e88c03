"""The training loop, written out: learning rate, forward/backward, clip, step, log; evaluate and keep the best.

`run` is a generator that yields a `Progress` after every optimizer step, so the CLI (tqdm) and the app
(live plot, stop button) share it. The output folder holds:

    out/                 the best checkpoint by validation NLL (model.safetensors, config.json, README.md)
    out/last/            the latest state for --resume: weights, optimizer.safetensors, state.json (and average.safetensors with --ema)
    out/metrics.jsonl    one JSON line per epoch (and every `log_every` steps)
    out/loss.png         the loss curve
    out/train.json       the training settings in force, rewritten on --resume (it marks the folder as a pixelrnn run)

Nothing is lost: a new run refuses a folder that holds anything but its own kind of run, files are replaced
atomically, SIGINT/SIGTERM and closing the generator save `last/` before stopping, a NaN/infinite loss stops
the run and keeps the last good checkpoint, a damaged `last/` is reported and left as it is.
Under `torchrun`, the same code runs DistributedDataParallel (nccl on GPUs, gloo on CPU); the global batch
is split across processes and only rank 0 writes files.
"""
import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from . import checkpoint, distributions
from .datasets import AUGMENTS, NAMED, load_splits
from .devices import device_problem, pick_device
from .errors import PixelRNNError
from .averaging import WeightAverage
from .evaluate import evaluate
from .model import PixelRNN
from .plot import loss_curve
from .views import draw_views, shifted_views

MAX_SEED = 2**32 - 1  # the data order is seeded with seed * 100003 + epoch, which must stay within 64 bits


def _setting(default, help: str, choices=None, flag: bool = True):
    """A training setting; its help line, choices and default are what `pixelrnn train --help` prints."""
    return field(default=default, metadata={"help": help, "choices": choices, "flag": flag})


@dataclass
class TrainConfig:
    data: str = _setting("binarized-mnist", f"the data: {', '.join(NAMED)}, an image file, a folder of images, or hf:<dataset>[:<split>]")
    data_dir: str | None = _setting(None, "folder holding the .npz data sets; when not given: $PIXELRNN_DATA, else ../shared/data")
    out: str = _setting("runs/pixelrnn", "the run folder: best checkpoint, last/, metrics.jsonl, loss.png, train.json")
    epochs: int = _setting(10, "passes over the training images (0: --max-steps alone decides)")
    max_steps: int = _setting(0, "stop after this many optimizer steps (0: --epochs alone decides)")
    batch_size: int = _setting(64, "images per optimizer step, across all processes")
    lr: float = _setting(2e-3, "peak learning rate (AdamW), reached after the warm-up, then a cosine decay")
    min_lr_ratio: float = _setting(0.05, "the cosine decay ends at lr x this")
    warmup_steps: int = _setting(200, "linear warm-up steps, at most a tenth of the run's steps (a shorter run warms up for a tenth)")
    weight_decay: float = _setting(0.0, "AdamW weight decay")
    grad_clip: float = _setting(1.0, "clip the gradient norm to this (0: no clipping)")
    ema: float = _setting(0.0, "decay per step of a moving average of the weights (0: none; 0.999 averages about the last 1,000 steps): "
                               "the average is what is scored, kept as the best checkpoint and tested")
    seed: int = _setting(0, f"seeds the weights, the data order and the augmentation (0 to {MAX_SEED})")
    save_every: int = _setting(200, "steps between saves of last/ (it is also saved at every epoch end and on stop)")
    log_every: int = _setting(50, "steps between training-loss lines in metrics.jsonl")
    eval_every: int = _setting(0, "steps between validation scores inside an epoch, each keeping the best checkpoint (0: at epoch ends only)")
    eval_batch_size: int = _setting(500, "images per batch when scoring the validation and test splits")
    max_valid: int = _setting(0, "score on the first N validation images (0: all of them)")
    copies: int = _setting(512, "training views made from image files and folders")
    augment: str = _setting("crops", "how views of image files are made: random crops and flips, flips only, or the images as they are", AUGMENTS)
    device: str = _setting("auto", "auto (a GPU, else Apple's MPS, else the CPU), cpu, cuda, cuda:N or mps")
    compile: bool = _setting(False, "torch.compile the model (slow start, faster steps on a GPU)")
    threads: int = _setting(0, "CPU threads for torch (0: torch's default)")
    resume: bool = _setting(False, "continue the run in --out from its last/ folder")
    overwrite: bool = _setting(False, "start over in --out although it holds a pixelrnn run (deletes that run's checkpoint, last/ and metrics)")
    test: bool = _setting(False, "score the best checkpoint on the test split once, at the end, and put it in the model card")
    command: str = _setting("", "the command line that reproduces this run, for the model card", flag=False)

    def validate(self) -> None:
        """Refuse impossible settings with one message that lists every problem."""
        problems = []

        def whole(name, low, high=None):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{name} must be a whole number, got {value!r}")
            elif value < low or (high is not None and value > high):
                problems.append(f"{name} must be {'at least ' + str(low) if high is None else f'between {low} and {high}'}, got {value}")

        def number(name, low, high=math.inf, above=False):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                problems.append(f"{name} must be a finite number, got {value!r}")
            elif value < low or value > high or (above and value == low):
                where = f"above {low}" if above else f"at least {low}" if high == math.inf else f"between {low} and {high}"
                problems.append(f"{name} must be {where}, got {value}")

        for name in ("epochs", "max_steps", "warmup_steps", "max_valid", "threads", "eval_every"):
            whole(name, 0)
        for name in ("batch_size", "save_every", "log_every", "eval_batch_size", "copies"):
            whole(name, 1)
        whole("seed", 0, MAX_SEED)
        number("lr", 0, above=True)
        number("min_lr_ratio", 0, 1)
        number("weight_decay", 0)
        number("grad_clip", 0)
        number("ema", 0, 1)
        if self.ema == 1:
            problems.append("ema must be below 1 (1 would never move from the first weights)")
        if self.epochs == 0 and self.max_steps == 0:
            problems.append("epochs and max_steps are both 0: there is nothing to train")
        if self.augment not in AUGMENTS:
            problems.append(f"augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        for name in ("compile", "resume", "overwrite", "test"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.resume is True and self.overwrite is True:
            problems.append("resume and overwrite exclude each other: continue the run, or start it over")
        if not isinstance(self.data, (str, os.PathLike)) or not str(self.data):
            problems.append(f"data must name a data source, got {self.data!r}")
        if not isinstance(self.out, (str, os.PathLike)) or not str(self.out):
            problems.append(f"out must be a folder, got {self.out!r}")
        problem = device_problem(self.device)
        if problem:
            problems.append(problem)
        if problems:
            raise PixelRNNError("invalid training settings: " + "; ".join(problems))


@dataclass
class Progress:
    step: int
    total_steps: int
    epoch: int  # the epoch being trained, from 1 (after an evaluation: the epoch just finished)
    loss: float  # training NLL of the batch, nats per image
    lr: float
    valid: dict | None = None  # set after an evaluation
    best_valid_nll: float = math.inf


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


@dataclass
class _Run:
    """What the saving helpers share: the folder, the model and its optimizer, the settings."""

    out: Path
    model: PixelRNN
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    data_name: str | None = None
    average: WeightAverage | None = None
    show_scoring: bool = False  # a progress bar on stderr while the validation and test splits are scored

    @property
    def scored(self) -> PixelRNN:
        """The model that is evaluated and kept: the weight average when there is one."""
        return self.model if self.average is None else self.average.model


def run(config: TrainConfig, model_config: dict, splits=None, show_scoring: bool = False):
    """Train; yields Progress per step. `splits` (datasets.Splits) overrides config.data; `show_scoring` shows
    a progress bar on stderr while the validation and test splits are scored (the CLI's)."""
    config.validate()
    rank, world = _init_distributed()
    out = Path(config.out)
    if not config.resume and rank == 0:
        _check_new_run_folder(out, config.overwrite)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    model = PixelRNN(**model_config).to(device)
    if splits is None:
        splits = load_splits(config.data, model.config, folder=config.data_dir, copies=config.copies, augment=config.augment, seed=config.seed)
    train_images = splits.train
    valid_images = splits.valid[: config.max_valid] if config.max_valid else splits.valid
    if not len(train_images) or not len(valid_images):
        raise PixelRNNError(f"the data source {config.data!r} has no {'training' if not len(train_images) else 'validation'} images: "
                            "train on another source (cifar10-exact-test is for eval --split test)")  # fmt: skip
    if config.batch_size % world:
        raise PixelRNNError(f"batch size {config.batch_size} does not split evenly over {world} processes")
    batch_size = min(config.batch_size, len(train_images))
    steps_per_epoch = max(1, len(train_images) // batch_size)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps) if config.epochs else config.max_steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay)
    average = WeightAverage(model, config.ema) if config.ema else None
    this = _Run(out, model, optimizer, config, splits.name, average, show_scoring)
    state = RunState()
    if config.resume:
        state = _load_last(out, model, optimizer, average)
        if rank == 0:
            _writing(out, _forget_metrics_after, out, state)
        if state.step >= total_steps and state.best_metrics is not None:
            raise PixelRNNError(
                f"the run in {out} is finished ({state.step} of {total_steps} steps; its best checkpoint is in {out}): "
                "to train further, --resume with a larger --epochs or --max-steps; to start over, use --overwrite"
            )
        if rank == 0:
            _writing(out, _record_settings, out, config)  # a longer --epochs on resume: train.json says what runs now
    elif rank == 0:
        _writing(out, _start_fresh, out, config)
    network = model
    if world > 1:
        network = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        network = torch.compile(network)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    stop = _StopFlag()
    per_rank = batch_size // world
    values, view_shift = model.config["values"], model.config["view_shift"]
    lr, reported = _learning_rate(config, state.step, total_steps), math.nan
    model.train()
    try:
        while state.step < total_steps:
            order = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(config.seed * 100003 + state.epoch))
            epoch_start, epoch_losses = time.perf_counter(), []
            for index in range(state.batch_in_epoch, steps_per_epoch):
                lr = _learning_rate(config, state.step, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                chosen = order[index * batch_size : (index + 1) * batch_size][rank * per_rank : (rank + 1) * per_rank]
                x = train_images[chosen].to(device, non_blocking=True)
                views = draw_views(view_shift, len(x), config.seed, state.step, device)
                if views is not None:
                    x = shifted_views(x, views, view_shift)
                with autocast:
                    params = network(x, views)
                nll = -distributions.log_prob(params.float(), model.to_tokens(x), values).sum(dim=(1, 2))  # (B,)
                loss = nll.mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
                reported = _mean_over_processes(loss.detach(), world)
                if not (math.isfinite(reported) and math.isfinite(_mean_over_processes(grad_norm, world))):
                    raise PixelRNNError(_diverged_message(state, out, reported))
                optimizer.step()
                state.step += 1
                if average is not None:
                    average.update(model, state.step)
                state.batch_in_epoch = index + 1
                epoch_losses.append(reported)
                if rank == 0 and state.step % config.log_every == 0:
                    _writing(out, _append_metrics, out, {"kind": "step", "step": state.step, "epoch": state.epoch_number, "train_nll": reported, "lr": lr})
                if rank == 0 and state.step % config.save_every == 0:
                    _writing(out, _save_last, this, state)
                valid = None
                if rank == 0 and config.eval_every and state.step % config.eval_every == 0 and index + 1 < steps_per_epoch:
                    valid = _writing(out, _mid_epoch_score, this, state, valid_images)
                yield Progress(step=state.step, total_steps=total_steps, epoch=state.epoch_number, loss=reported, lr=lr,
                               valid=valid, best_valid_nll=state.best_valid_nll)  # fmt: skip
                if stop.requested(world) or state.step >= total_steps:
                    break
            state.train_seconds += time.perf_counter() - epoch_start
            if stop.requested(world):
                break
            if state.batch_in_epoch < steps_per_epoch:  # max_steps ended the run mid-epoch
                break
            seconds = time.perf_counter() - epoch_start
            state.epoch += 1
            state.batch_in_epoch = 0
            valid = None
            if rank == 0:
                images = len(train_images) - len(train_images) % batch_size
                valid = _writing(out, _end_of_epoch, this, state, valid_images, epoch_losses, seconds, images)
            yield Progress(step=state.step, total_steps=total_steps, epoch=state.epoch, loss=epoch_losses[-1], lr=lr,
                           valid=valid, best_valid_nll=state.best_valid_nll)  # fmt: skip
    except GeneratorExit:  # the caller stopped (the app's Stop button): keep what was learned
        if rank == 0:
            _writing(out, _save_last, this, state)
        raise
    finally:
        stop.restore()
    if rank == 0:
        _writing(out, _save_last, this, state)
        if stop.was_requested:
            return
        if state.best_metrics is None:  # stopped by max_steps before any evaluation
            valid = _writing(out, _mid_epoch_score, this, state, valid_images)
            yield Progress(step=state.step, total_steps=total_steps, epoch=state.epoch_number, loss=reported, lr=lr,
                           valid=valid, best_valid_nll=state.best_valid_nll)  # fmt: skip
        _writing(out, loss_curve, _read_metrics(out), out / "loss.png")  # also for a run that ended inside its first epoch
        if config.test and splits.test is not None:
            _writing(out, _report_test, this, state, splits)
    if world > 1:
        dist.barrier()


def _end_of_epoch(this: _Run, state: RunState, valid_images, epoch_losses, seconds, images) -> dict:
    """Score the epoch's model; keep it if it is the best so far; log, plot and save last/."""
    valid = evaluate(this.scored, valid_images, this.config.eval_batch_size, progress=this.show_scoring)
    if valid["nll_nats"] < state.best_valid_nll:
        state.best_valid_nll = valid["nll_nats"]
        _save_best(this, state, valid)
    _append_metrics(this.out, {
        "kind": "epoch", "step": state.step, "epoch": state.epoch,
        "train_nll": sum(epoch_losses) / len(epoch_losses), "valid_nll": valid["nll_nats"],
        "valid_bits_per_dim": valid["bits_per_dim"], "seconds": seconds, "images_per_second": images / seconds,
    })  # fmt: skip
    loss_curve(_read_metrics(this.out), this.out / "loss.png")
    _save_last(this, state)
    return valid


def _mid_epoch_score(this: _Run, state: RunState, valid_images) -> dict:
    """Score the model at `eval_every` steps inside an epoch; keep it if it is the best so far; log and save last/."""
    valid = evaluate(this.scored, valid_images, this.config.eval_batch_size, progress=this.show_scoring)
    if valid["nll_nats"] < state.best_valid_nll:
        state.best_valid_nll = valid["nll_nats"]
        _save_best(this, state, valid)
    _append_metrics(this.out, {"kind": "eval", "step": state.step, "epoch": state.epoch_number,
                               "valid_nll": valid["nll_nats"], "valid_bits_per_dim": valid["bits_per_dim"]})  # fmt: skip
    _save_last(this, state)
    return valid


def _save_best(this: _Run, state: RunState, valid: dict):
    state.best_metrics = {
        "valid_nll_nats": round(valid["nll_nats"], 3), "valid_bits_per_dim": round(valid["bits_per_dim"], 5),
        "epoch": state.epoch, "step": state.step,
    }  # fmt: skip
    checkpoint.save(this.scored, this.out, metrics=state.best_metrics, data=this.data_name, command=this.config.command or None)


def _report_test(this: _Run, state: RunState, splits):
    """Score the best checkpoint on the test split, once, and put the figures in its card."""
    best = PixelRNN.from_pretrained(this.out)
    test = evaluate(best, splits.test, this.config.eval_batch_size, progress=this.show_scoring)
    metrics = {**(state.best_metrics or {}), "test_nll_nats": round(test["nll_nats"], 3),
               "test_bits_per_dim": round(test["bits_per_dim"], 5)}  # fmt: skip
    checkpoint.save(best, this.out, metrics=metrics, data=splits.name, command=this.config.command or None)
    _append_metrics(this.out, {"kind": "test", **test})
    return test


# -- the run folder -----------------------------------------------------------------------------------
SETTINGS_NAME = "train.json"
# Everything a run writes into its folder; starting over removes these and nothing else.
RUN_FILES = (checkpoint.WEIGHTS_NAME, checkpoint.CONFIG_NAME, "README.md", "metrics.jsonl", "loss.png", SETTINGS_NAME)
RUN_FOLDERS = ("last", "last.new", "last.old")
AVERAGE_NAME = "average.safetensors"  # in last/: the weight average of a run with --ema


def _check_new_run_folder(out: Path, overwrite: bool) -> None:
    """A new run goes into a new or empty folder, or over a pixelrnn run when asked to (or when it saved nothing)."""
    if out.exists() and not out.is_dir():
        raise PixelRNNError(f"--out {out} is a file: give a folder for the run")
    if not out.exists() or not any(out.iterdir()):
        return
    if not _is_run_folder(out):
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


def _is_run_folder(out: Path) -> bool:
    try:
        settings = json.loads((out / SETTINGS_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(settings, dict) and {"data", "out", "epochs"} <= set(settings)


def _start_fresh(out: Path, config: TrainConfig):
    """Remove what an earlier run wrote here (only its own files), then record this run's settings."""
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    _record_settings(out, config)


def _record_settings(out: Path, config: TrainConfig):
    (out / SETTINGS_NAME).write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")


def _writing(out: Path, write, *args):
    """Call `write(*args)`; a failed write (a full disk, a read-only folder) becomes one clear message."""
    from safetensors import SafetensorError

    try:
        return write(*args)
    except (OSError, SafetensorError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        where = getattr(error, "filename", None) or out
        kept = f"the last complete save is kept in {out / 'last'}" if (out / "last" / "state.json").exists() else "nothing was saved yet"
        raise PixelRNNError(f"cannot write {where}: {reason}; {kept}. Free some space or choose another --out") from None


def _save_last(this: _Run, state: RunState):
    """Write last/ whole: into a fresh folder, then swap it in (a crash leaves the old one or the new one)."""
    out = this.out
    fresh, last, old = out / "last.new", out / "last", out / "last.old"
    shutil.rmtree(fresh, ignore_errors=True)
    checkpoint.save(this.model, fresh, command=this.config.command or None)
    tensors, groups = _flatten_optimizer(this.optimizer.state_dict())
    tensors["rng.torch"] = torch.get_rng_state()
    checkpoint.write_tensors(tensors, fresh / "optimizer.safetensors")
    if this.average is not None:
        checkpoint.write_tensors(this.average.state_dict(), fresh / AVERAGE_NAME)
    saved = {**state.to_json(), "param_groups": groups, "config": dataclasses.asdict(this.config)}
    (fresh / "state.json").write_text(json.dumps(saved, indent=2))
    shutil.rmtree(old, ignore_errors=True)
    if last.exists():
        last.rename(old)
    fresh.rename(last)
    shutil.rmtree(old, ignore_errors=True)


def _load_last(out: Path, model: PixelRNN, optimizer, average: WeightAverage | None = None) -> RunState:
    """Read last/ whole and check it before anything is changed; a damaged file is named, never repaired."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

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
        saved_model = PixelRNN.from_pretrained(last)
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


def _append_metrics(out: Path, record: dict):
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")


def _read_metrics(out: Path) -> list:
    path = out / "metrics.jsonl"
    return _parse_metrics(path.read_text(encoding="utf-8", errors="replace").splitlines()) if path.exists() else []


def _parse_metrics(lines) -> list:
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:  # a line torn by a killed run
            continue
    return [record for record in records if isinstance(record, dict)]


def _forget_metrics_after(out: Path, state: RunState):
    """On resume: drop what a killed run logged after its last save, since those steps are trained again."""
    path = out / "metrics.jsonl"
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = [r for r in _parse_metrics(lines) if not ((r.get("kind") == "step" and r.get("step", 0) > state.step)
                                                     or (r.get("kind") == "epoch" and r.get("epoch", 0) > state.epoch))]  # fmt: skip
    if len(kept) == len(lines):
        return
    partial = path.with_name("metrics.jsonl.new")
    partial.write_text("".join(json.dumps(record) + "\n" for record in kept), encoding="utf-8")
    os.replace(partial, path)


def _diverged_message(state: RunState, out, value) -> str:
    what = f"the loss is {value}" if not math.isfinite(value) else "the gradients are not finite"
    kept = (
        f"the last good checkpoint is kept in {out / 'last'}; lower --lr or --grad-clip and continue with --resume"
        if (out / "last" / "state.json").exists()
        else "no checkpoint had been saved yet; lower --lr or --grad-clip and start again"
    )
    return f"training stopped at step {state.step + 1}: {what} (not finite); {kept}"


# -- schedule, processes, signals --------------------------------------------------------------------
def warmup_steps(config: TrainConfig, total: int) -> int:
    """The warm-up actually used: config.warmup_steps, but never more than a tenth of the run."""
    return min(config.warmup_steps, total // 10)


def _learning_rate(config: TrainConfig, step: int, total: int) -> float:
    warmup = warmup_steps(config, total)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def _init_distributed():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return dist.get_rank(), dist.get_world_size()


def _mean_over_processes(value: torch.Tensor, world: int) -> float:
    if world > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= world
    return value.item()


class _StopFlag:
    """SIGINT/SIGTERM ask the loop to save and stop at the next step (handlers only work in the main thread)."""

    def __init__(self):
        self.was_requested = False
        self._previous = {}
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread (the app trains in a worker)
            self._previous = {}

    def _handle(self, signum, frame):
        self.was_requested = True

    def requested(self, world: int) -> bool:
        if world > 1:
            flag = torch.tensor([1.0 if self.was_requested else 0.0])
            dist.all_reduce(flag)
            self.was_requested = flag.item() > 0
        return self.was_requested

    def restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
