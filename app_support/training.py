"""Training runs of the Train tab: one bounded run per session, in a folder that is gone when the session is.

`TrainingRuns.train(session, ...)` is the one call the page makes; it yields `TrainingUpdate`s while the run
goes on and a last one with the trained checkpoint.
"""
import math
import os
import secrets
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pixelrnn
from pixelrnn.datasets import load_splits
from pixelrnn.train import TrainConfig, run

from . import scratch
from .models import CHECKPOINT_FILES

MAX_FILES = 8
# Runs kept at once, and how long after its last use: a client that never closes its page (an API client has no
# heartbeat to end its session) cannot keep its folder longer, nor fill the disk with them.
MAX_KEPT_RUNS = int(os.environ.get("PIXELRNN_KEPT_RUNS", 8))
KEEP_SECONDS = float(os.environ.get("PIXELRNN_KEEP_RUN_SECONDS", 1800))


@dataclass
class TrainingUpdate:
    history: list  # (step, nll, "train" | "valid") records
    status: str
    checkpoint: Path | None = None  # set on the last update: the model to use
    run_id: str = ""


@dataclass
class _Run:
    run_id: str
    folder: Path
    stop: threading.Event = field(default_factory=threading.Event)
    active: bool = True  # the handler still holds its generator (which writes last/ when closed)
    ended: bool = False  # the session is gone: delete the folder as soon as nothing writes to it
    used_at: float = field(default_factory=time.monotonic)


class TrainingRuns:
    """One training folder per session (a new run replaces the old one) and its Stop button."""

    def __init__(self, on_forget=lambda run_id: None):
        self.on_forget = on_forget
        self.root = scratch.folder("runs")  # and the folders a killed app left are removed
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def train(self, session: str, files, data: str, steps: int, model_config: dict, max_seconds: float):
        """Read the data, then train in this session's folder; yields TrainingUpdate, the last with the checkpoint."""
        if data == "uploads" and not files:
            raise pixelrnn.PixelRNNError("upload one or a few images to train on, or choose a bundled data set")
        if data == "uploads" and len(files) > MAX_FILES:
            raise pixelrnn.PixelRNNError(f"upload at most {MAX_FILES} images")
        pixelrnn.PixelRNN.check_config(model_config)  # a bad combination of options fails here, before the data is read
        started = time.monotonic()  # reading the images counts against the run's time too
        # the data is read before the session's previous run is replaced: a bad upload keeps the model in use
        splits = load_splits([str(f) for f in files] if data == "uploads" else data, model_config, copies=256)
        current = self._start(session)
        config = TrainConfig(
            out=str(current.folder), epochs=0, max_steps=steps, batch_size=32, lr=3e-3, warmup_steps=max(1, steps // 10),
            save_every=10**9, log_every=10, eval_batch_size=256, max_valid=256, command="trained in the pixelrnn app",
        )  # fmt: skip
        history, progress = [], None
        training = run(config, model_config, splits=splits)
        try:
            deadline = started + max_seconds
            if time.monotonic() > deadline:
                raise pixelrnn.PixelRNNError(f"reading the images took over {max_seconds:.0f} s, the time of a whole run: upload smaller ones")
            for progress in training:
                history.append((progress.step, progress.loss, "train"))
                if progress.valid:
                    history.append((progress.step, progress.valid["nll_nats"], "valid"))
                yield TrainingUpdate(history, status(progress, time.monotonic() - started, max_seconds))
                if current.stop.is_set() or time.monotonic() > deadline:
                    break
        finally:
            training.close()  # saves last/: the model learned so far is kept
            self._release(current)
        yield TrainingUpdate(history, status(progress, time.monotonic() - started, max_seconds, finished=True),
                             self.checkpoint(session), current.run_id)  # fmt: skip

    def stop(self, session: str) -> bool:
        with self._lock:
            current = self._runs.get(session)
        if current is not None:
            current.stop.set()
        return current is not None

    def checkpoint(self, session: str) -> Path:
        """The session's trained checkpoint: the best by validation NLL, else the last state."""
        self.sweep()
        with self._lock:
            current = self._runs.get(session)
            if current is not None:
                current.used_at = time.monotonic()
        if current is None:
            raise pixelrnn.PixelRNNError("no model was trained in this session yet: train one first")
        for candidate in (current.folder, current.folder / "last"):
            if all((candidate / f).is_file() for f in CHECKPOINT_FILES):
                return candidate
        raise pixelrnn.PixelRNNError("the training run stopped before its first step: there is no model to keep")

    def end(self, session: str) -> None:
        """Forget a session's run and delete its files (a new run, or the page closed)."""
        with self._lock:
            current = self._runs.pop(session, None)
            if current is None:
                return
            current.ended = True
            current.stop.set()
            deletable = not current.active  # else the handler deletes it once its generator has closed
        self.on_forget(current.run_id)
        if deletable:
            shutil.rmtree(current.folder, ignore_errors=True)

    def download(self, session: str) -> Path:
        """The session's checkpoint as a zip, in its own run folder: it goes with the session."""
        folder = self.checkpoint(session)
        with self._lock:
            target = self._runs[session].folder / "download" / "pixelrnn-model.zip"
        target.parent.mkdir(exist_ok=True)
        return zip_checkpoint(folder, target)

    def sweep(self) -> None:
        """End the runs unused for KEEP_SECONDS, and the oldest beyond MAX_KEPT_RUNS."""
        now = time.monotonic()
        with self._lock:
            by_age = sorted(self._runs.items(), key=lambda item: item[1].used_at)
        stale = [s for s, r in by_age if now - r.used_at > KEEP_SECONDS and not r.active]
        idle = [s for s, r in by_age if not r.active]  # a run in progress is never cut short
        stale += [s for s in idle[: max(0, len(by_age) - MAX_KEPT_RUNS)] if s not in stale]
        for session in stale:
            self.end(session)

    def _start(self, session: str) -> _Run:
        self.end(session)
        self.sweep()
        run_id = secrets.token_hex(8)
        current = _Run(run_id, self.root / run_id)
        with self._lock:
            self._runs[session] = current
        return current

    def _release(self, current: _Run) -> None:
        with self._lock:
            current.active, current.used_at = False, time.monotonic()
            deletable = current.ended
        if deletable:
            shutil.rmtree(current.folder, ignore_errors=True)


def status(progress, elapsed: float, max_seconds: float, finished: bool = False) -> str:
    """A line about a training run: where it is and how long it has left, or how it ended."""
    if progress is None:
        return "Stopped before the first step."
    figures = f"training NLL {progress.loss:.2f} nats per image"
    if progress.best_valid_nll < math.inf:
        figures += f", best validation NLL {progress.best_valid_nll:.2f}"
    if not finished:
        left = min(max_seconds - elapsed, elapsed / progress.step * (progress.total_steps - progress.step))
        return (f"Step {progress.step} of {progress.total_steps}, epoch {progress.epoch}: {figures}. "
                f"{elapsed:.0f} s so far, about {max(0.0, left):.0f} s left.")  # fmt: skip
    ending = f"Done: {progress.step} steps" if progress.step >= progress.total_steps else f"Stopped after {progress.step} of {progress.total_steps} steps"
    kept = "the checkpoint kept (the best by validation NLL; the model line says its step)" if progress.best_valid_nll < math.inf else "the model as it is now"
    return (f"{ending} in {elapsed:.0f} s, reading the data included ({figures}). {kept[0].upper() + kept[1:]} is in use "
            "in the other tabs: download it below or push it to the Hub.")  # fmt: skip


def zip_checkpoint(folder: Path, target: Path) -> Path:
    """The checkpoint files (safetensors weights, config, model card) in one zip, for download."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in (*CHECKPOINT_FILES, "README.md"):
            if (folder / name).is_file():
                archive.write(folder / name, f"pixelrnn-model/{name}")
    return target
