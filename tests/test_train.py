import dataclasses
import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pixelrnn
from pixelrnn.datasets import load_splits
from pixelrnn.devices import pick_device
from pixelrnn.evaluate import evaluate
from pixelrnn.train import TrainConfig, run, warmup_steps
from conftest import SHARED_DATA, error_of, free_port, shared_data

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(height=8, width=8, hidden_size=16, head_size=16)
CLI_TINY = ["--height", "8", "--width", "8", "--hidden-size", "16", "--head-size", "16"]


def _train(out, **overrides):
    settings = dict(data="digits", out=str(out), epochs=2, batch_size=32, warmup_steps=5, save_every=10, log_every=5, threads=1)
    settings.update(overrides)
    progress = list(run(TrainConfig(**settings), TINY))
    return progress


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


def _same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_training_writes_a_loadable_best_checkpoint_metrics_and_curve(tmp_path):
    progress = _train(tmp_path, epochs=3, test=True)
    evaluations = [p.valid for p in progress if p.valid]
    assert len(evaluations) == 3
    assert evaluations[-1]["nll_nats"] < evaluations[0]["nll_nats"]
    best = pixelrnn.PixelRNN.from_pretrained(tmp_path)
    assert best.config["height"] == 8
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2, 3]
    test = [r for r in records if r["kind"] == "test"][0]
    assert 0 < test["nll_nats"] < 64 * math.log(2)  # better than a coin per pixel
    assert Image.open(tmp_path / "loss.png").size == (640, 400)
    card = (tmp_path / "README.md").read_text()
    assert "test_nll_nats" in card and "- sklearn-digits" in card
    assert json.loads((tmp_path / "train.json").read_text())["data"] == "digits"


def test_same_seed_same_result(tmp_path):
    _train(tmp_path / "a", epochs=1)
    _train(tmp_path / "b", epochs=1)
    _same_weights(_weights(tmp_path / "a" / "last"), _weights(tmp_path / "b" / "last"))


@pytest.mark.parametrize("view_shift", [0, 1])
def test_stopping_mid_epoch_and_resuming_matches_an_uninterrupted_run(tmp_path, view_shift):
    model = {**TINY, "view_shift": view_shift}
    settings = dict(data="digits", out=str(tmp_path / "split"), epochs=2, batch_size=32, warmup_steps=5, save_every=10, log_every=5, threads=1)
    list(run(TrainConfig(**{**settings, "out": str(tmp_path / "whole")}), model))
    steps = run(TrainConfig(**settings), model)
    for progress in steps:
        if progress.step == 23:  # mid-epoch (46 steps per epoch)
            break
    steps.close()  # what the app's Stop button does: saves last/
    state = json.loads((tmp_path / "split" / "last" / "state.json").read_text())
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (23, 0, 23)
    list(run(TrainConfig(**settings, resume=True), model))
    _same_weights(_weights(tmp_path / "whole" / "last"), _weights(tmp_path / "split" / "last"))
    _same_weights(_weights(tmp_path / "whole"), _weights(tmp_path / "split"))



def test_with_view_shift_half_of_each_batch_is_shifted_and_the_model_learns_every_view(tmp_path, monkeypatch):
    import pixelrnn.train as training

    drawn = []
    original = training.shifted_views
    monkeypatch.setattr(training, "shifted_views", lambda x, views, shift: drawn.append(views) or original(x, views, shift))
    model = {**TINY, "view_shift": 1}
    torch.manual_seed(0)
    initial = pixelrnn.PixelRNN(**model).views.weight.detach().clone()
    list(run(TrainConfig(data="digits", out=str(tmp_path), epochs=1, batch_size=32, warmup_steps=5, threads=1), model))
    views = torch.cat(drawn)
    assert len(drawn) == 1497 // 32 and views.min() == 0 and views.max() == 8
    assert 0.4 < (views == 0).float().mean() < 0.6
    trained = pixelrnn.PixelRNN.from_pretrained(tmp_path).views.weight
    assert trained.shape == initial.shape and all(not torch.equal(trained[v], initial[v]) for v in range(9))

def test_a_killed_run_resumed_logs_each_step_once(tmp_path):
    """What a kill leaves on disk is a copy of the folder taken mid-run: lines logged after the last save, and
    maybe one torn line. The resumed run's metrics.jsonl reads like the uninterrupted run's."""
    _train(tmp_path / "whole")
    settings = dict(data="digits", out=str(tmp_path / "running"), epochs=2, batch_size=32, warmup_steps=5, save_every=10, log_every=5, threads=1)
    steps = run(TrainConfig(**settings), TINY)
    for progress in steps:
        if progress.step == 27:  # saved at 20, logged at 25
            break
    shutil.copytree(tmp_path / "running", tmp_path / "killed")
    steps.close()
    with open(tmp_path / "killed" / "metrics.jsonl", "a") as file:
        file.write('{"kind": "step", "ste')
    list(run(TrainConfig(**{**settings, "out": str(tmp_path / "killed")}, resume=True), TINY))

    def logged(folder):
        records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        return [(r["kind"], r.get("step"), r.get("epoch")) for r in records]

    assert logged(tmp_path / "killed") == logged(tmp_path / "whole")
    assert [s for kind, s, _ in logged(tmp_path / "whole") if kind == "step"] == list(range(5, 93, 5))

def _cli(out, *extra):
    command = [sys.executable, "-m", "pixelrnn", "train", "--data", "digits", "--out", str(out), *CLI_TINY,
               "--epochs", "4", "--batch-size", "16", "--warmup-steps", "5", "--save-every", "7", "--threads", "1", *extra]  # fmt: skip
    return command


def _start_and_wait_for_a_save(out):
    process = subprocess.Popen(_cli(out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / "last" / "state.json").exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return process


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_killed_run_resumes_from_its_last_checkpoint(tmp_path, how):
    whole = subprocess.run(_cli(tmp_path / "whole"), cwd=ROOT, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    process = _start_and_wait_for_a_save(tmp_path / "split")
    process.send_signal(getattr(signal, how))
    _, stderr = process.communicate(timeout=60)
    state = json.loads((tmp_path / "split" / "last" / "state.json").read_text())
    total = 4 * (1497 // 16)
    assert 0 < state["step"] < total
    if how == "SIGTERM":  # saved on the way out, with a message that says how to continue
        assert process.returncode == 130
        assert b"--resume" in stderr
    resumed = subprocess.run(_cli(tmp_path / "split", "--resume"), cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    _same_weights(_weights(tmp_path / "whole" / "last"), _weights(tmp_path / "split" / "last"))


def test_a_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    config = pixelrnn.PixelRNN(**TINY).config
    splits = load_splits("digits", config)
    splits.train[100, 0, 2, 2] = float("nan")  # one corrupt value, in whichever batch the shuffle puts it
    settings = TrainConfig(data="digits", out=str(tmp_path), epochs=1, batch_size=32, warmup_steps=1, save_every=2, threads=1)
    steps = []
    with pytest.raises(pixelrnn.PixelRNNError, match=r"the loss is nan \(not finite\); the last good checkpoint") as info:
        for progress in run(settings, TINY, splits=splits):
            steps.append(progress.step)
    failed_at = int(str(info.value).split("step ")[1].split(":")[0])
    assert steps == list(range(1, failed_at))
    assert json.loads((tmp_path / "last" / "state.json").read_text())["step"] == (failed_at - 1) // 2 * 2
    kept = pixelrnn.PixelRNN.from_pretrained(tmp_path / "last")
    assert all(torch.isfinite(p).all() for p in kept.parameters())


def test_resume_without_a_run_or_with_other_options_is_refused(tmp_path):
    with pytest.raises(pixelrnn.PixelRNNError, match="nothing to resume"):
        list(run(TrainConfig(data="digits", out=str(tmp_path), resume=True), TINY))
    _train(tmp_path, epochs=1)
    with pytest.raises(pixelrnn.PixelRNNError, match=r"model options differ from the saved run \(hidden_size"):
        list(run(TrainConfig(data="digits", out=str(tmp_path), resume=True), {**TINY, "hidden_size": 32}))


def test_a_resumed_run_records_the_settings_it_runs_with(tmp_path):
    _train(tmp_path, epochs=1)
    assert json.loads((tmp_path / "train.json").read_text())["epochs"] == 1
    _train(tmp_path, epochs=2, resume=True)
    settings = json.loads((tmp_path / "train.json").read_text())
    assert (settings["epochs"], settings["resume"]) == (2, True)
    with pytest.raises(pixelrnn.PixelRNNError, match="is finished"):
        _train(tmp_path, epochs=2, max_valid=7, resume=True)
    assert json.loads((tmp_path / "train.json").read_text())["max_valid"] == 0  # a refused resume records nothing


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    common = ["--data", "digits", *CLI_TINY, "--no-batch-norm", "--max-steps", "12", "--batch-size", "32",
              "--warmup-steps", "3", "--threads", "1", "--epochs", "0"]  # fmt: skip
    single = subprocess.run([sys.executable, "-m", "pixelrnn", "train", "--out", str(tmp_path / "one"), *common],
                            cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    double = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         "-m", "pixelrnn", "train", "--out", str(tmp_path / "two"), *common],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert double.returncode == 0, double.stderr[-3000:]
    one, two = _weights(tmp_path / "one" / "last"), _weights(tmp_path / "two" / "last")
    start = pixelrnn.PixelRNN(**TINY, batch_norm=False).state_dict()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5)
    assert any(not torch.equal(one[name], start[name]) for name in one)  # training did move the weights


def test_cli_sample_and_eval(tmp_path):
    _train(tmp_path / "run", epochs=1)
    sample = subprocess.run([sys.executable, "-m", "pixelrnn", "sample", str(tmp_path / "run"), "-n", "4", "--scale", "2",
                             "--out", str(tmp_path / "s.png")], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert sample.returncode == 0, sample.stderr
    assert Image.open(tmp_path / "s.png").size == (2 * (2 * 8 + 3), 2 * (2 * 8 + 3))
    result = subprocess.run([sys.executable, "-m", "pixelrnn", "eval", str(tmp_path / "run"), "--data", "digits", "--split", "test",
                             "--json", str(tmp_path / "e.json")], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "e.json").read_text())
    assert figures["images"] == 150 and figures["bits_per_dim"] == pytest.approx(figures["nll_nats"] / (64 * math.log(2)))
    assert "nll_nats" in result.stdout
    missing = subprocess.run([sys.executable, "-m", "pixelrnn", "eval", str(tmp_path / "nothing")], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr


# -- data sources ---------------------------------------------------------------------------------

def test_image_sources(tmp_path):
    config = pixelrnn.PixelRNN(height=16, width=16, channels=3, values="8bit", hidden_size=8, head_size=8).config
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(tmp_path / f"p{i}.png")
    single = load_splits(tmp_path / "p0.png", config, copies=10)
    assert single.train.shape == (10, 3, 16, 16) and single.valid.shape == (1, 3, 16, 16)
    folder = load_splits(tmp_path, config, copies=12)
    assert folder.train.shape == (12, 3, 16, 16) and folder.valid.shape == (3, 3, 16, 16)
    listed = load_splits([tmp_path / "p1.png", tmp_path / "p2.png"], config, copies=4, augment="none")
    assert listed.train.shape == (2, 3, 16, 16)
    assert listed.train.max() > 1  # 8-bit values kept


def test_mnist_sources_read_the_shared_data():
    folder = shared_data("binarized_mnist.npz").parent
    config = pixelrnn.PixelRNN().config
    splits = load_splits("binarized-mnist", config, folder=str(folder))
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (50000, 10000, 10000)
    assert set(splits.train[:100].unique().tolist()) == {0.0, 1.0}
    gray = load_splits("mnist", pixelrnn.PixelRNN(values="8bit").config, folder=str(folder))
    assert (len(gray.train), len(gray.valid), len(gray.test)) == (55000, 5000, 10000) and gray.train.max() == 255


@pytest.mark.parametrize(
    "source, config, words",
    [
        ("imagenet", {}, "unknown data source 'imagenet'"),
        ("binarized-mnist", {"height": 14}, "set --height 28 --width 28 --channels 1"),
        ("binarized-mnist", {"values": "8bit"}, "use values='binary'"),
    ],
)
def test_bad_data_sources_are_clear_errors(source, config, words):
    with pytest.raises(pixelrnn.PixelRNNError) as info:
        load_splits(source, pixelrnn.PixelRNN(**config).config, folder="/nonexistent")
    assert words in str(info.value)


def test_missing_data_folder_names_the_option(tmp_path):
    with pytest.raises(pixelrnn.PixelRNNError, match="point --data-dir"):
        load_splits("binarized-mnist", pixelrnn.PixelRNN().config, folder=str(tmp_path))


def test_hub_data_set_source_on_a_local_copy(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("test", 3)):
        (tmp_path / "copy" / split).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(tmp_path / "copy" / split / f"{i}.png")
    config = pixelrnn.PixelRNN(height=8, width=8, hidden_size=8, head_size=8).config
    splits = load_splits(f"hf:{tmp_path / 'copy'}", config)
    assert len(splits.train) + len(splits.valid) == 12 and len(splits.valid) == 1 and len(splits.test) == 3
    assert splits.train.shape[1:] == (1, 8, 8) and set(splits.train.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(pixelrnn.PixelRNNError, match="cannot load the Hub data set"):
        load_splits(f"hf:{tmp_path / 'nothing-here'}", config)


def test_photos_source_uses_real_bundled_photographs():
    pytest.importorskip("skimage")
    config = pixelrnn.PixelRNN(height=16, width=16, channels=3, values="8bit", hidden_size=8, head_size=8).config
    splits = load_splits("photos", config, copies=40)
    assert splits.train.shape[1:] == (3, 16, 16) and len(splits.train) >= 40 and len(splits.valid) == 64
    assert splits.train.std() > 20  # real, varied content


# -- the run folder: nothing of anyone's lost -----------------------------------------------------

FIXTURE = ROOT / "tests" / "fixtures" / "run_v1"  # written by the first trainer: stopped at step 60 of 92


def _tree(folder):
    """Every file under `folder` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def _settings(out, **overrides):
    settings = dict(data="digits", out=str(out), epochs=2, batch_size=32, warmup_steps=5, save_every=10, log_every=5, threads=1)
    return TrainConfig(**{**settings, **overrides})


def test_a_new_run_refuses_a_folder_it_did_not_write_and_touches_nothing(tmp_path):
    (tmp_path / "last").mkdir()
    (tmp_path / "last" / "notes.txt").write_text("mine")
    (tmp_path / "README.md").write_text("my project")
    (tmp_path / "config.json").write_text("{}")
    before = _tree(tmp_path)
    message = error_of(lambda: list(run(_settings(tmp_path, epochs=1), TINY)))
    assert "not empty and holds no pixelrnn training run" in message and "choose a new or empty --out" in message
    assert _tree(tmp_path) == before
    assert error_of(lambda: list(run(_settings(tmp_path, epochs=1, overwrite=True), TINY))) == message


def test_a_new_run_over_its_own_run_needs_resume_or_overwrite_and_keeps_other_files(tmp_path):
    list(run(_settings(tmp_path, epochs=0, max_steps=3), TINY))
    (tmp_path / "notes.txt").write_text("mine")
    before = _tree(tmp_path)
    message = error_of(lambda: list(run(_settings(tmp_path, epochs=0, max_steps=3), TINY)))
    assert "holds a training run already" in message and "--resume" in message and "--overwrite" in message
    assert _tree(tmp_path) == before
    list(run(_settings(tmp_path, epochs=0, max_steps=4, overwrite=True), TINY))
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / "last" / "state.json").read_text())["step"] == 4
    assert json.loads((tmp_path / "train.json").read_text())["max_steps"] == 4


def test_a_run_folder_that_saved_nothing_yet_can_be_started_again(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps(dataclasses.asdict(_settings(tmp_path))))
    list(run(_settings(tmp_path, epochs=0, max_steps=2), TINY))
    assert json.loads((tmp_path / "last" / "state.json").read_text())["step"] == 2


def _rewrite_in_the_first_format(run_folder):
    """Make a run folder written here look like one of the first trainer's: only the keys and files it wrote."""
    for name in ("config.json", "last/config.json"):
        old_keys = json.loads((FIXTURE / name).read_text()).keys()
        config = json.loads((run_folder / name).read_text())
        (run_folder / name).write_text(json.dumps({k: config[k] for k in old_keys}, indent=2))
    old_state = json.loads((FIXTURE / "last" / "state.json").read_text())
    state = json.loads((run_folder / "last" / "state.json").read_text())
    state = {k: state[k] for k in old_state}
    state["config"] = {k: state["config"][k] for k in old_state["config"]}
    (run_folder / "last" / "state.json").write_text(json.dumps(state, indent=2))
    old_settings = json.loads((FIXTURE / "train.json").read_text()).keys()
    settings = json.loads((run_folder / "train.json").read_text())
    (run_folder / "train.json").write_text(json.dumps({k: settings[k] for k in old_settings}, indent=2))
    old_files = {str(p.relative_to(FIXTURE)) for p in FIXTURE.rglob("*") if p.is_file()}
    for path in list(run_folder.rglob("*")):
        if path.is_file() and str(path.relative_to(run_folder)) not in old_files | {"loss.png", "samples.png"}:
            path.unlink()


def test_a_run_written_by_the_first_trainer_resumes_to_the_same_weights(tmp_path):
    # Both runs are made on this machine: weights computed on another CPU differ in the last bits.
    _train(tmp_path / "whole")
    steps = run(_settings(tmp_path / "old"), TINY)
    for progress in steps:
        if progress.step == 60:  # where the first trainer's fixture stopped, of 92
            break
    steps.close()
    _rewrite_in_the_first_format(tmp_path / "old")
    resumed = list(run(_settings(tmp_path / "old", resume=True), TINY))
    assert resumed[0].step == 61 and resumed[-1].step == 92
    _same_weights(_weights(tmp_path / "whole" / "last"), _weights(tmp_path / "old" / "last"))
    _same_weights(_weights(tmp_path / "whole"), _weights(tmp_path / "old"))
    state = json.loads((tmp_path / "old" / "last" / "state.json").read_text())
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (92, 2, 0)


def test_the_first_trainers_stored_run_folder_is_read_and_resumed(tmp_path):
    """The fixture was written on another machine: its files are read, its numbers compared only loosely."""
    shutil.copytree(FIXTURE, tmp_path / "old")
    resumed = list(run(_settings(tmp_path / "old", resume=True), TINY))
    assert resumed[0].step == 61 and resumed[-1].step == 92
    state = json.loads((tmp_path / "old" / "last" / "state.json").read_text())
    old_keys = json.loads((FIXTURE / "last" / "state.json").read_text()).keys()
    assert state.keys() == old_keys and (state["step"], state["epoch"], state["batch_in_epoch"]) == (92, 2, 0)
    assert all(torch.isfinite(w).all() for w in _weights(tmp_path / "old" / "last").values())
    first_epoch = json.loads((FIXTURE / "last" / "state.json").read_text())["best_valid_nll"]
    assert resumed[-1].valid["nll_nats"] < first_epoch  # it trained on from the stored weights, not from noise


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _drop_tensor(path, prefix):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    save_file({k: v for k, v in tensors.items() if not k.startswith(prefix)}, str(path))


def _replace_tensor(path, name, value):
    from safetensors.torch import load_file, save_file

    save_file({**load_file(str(path)), name: value}, str(path))


DAMAGES = {
    "truncated weights": (lambda last: _truncate(last / "model.safetensors"), "model.safetensors"),
    "truncated optimizer": (lambda last: _truncate(last / "optimizer.safetensors"), "optimizer.safetensors"),
    "no exp_avg": (lambda last: _drop_tensor(last / "optimizer.safetensors", "state.3.exp_avg"), "no AdamW moments"),
    "wrong moment shape": (lambda last: _replace_tensor(last / "optimizer.safetensors", "state.0.exp_avg", torch.zeros(3)), "exp_avg of parameter 0"),
    "bad random state": (lambda last: _replace_tensor(last / "optimizer.safetensors", "rng.torch", torch.zeros(3, dtype=torch.uint8)), "random number"),
    "state not JSON": (lambda last: _truncate(last / "state.json"), "state.json"),
    "state without step": (lambda last: (last / "state.json").write_text('{"epoch": 1}'), "state.json"),
    "state with a text step": (lambda last: (last / "state.json").write_text(
        (last / "state.json").read_text().replace('"step": 60', '"step": "60"')), "step is '60'"),
}  # fmt: skip


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_last_folder_is_named_and_nothing_is_changed(tmp_path, damage):
    shutil.copytree(FIXTURE, tmp_path / "run")
    spoil, words = DAMAGES[damage]
    spoil(tmp_path / "run" / "last")
    before = _tree(tmp_path / "run")
    message = error_of(lambda: list(run(_settings(tmp_path / "run", resume=True), TINY)))
    assert message.startswith(f"cannot resume: {tmp_path / 'run' / 'last'} is damaged (") and words in message
    assert f"so was the best checkpoint in {tmp_path / 'run'}" in message
    assert _tree(tmp_path / "run") == before  # the best checkpoint, and last/ as it was


def test_resuming_a_finished_run_says_it_is_finished(tmp_path):
    list(run(_settings(tmp_path, epochs=1), TINY))
    message = error_of(lambda: list(run(_settings(tmp_path, epochs=1, resume=True), TINY)))
    assert f"the run in {tmp_path} is finished (46 of 46 steps" in message and "larger --epochs" in message
    more = list(run(_settings(tmp_path, epochs=2, resume=True), TINY))  # what the message says to do
    assert (more[0].step, more[-1].step) == (47, 92)


# -- settings checked in one place ----------------------------------------------------------------

@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"log_every": 0}, "log_every must be at least 1, got 0"),
        ({"save_every": 0}, "save_every must be at least 1, got 0"),
        ({"eval_batch_size": 0}, "eval_batch_size must be at least 1, got 0"),
        ({"copies": 0}, "copies must be at least 1, got 0"),
        ({"threads": -1}, "threads must be at least 0, got -1"),
        ({"lr": -1.0}, "lr must be above 0, got -1.0"),
        ({"lr": float("nan")}, "lr must be a finite number, got nan"),
        ({"epochs": -1}, "epochs must be at least 0, got -1"),
        ({"epochs": 0, "max_steps": 0}, "nothing to train"),
        ({"seed": 2**70}, "seed must be between 0 and 4294967295"),
        ({"min_lr_ratio": 2.0}, "min_lr_ratio must be between 0 and 1, got 2.0"),
        ({"augment": "rotate"}, "augment must be one of crops, flips, none, got 'rotate'"),
        ({"device": "tpu"}, "device must be auto, cpu, cuda, cuda:<index> or mps, got 'tpu'"),
        ({"batch_size": 2.5}, "batch_size must be a whole number, got 2.5"),
        ({"resume": True, "overwrite": True}, "resume and overwrite exclude each other"),
    ],
)
def test_training_settings_are_checked_before_anything_happens(tmp_path, overrides, words):
    message = error_of(lambda: list(run(_settings(tmp_path / "run", **overrides), TINY)))
    assert message.startswith("invalid training settings: ") and words in message
    assert not (tmp_path / "run").exists()


def test_every_bad_setting_is_listed_in_one_message():
    message = error_of(TrainConfig(batch_size=0, lr=float("inf"), copies=-3).validate)
    assert message.count(";") == 2 and "batch_size" in message and "lr" in message and "copies" in message
    assert error_of(TrainConfig().validate) is None


def test_cuda_without_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert "CUDA is not available on this machine" in error_of(TrainConfig(device="cuda").validate)
    assert "CUDA is not available" in error_of(lambda: pick_device("cuda:0"))


def test_pick_device_auto_is_the_local_rank_gpu_else_the_cpu(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")


def test_a_full_disk_stops_the_run_with_a_message_and_keeps_the_last_save(tmp_path, monkeypatch):
    import safetensors.torch

    steps = run(_settings(tmp_path, save_every=5), TINY)
    for progress in steps:
        if progress.step == 7:
            break

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safetensors.torch, "save", full)
    message = error_of(lambda: list(steps))
    assert "No space left on device" in message and f"the last complete save is kept in {tmp_path / 'last'}" in message
    assert json.loads((tmp_path / "last" / "state.json").read_text())["step"] == 5


def test_a_read_only_out_folder_is_a_message(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    message = error_of(lambda: list(run(_settings(tmp_path / "run", max_steps=1), TINY)))
    assert message.startswith(f"cannot write {tmp_path / 'run'}: Permission denied")


def test_a_missing_image_file_is_named(tmp_path):
    config = pixelrnn.PixelRNN(**TINY).config
    assert "does not exist" in error_of(lambda: load_splits(str(tmp_path / "missing.png"), config))
    assert "does not exist" in error_of(lambda: load_splits("photos/of/mine", config))
    assert "unknown data source 'imagenet'" in error_of(lambda: load_splits("imagenet", config))


# -- schedule and progress ------------------------------------------------------------------------

def test_a_short_run_warms_up_for_a_tenth_of_it_and_reaches_its_learning_rate(tmp_path):
    progress = list(run(_settings(tmp_path, epochs=0, max_steps=23, warmup_steps=200, lr=1e-3), TINY))
    lrs = [p.lr for p in progress]
    assert lrs[:3] == pytest.approx([5e-4, 1e-3, 1e-3], rel=1e-3)  # warm-up of 23 // 10 = 2 steps
    assert lrs[-1] < lrs[2]  # then the cosine decay
    cifar10 = TrainConfig(warmup_steps=300)  # a long run keeps the warm-up it asked for
    assert warmup_steps(cifar10, 15 * (45000 // 32)) == 300


def test_progress_and_metrics_agree_on_the_epoch(tmp_path):
    progress = list(run(_settings(tmp_path, epochs=2), TINY))
    assert {p.epoch for p in progress[:46]} == {1} and {p.epoch for p in progress[47:93]} == {2}
    assert [p.epoch for p in progress if p.valid] == [1, 2]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2]
    steps = {r["step"]: r["epoch"] for r in records if r["kind"] == "step"}  # the epoch in progress, from 1 too
    assert (steps[45], steps[50], steps[90]) == (1, 2, 2)


def test_a_run_ended_by_max_steps_reports_its_real_validation_figure(tmp_path):
    progress = list(run(_settings(tmp_path, epochs=0, max_steps=5), TINY))
    assert progress[-1].valid is not None and math.isfinite(progress[-1].best_valid_nll)
    card = pixelrnn.PixelRNN.from_pretrained(tmp_path)  # the best checkpoint exists and is that figure's model
    assert card.config["height"] == 8
    state = json.loads((tmp_path / "last" / "state.json").read_text())
    assert state["best_valid_nll"] == progress[-1].best_valid_nll
    assert state["best_metrics"]["valid_nll_nats"] == round(progress[-1].valid["nll_nats"], 3)


# -- CIFAR-10 sources -----------------------------------------------------------------------------

def test_cifar10_source_reads_the_original_pixels_with_the_usual_validation_split(tmp_path):
    shared_data("cifar10_original.npz")
    config = pixelrnn.PixelRNN(height=32, width=32, channels=3, values="8bit", hidden_size=8, head_size=8).config
    splits = load_splits("cifar10", config)
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (49926 - 4982, 4982, 9979)
    assert splits.train.shape[1:] == (3, 32, 32) and splits.train[:10].max() <= 255 and splits.train[:10].max() > 1
    with np.load(SHARED_DATA / "cifar10_original.npz") as arrays:
        index = arrays["train_index"]
        first_valid = int(np.argmax(index >= 45000))
        assert torch.equal(splits.valid[0], torch.from_numpy(arrays["x_train"][first_valid]).permute(2, 0, 1).float())
    message = error_of(lambda: load_splits("cifar10", {**config, "height": 28}))
    assert "cifar10 images are 32x32" in message


# -- the weight average (--ema) ---------------------------------------------------------------------

def test_eval_every_scores_inside_an_epoch_and_keeps_the_best(tmp_path):
    progress = _train(tmp_path, epochs=1, eval_every=20)  # 46 steps in the epoch
    scored = [(p.step, p.valid["nll_nats"]) for p in progress if p.valid]
    assert [step for step, _ in scored] == [20, 40, 46]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["step"]) for r in records if "valid_nll" in r] == [("eval", 20), ("eval", 40), ("epoch", 46)]
    best = min(scored, key=lambda s: s[1])
    card = json.loads((tmp_path / "last" / "state.json").read_text())["best_metrics"]
    assert card["step"] == best[0] and card["valid_nll_nats"] == round(best[1], 3)
    kept = evaluate(pixelrnn.PixelRNN.from_pretrained(tmp_path), load_splits("digits", pixelrnn.PixelRNN(**TINY).config).valid)
    assert kept["nll_nats"] == pytest.approx(best[1], rel=1e-5)  # the kept checkpoint is the one that scored best


def test_a_weight_average_follows_the_weights_with_its_decay():
    from pixelrnn.averaging import WeightAverage

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    average = WeightAverage(model, 0.9)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 2))  # one batch seen by batch norm
    average.update(model, step=10**6)
    assert torch.allclose(average.model[0].weight, start + 0.1)
    assert torch.allclose(average.model[1].running_mean, 0.1 * model[1].running_mean)
    assert int(average.model[1].num_batches_tracked) == 1 and not average.model.training
    assert average.decay_at(0) == pytest.approx(0.1) and average.decay_at(10**6) == 0.9
    with pytest.raises(ValueError, match=r"decay of a weight average must be in \(0, 1\)"):
        WeightAverage(model, 1.0)


def test_with_ema_the_average_is_what_is_scored_kept_and_resumed(tmp_path):
    from safetensors.torch import load_file

    progress = _train(tmp_path, epochs=1, ema=0.9)
    best, trained = _weights(tmp_path), _weights(tmp_path / "last")
    _same_weights(best, load_file(str(tmp_path / "last" / "average.safetensors")))  # both saved at the epoch's end
    assert any(not torch.equal(best[name], trained[name]) for name in best)
    model = pixelrnn.PixelRNN.from_pretrained(tmp_path)
    valid = evaluate(model, load_splits("digits", model.config).valid)
    assert valid["nll_nats"] == pytest.approx(progress[-1].valid["nll_nats"])


def test_stopping_and_resuming_with_ema_matches_an_uninterrupted_run(tmp_path):
    _train(tmp_path / "whole", ema=0.95)
    steps = run(_settings(tmp_path / "split", ema=0.95), TINY)
    for progress in steps:
        if progress.step == 23:
            break
    steps.close()
    list(run(_settings(tmp_path / "split", ema=0.95, resume=True), TINY))
    for name in ("model.safetensors", "last/model.safetensors", "last/average.safetensors"):
        _same_weights(_weights_file(tmp_path / "whole" / name), _weights_file(tmp_path / "split" / name))


def test_a_damaged_weight_average_is_named_and_a_missing_one_starts_from_the_weights(tmp_path):
    steps = run(_settings(tmp_path / "run", ema=0.95), TINY)
    for progress in steps:
        if progress.step == 12:
            break
    steps.close()
    last = tmp_path / "run" / "last"
    shutil.copy(last / "average.safetensors", tmp_path / "average.safetensors")
    _replace_tensor(last / "average.safetensors", "start", torch.zeros(3))
    before = _tree(tmp_path / "run")
    message = error_of(lambda: list(run(_settings(tmp_path / "run", ema=0.95, resume=True), TINY)))
    assert "is damaged (average.safetensors" in message and _tree(tmp_path / "run") == before
    (last / "average.safetensors").unlink()  # a run started without --ema, continued with it
    list(run(_settings(tmp_path / "run", ema=0.95, resume=True), TINY))
    assert (last / "average.safetensors").exists()


def test_ema_must_be_below_one(tmp_path):
    for value, words in ((1.0, "ema must be below 1"), (-0.5, "ema must be between 0 and 1")):
        assert words in error_of(lambda: list(run(_settings(tmp_path / "run", ema=value), TINY)))


def _weights_file(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_init_starts_from_a_checkpoint_with_a_new_optimizer_and_refuses_other_options(tmp_path):
    _train(tmp_path / "first", epochs=1)
    pretrained = pixelrnn.PixelRNN.from_pretrained(tmp_path / "first")
    steps = run(_settings(tmp_path / "tuned", epochs=1, init=str(tmp_path / "first"), lr=1e-12, warmup_steps=0), TINY)
    first = next(steps)
    steps.close()
    tuned = pixelrnn.PixelRNN.from_pretrained(tmp_path / "tuned" / "last")
    tuned_weights = dict(tuned.named_parameters())
    for name, weight in pretrained.named_parameters():  # one step at a learning rate of 1e-12: the pretrained weights
        torch.testing.assert_close(tuned_weights[name], weight, rtol=0, atol=1e-6)  # (batch norm's statistics moved)
    assert first.step == 1 and json.loads((tmp_path / "tuned" / "train.json").read_text())["init"] == str(tmp_path / "first")
    fresh = pixelrnn.PixelRNN(**TINY)
    assert not torch.allclose(fresh.state_dict()["encoder.0.weight"], pretrained.state_dict()["encoder.0.weight"])
    message = error_of(lambda: list(run(_settings(tmp_path / "other", init=str(tmp_path / "first")), {**TINY, "hidden_size": 8})))
    assert "--init" in message and "hidden_size 16 there, 8 here" in message
