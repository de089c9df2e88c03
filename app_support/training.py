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

from . import limits, scratch
from .errors import log, scrub
from .models import CHECKPOINT_FILES
from .text import plain, url_part

MAX_FILES = limits.MAX_TRAIN_FILES
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
    started: bool = True  # False for the first update, sent while the data is read


@dataclass
class _Run:
    run_id: str
    folder: Path
    stop: threading.Event = field(default_factory=threading.Event)
    active: bool = True  # the handler still holds its generator (which writes last/ when closed)
    ended: bool = False  # the session is gone: delete the folder as soon as nothing writes to it
    used_at: float = field(default_factory=time.monotonic)
    previous: "_Run | None" = None  # the session's run before this one, until this one has read its data


class TrainingRuns:
    """One training folder per session (a new run replaces the old one) and its Stop button."""

    def __init__(self, on_forget=lambda run_id: None):
        self.on_forget = on_forget
        self.root = scratch.folder("runs")  # and the folders a killed app left are removed
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def train(self, session: str, files, data: str, steps: int, settings: dict, max_seconds: float):
        """Read the data, then train in this session's folder; yields TrainingUpdate, the last with the checkpoint.

        `settings`: the Train tab's model options (model_config makes them the library's keywords).
        """
        if data == "uploads" and not files:
            raise pixelrnn.PixelRNNError("upload one or a few images to train on, or choose a bundled data set")
        if data == "uploads" and len(files) > MAX_FILES:
            raise pixelrnn.PixelRNNError(f"upload at most {MAX_FILES} images")
        model_config = model_settings(settings)
        pixelrnn.PixelRNN.check_config(model_config)  # a bad combination of options fails here, before the data is read
        started = time.monotonic()  # reading the images counts against the run's time too
        current = self._start(session)  # before the first update: a Stop or a closed page reaches this run at once
        try:
            yield TrainingUpdate([], "Reading the data and building the model...", started=False)
            splits = load_splits([str(f) for f in files] if data == "uploads" else data, model_config, copies=256)
        except BaseException:
            self._abandon(session, current)  # a bad upload keeps the model in use: the previous run stays
            raise
        self._retire_previous(current)
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
        if current is not None:
            self._end(current)

    def _end(self, current: "_Run") -> None:
        with self._lock:
            current.ended = True
            current.stop.set()
            deletable = not current.active  # else the handler deletes it once its generator has closed
            previous, current.previous = current.previous, None
        self.on_forget(current.run_id)
        if deletable:
            shutil.rmtree(current.folder, ignore_errors=True)
        if previous is not None:  # the page closed while the new run read its data
            self._end(previous)

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
        """A new run for the session, in place at once; its previous run is ended when the new one has its data."""
        self.sweep()
        run_id = secrets.token_hex(8)
        current = _Run(run_id, self.root / run_id)
        with self._lock:
            current.previous = self._runs.get(session)
            self._runs[session] = current
        return current

    def _retire_previous(self, current: _Run) -> None:
        with self._lock:
            previous, current.previous = current.previous, None
        if previous is not None:
            self._end(previous)

    def _abandon(self, session: str, current: _Run) -> None:
        """A run that never started (its data could not be read): the session's previous run is its run again."""
        with self._lock:
            if self._runs.get(session) is current:
                if current.previous is not None:
                    self._runs[session] = current.previous
                else:
                    del self._runs[session]
            current.previous, current.active = None, False
        shutil.rmtree(current.folder, ignore_errors=True)

    def _release(self, current: _Run) -> None:
        with self._lock:
            current.active, current.used_at = False, time.monotonic()
            deletable = current.ended
        if deletable:
            shutil.rmtree(current.folder, ignore_errors=True)


def model_settings(settings: dict) -> dict:
    """The Train tab's model options as the library's keywords: a square image, the row head as wide as the RNN."""
    config = {name: int(value) if name in ("height", "hidden_size", "num_layers", "window") else value for name, value in settings.items()}
    return dict(config, width=config["height"], head_size=config["hidden_size"])


def push(folder: Path, repo_id, private: bool, token) -> str:
    """Push a trained checkpoint with the visitor's token, used for this push only; the page's line about it."""
    from pixelrnn import publish

    repo_id = (repo_id or "").strip() if isinstance(repo_id, str) else ""
    limits.check_repo_id(repo_id, loading=False)
    token = limits.check_token(token)
    try:
        publish.push(folder, repo_id, private=bool(private), token=token)
    except Exception as error:  # noqa: BLE001 - the message, never the token, goes to the page and the log
        message = scrub(str(error), token)
        log.warning("push to %s failed: %s: %s", repo_id, type(error).__name__, message)
        raise pixelrnn.PixelRNNError(f"Pushing to the Hub failed: {message}") from None
    return f"Pushed to [{plain(repo_id)}](https://huggingface.co/{url_part(repo_id, '/')})."


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
