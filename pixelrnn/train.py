"""The training loop, written out: learning rate, forward/backward, clip, step, log; evaluate and keep the best.

`run` is a generator that yields a `Progress` after every optimizer step, so the CLI (tqdm) and the app
(live plot, stop button) share it. What it writes, and how nothing is lost, is run_folder.py's: the best
checkpoint, last/ for --resume, metrics.jsonl, loss.png and train.json. SIGINT/SIGTERM and closing the
generator save last/ before stopping; a NaN/infinite loss stops the run and keeps the last good checkpoint.
Under `torchrun`, the same code runs DistributedDataParallel (nccl on GPUs, gloo on CPU); the global batch
is split across processes and only rank 0 writes files.
"""
import contextlib
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from . import distributions
from .datasets import AUGMENTS, NAMED, load_splits
from .devices import device_problem, pick_device
from .errors import PixelRNNError
from .averaging import WeightAverage
from .evaluate import evaluate
from .model import PixelRNN
from .run_folder import RunFolder, RunState
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
    init: str = _setting("", "start from the weights of this checkpoint (a folder or Hub repo id) with the same model options: "
                             "a new optimizer and schedule (fine-tuning); recorded in train.json and the card's command")
    overwrite: bool = _setting(False, "start over in --out although it holds a pixelrnn run (deletes that run's checkpoint, last/ and metrics)")
    labels: bool = _setting(False, "train a class-conditional model on the data's labels (the number of classes and their names come "
                                   "from the data: mnist, cifar10, digits, a folder of class subfolders, a Hub data set with a class label)")
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
        for name in ("compile", "resume", "overwrite", "labels", "test"):
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


def run(config: TrainConfig, model_config: dict, splits=None, show_scoring: bool = False):
    """Train; yields Progress per step. `splits` (datasets.Splits) overrides config.data; `show_scoring` shows
    a progress bar on stderr while the validation and test splits are scored (the CLI's)."""
    config.validate()
    rank, world = _init_distributed()
    out = Path(config.out)
    if not config.resume and rank == 0:
        RunFolder(out, None, None, config).check_new(config.overwrite)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    if splits is None:
        splits = load_splits(config.data, PixelRNN.check_config(model_config), folder=config.data_dir, copies=config.copies,
                             augment=config.augment, seed=config.seed, labels=config.labels)  # fmt: skip
    model_config = _with_classes(model_config, splits, config)
    model = PixelRNN(**model_config).to(device)
    if config.init and not config.resume:  # on --resume the weights come from last/
        _start_from(model, config.init)
    if config.labels and not config.resume:
        model.set_class_counts(splits.class_counts())
    train_labels, valid_labels = (splits.train_labels, splits.valid_labels) if config.labels else (None, None)
    train_images = splits.train
    valid_images = splits.valid[: config.max_valid] if config.max_valid else splits.valid
    valid_labels = valid_labels[: len(valid_images)] if valid_labels is not None else None
    if not len(train_images) or not len(valid_images):
        raise PixelRNNError(f"the data source {config.data!r} has no {'training' if not len(train_images) else 'validation'} images: "
                            "train on another source")  # fmt: skip
    if config.batch_size % world:
        raise PixelRNNError(f"batch size {config.batch_size} does not split evenly over {world} processes")
    batch_size = min(config.batch_size, len(train_images))
    steps_per_epoch = max(1, len(train_images) // batch_size)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps) if config.epochs else config.max_steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay)
    average = WeightAverage(model, config.ema) if config.ema else None
    folder = RunFolder(out, model, optimizer, config, splits.name, average)
    writes = folder.writing if rank == 0 else (lambda write, *args: None)  # only rank 0 writes files
    state = RunState()
    if config.resume:
        state = folder.load_last()
        writes(folder.forget_after, state)
        if state.step >= total_steps and state.best_metrics is not None:
            raise PixelRNNError(
                f"the run in {out} is finished ({state.step} of {total_steps} steps; its best checkpoint is in {out}): "
                "to train further, --resume with a larger --epochs or --max-steps; to start over, use --overwrite"
            )
        writes(folder.record_settings)  # a longer --epochs on resume: train.json says what runs now
    else:
        writes(folder.start_fresh)
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

    def score(record: dict) -> dict | None:
        return writes(_score_and_keep, folder, state, valid_images, valid_labels, record, show_scoring)

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
                labels = train_labels[chosen].to(device) if train_labels is not None else None
                views = draw_views(view_shift, len(x), config.seed, state.step, device)
                if views is not None:
                    x = shifted_views(x, views, view_shift)
                with autocast:
                    params = network(x, views, labels)
                nll = -distributions.log_prob(params.float(), model.to_tokens(x), values).sum(dim=(1, 2))  # (B,)
                loss = nll.mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
                reported = _mean_over_processes(loss.detach(), world)
                if not (math.isfinite(reported) and math.isfinite(_mean_over_processes(grad_norm, world))):
                    raise PixelRNNError(folder.diverged_message(state, reported))
                optimizer.step()
                state.step += 1
                if average is not None:
                    average.update(model, state.step)
                state.batch_in_epoch = index + 1
                epoch_losses.append(reported)
                if state.step % config.log_every == 0:
                    writes(folder.log, {"kind": "step", "step": state.step, "epoch": state.epoch_number, "train_nll": reported, "lr": lr})
                if state.step % config.save_every == 0:
                    writes(folder.save_last, state)
                valid = None
                if config.eval_every and state.step % config.eval_every == 0 and index + 1 < steps_per_epoch:
                    valid = score({"kind": "eval", "step": state.step, "epoch": state.epoch_number})
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
            images = len(train_images) - len(train_images) % batch_size
            valid = score({"kind": "epoch", "step": state.step, "epoch": state.epoch, "train_nll": sum(epoch_losses) / len(epoch_losses),
                           "seconds": seconds, "images_per_second": images / seconds})  # fmt: skip
            yield Progress(step=state.step, total_steps=total_steps, epoch=state.epoch, loss=epoch_losses[-1], lr=lr,
                           valid=valid, best_valid_nll=state.best_valid_nll)  # fmt: skip
    except GeneratorExit:  # the caller stopped (the app's Stop button): keep what was learned
        writes(folder.save_last, state)
        raise
    finally:
        stop.restore()
    if rank == 0:
        folder.writing(folder.save_last, state)
        if stop.was_requested:
            return
        if state.best_metrics is None:  # stopped by max_steps before any evaluation
            valid = score({"kind": "eval", "step": state.step, "epoch": state.epoch_number})
            yield Progress(step=state.step, total_steps=total_steps, epoch=state.epoch_number, loss=reported, lr=lr,
                           valid=valid, best_valid_nll=state.best_valid_nll)  # fmt: skip
        folder.writing(folder.plot)  # also for a run that ended inside its first epoch
        if config.test and splits.test is not None:
            folder.writing(_report_test, folder, state, splits.test, splits.test_labels if config.labels else None, show_scoring)
    if world > 1:
        dist.barrier()


def _with_classes(model_config: dict, splits, config: TrainConfig) -> dict:
    """The model options with the data's classes (train --labels), or a clear error where they do not fit."""
    classes = model_config.get("classes", 0)
    if not config.labels:
        if classes:
            raise PixelRNNError(f"a class-conditional model (classes={classes}) trains on labels: add --labels")
        return model_config
    names = list(splits.class_names)
    if classes and classes != len(names):
        raise PixelRNNError(f"the data has {len(names)} classes and the model options say classes={classes}: leave --classes out")
    given = list(model_config.get("class_names") or [])
    if given and len(given) != len(names):
        raise PixelRNNError(f"--class-names gives {len(given)} names for the data's {len(names)} classes")
    return {**model_config, "classes": len(names), "class_names": given or names}


def _start_from(model: PixelRNN, source: str) -> None:
    """Load a pretrained checkpoint's weights into `model`; its options must be the model's."""
    pretrained = PixelRNN.from_pretrained(source)
    changed = sorted(name for name in model.config if pretrained.config[name] != model.config[name])
    if changed:
        shown = ", ".join(f"{name} {pretrained.config[name]!r} there, {model.config[name]!r} here" for name in changed)
        raise PixelRNNError(f"--init {source}: its model options differ from this run's ({shown}); give the same options")
    model.load_state_dict(pretrained.state_dict())


def _score_and_keep(folder: RunFolder, state: RunState, valid_images, valid_labels, record: dict, show_scoring: bool) -> dict:
    """Score the model on the validation images; keep it if it is the best so far; log, plot and save last/.

    The one evaluation of a run: at the end of every epoch, every `eval_every` steps and at the end of a run
    that `max_steps` stopped before any.
    """
    # The NLL alone: the greedy reconstruction errors would cost 8-bit models more than the NLL does.
    valid = evaluate(folder.scored, valid_images, folder.config.eval_batch_size, error_images=0, progress=show_scoring, labels=valid_labels)
    if valid["nll_nats"] < state.best_valid_nll:
        folder.save_best(state, valid)
    folder.log({**record, "valid_nll": valid["nll_nats"], "valid_bits_per_dim": valid["bits_per_dim"]})
    folder.plot()
    folder.save_last(state)
    return valid


def _report_test(folder: RunFolder, state: RunState, test_images, test_labels, show_scoring: bool) -> dict:
    """Score the best checkpoint on the test split, once, and put the figures in its card."""
    best = PixelRNN.from_pretrained(folder.out)
    test = evaluate(best, test_images, folder.config.eval_batch_size, progress=show_scoring, labels=test_labels)
    folder.save_test(best, test, state)
    return test


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
