"""The training loop, written out: learning rate, forward/backward, clip, step, log; evaluate and keep the best.

`run` is a generator that yields a `Progress` after every optimizer step, so the CLI (tqdm) and the app
(live plot, stop button) share it. The output folder holds:

    out/                 the best checkpoint by validation NLL (model.safetensors, config.json, README.md)
    out/last/            the latest state for --resume: weights, optimizer.safetensors, state.json
    out/metrics.jsonl    one JSON line per epoch (and every `log_every` steps)
    out/loss.png         the loss curve
    out/train.json       this run's training settings

Nothing is lost: files are replaced atomically, SIGINT/SIGTERM and closing the generator save `last/`
before stopping, a NaN/infinite loss stops the run and keeps the last good checkpoint.
Under `torchrun`, the same code runs DistributedDataParallel (nccl on GPUs, gloo on CPU); the global batch
is split across processes and only rank 0 writes files.
"""
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
from .datasets import load_splits
from .errors import PixelRNNError
from .evaluate import evaluate
from .model import PixelRNN
from .plot import loss_curve


@dataclass
class TrainConfig:
    data: str = "binarized-mnist"
    data_dir: str | None = None  # default: $PIXELRNN_DATA or ../shared/data
    out: str = "runs/pixelrnn"
    epochs: int = 10
    max_steps: int = 0  # 0: epochs decide
    batch_size: int = 64  # global, across processes
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    save_every: int = 200  # steps between saves of last/ (and at every epoch end)
    log_every: int = 50
    eval_batch_size: int = 500
    max_valid: int = 0  # 0: the whole validation split
    copies: int = 512  # training views made from image files
    augment: str = "crops"
    device: str = "auto"
    compile: bool = False
    threads: int = 0
    resume: bool = False
    test: bool = False  # evaluate the best checkpoint on the test split at the end (once)
    command: str = ""  # the command line that reproduces this run, for the model card


@dataclass
class Progress:
    step: int
    total_steps: int
    epoch: int
    loss: float  # training NLL of the batch, nats per image
    lr: float
    valid: dict | None = None  # set after an evaluation
    best_valid_nll: float = math.inf
    model: PixelRNN | None = field(default=None, repr=False)


def run(config: TrainConfig, model_config: dict, splits=None):
    """Train; yields Progress per step. `splits` (datasets.Splits) overrides config.data."""
    rank, world = _init_distributed()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = _pick_device(config.device, rank if world > 1 else None)
    model = PixelRNN(**model_config).to(device)
    if splits is None:
        splits = load_splits(config.data, model.config, folder=config.data_dir, copies=config.copies, augment=config.augment, seed=config.seed)
    train_images = splits.train
    valid_images = splits.valid[: config.max_valid] if config.max_valid else splits.valid
    if config.batch_size % world:
        raise PixelRNNError(f"batch size {config.batch_size} does not split evenly over {world} processes")
    batch_size = min(config.batch_size, len(train_images))
    steps_per_epoch = max(1, len(train_images) // batch_size)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps) if config.epochs else config.max_steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay)
    out = Path(config.out)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_valid_nll": math.inf, "train_seconds": 0.0}
    if config.resume:
        state = _load_last(out, model, optimizer, model_config)
    elif rank == 0:
        _start_fresh(out, config)
    network = model
    if world > 1:
        network = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        network = torch.compile(network)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _nothing()
    stop = _StopFlag()
    per_rank = batch_size // world
    values = model.config["values"]
    model.train()
    try:
        while state["step"] < total_steps:
            order = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(config.seed * 100003 + state["epoch"]))
            epoch_start, epoch_losses = time.perf_counter(), []
            for index in range(state["batch_in_epoch"], steps_per_epoch):
                lr = _learning_rate(config, state["step"], total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                chosen = order[index * batch_size : (index + 1) * batch_size][rank * per_rank : (rank + 1) * per_rank]
                x = train_images[chosen].to(device, non_blocking=True)
                with autocast:
                    params = network(x)
                nll = -distributions.log_prob(params.float(), model.to_tokens(x), values).sum(dim=(1, 2))  # (B,)
                loss = nll.mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
                reported = _mean_over_processes(loss.detach(), world)
                if not (math.isfinite(reported) and math.isfinite(_mean_over_processes(grad_norm, world))):
                    raise PixelRNNError(_diverged_message(state, out, reported))
                optimizer.step()
                state["step"] += 1
                state["batch_in_epoch"] = index + 1
                epoch_losses.append(reported)
                if rank == 0 and state["step"] % config.log_every == 0:
                    _append_metrics(out, {"kind": "step", "step": state["step"], "epoch": state["epoch"], "train_nll": reported, "lr": lr})
                if rank == 0 and state["step"] % config.save_every == 0:
                    _save_last(out, model, optimizer, state, config)
                yield Progress(state["step"], total_steps, state["epoch"], reported, lr, None, state["best_valid_nll"], model)
                if stop.requested(world) or state["step"] >= total_steps:
                    break
            state["train_seconds"] += time.perf_counter() - epoch_start
            if stop.requested(world):
                break
            if state["batch_in_epoch"] < steps_per_epoch:  # max_steps ended the run mid-epoch
                break
            seconds = time.perf_counter() - epoch_start
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
            valid = _end_of_epoch(rank, out, model, optimizer, state, config, valid_images, splits.name, epoch_losses, seconds, len(train_images) - len(train_images) % batch_size)
            yield Progress(state["step"], total_steps, state["epoch"], epoch_losses[-1], lr, valid, state["best_valid_nll"], model)
    except GeneratorExit:  # the caller stopped (the app's Stop button): keep what was learned
        if rank == 0:
            _save_last(out, model, optimizer, state, config)
        raise
    finally:
        stop.restore()
    if rank == 0:
        _save_last(out, model, optimizer, state, config)
        if stop.was_requested:
            return
        if not (out / checkpoint.WEIGHTS_NAME).exists():  # stopped by max_steps before any evaluation
            _save_best(out, model, state, config, evaluate(model, valid_images, config.eval_batch_size), splits.name)
        if config.test and splits.test is not None:
            _report_test(out, state, splits, config)
    if world > 1:
        dist.barrier()


def _end_of_epoch(rank, out, model, optimizer, state, config, valid_images, data_name, epoch_losses, seconds, images):
    if rank != 0:
        return None
    valid = evaluate(model, valid_images, config.eval_batch_size)
    if valid["nll_nats"] < state["best_valid_nll"]:
        state["best_valid_nll"] = valid["nll_nats"]
        _save_best(out, model, state, config, valid, data_name)
    _append_metrics(out, {
        "kind": "epoch", "step": state["step"], "epoch": state["epoch"],
        "train_nll": sum(epoch_losses) / len(epoch_losses), "valid_nll": valid["nll_nats"],
        "valid_bits_per_dim": valid["bits_per_dim"], "seconds": seconds, "images_per_second": images / seconds,
    })  # fmt: skip
    loss_curve(_read_metrics(out), out / "loss.png")
    _save_last(out, model, optimizer, state, config)
    return valid


def _save_best(out, model, state, config, valid, data_name):
    state["best_metrics"] = {
        "valid_nll_nats": round(valid["nll_nats"], 3), "valid_bits_per_dim": round(valid["bits_per_dim"], 5),
        "epoch": state["epoch"], "step": state["step"],
    }  # fmt: skip
    checkpoint.save(model, out, metrics=state["best_metrics"], data=data_name, command=config.command or None)


def _report_test(out, state, splits, config):
    """Score the best checkpoint on the test split, once, and put the figures in its card."""
    best = PixelRNN.from_pretrained(out)
    test = evaluate(best, splits.test, config.eval_batch_size)
    metrics = {**state.get("best_metrics", {}), "test_nll_nats": round(test["nll_nats"], 3),
               "test_bits_per_dim": round(test["bits_per_dim"], 5)}  # fmt: skip
    checkpoint.save(best, out, metrics=metrics, data=splits.name, command=config.command or None)
    _append_metrics(out, {"kind": "test", **test})
    return test


# -- state on disk -----------------------------------------------------------------------------------
def _start_fresh(out: Path, config: TrainConfig):
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.jsonl", "loss.png", "train_result.json"):
        (out / stale).unlink(missing_ok=True)
    (out / "train.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")


def _save_last(out: Path, model, optimizer, state, config):
    """Write last/ whole: into a fresh folder, then swap it in (a crash leaves the old one or the new one)."""
    from safetensors.torch import save_file

    fresh, last, old = out / "last.new", out / "last", out / "last.old"
    shutil.rmtree(fresh, ignore_errors=True)
    checkpoint.save(model, fresh, command=config.command or None)
    tensors, groups = _flatten_optimizer(optimizer.state_dict())
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, str(fresh / "optimizer.safetensors"))
    (fresh / "state.json").write_text(json.dumps({**state, "param_groups": groups, "config": dataclasses.asdict(config)}, indent=2))
    shutil.rmtree(old, ignore_errors=True)
    if last.exists():
        last.rename(old)
    fresh.rename(last)
    shutil.rmtree(old, ignore_errors=True)


def _load_last(out: Path, model, optimizer, model_config) -> dict:
    from safetensors.torch import load_file

    last = out / "last"
    if not (last / "state.json").exists() and (out / "last.old" / "state.json").exists():
        last = out / "last.old"  # killed during the swap
    if not (last / "state.json").exists():
        raise PixelRNNError(f"nothing to resume in {out}: no last/state.json (start without --resume)")
    saved = PixelRNN.from_pretrained(last)
    if saved.config != model.config:
        changed = sorted(k for k in model.config if saved.config[k] != model.config[k])
        raise PixelRNNError(f"cannot resume: the model options differ from the saved run ({', '.join(changed)})")
    model.load_state_dict(saved.state_dict())
    state = json.loads((last / "state.json").read_text())
    tensors = load_file(str(last / "optimizer.safetensors"))
    torch.set_rng_state(tensors.pop("rng.torch"))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, state.pop("param_groups")))
    state.pop("config", None)
    return state


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
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _diverged_message(state, out, value) -> str:
    what = f"the loss is {value}" if not math.isfinite(value) else "the gradients are not finite"
    kept = (
        f"the last good checkpoint is kept in {out / 'last'}; lower --lr or --grad-clip and continue with --resume"
        if (out / "last" / "state.json").exists()
        else "no checkpoint had been saved yet; lower --lr or --grad-clip and start again"
    )
    return f"training stopped at step {state['step'] + 1}: {what} (not finite); {kept}"


# -- schedule, devices, processes, signals --------------------------------------------------------------
def _learning_rate(config: TrainConfig, step: int, total: int) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def _pick_device(name: str, local_rank) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) if local_rank is not None else 0)
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
