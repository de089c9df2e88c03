"""The command line: every flag documented, every bad input one line on stderr and exit code 2."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import pixelrnn
from pixelrnn import cli, distributions
from pixelrnn.evaluate import evaluate
from pixelrnn.model import CELLS, MODES, OPTIONS, ROW_HEADS, STEPS
from pixelrnn.train import TrainConfig
from conftest import free_port, shared_data, tiny

ROOT = Path(__file__).resolve().parents[1]
CLI_TINY = ["--height", "8", "--width", "8", "--hidden-size", "8", "--head-size", "8", "--threads", "1"]


def _cli(capsys, *argv):
    """(exit code, stdout, stderr) of `python -m pixelrnn ...`, run in this process."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as done:  # argparse
        code = done.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, words):
    err = err.split("\r")[-1]  # what a terminal shows once a progress bar is cleared
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err


@pytest.fixture
def checkpoint(tmp_path):
    folder = tmp_path / "ckpt"
    tiny(height=8, width=8).save_pretrained(folder)
    return folder


# -- help -----------------------------------------------------------------------------------------

def _subcommands():
    parser = cli._parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    return {name: choices[name] for name in ("train", "sample", "eval", "push")}


@pytest.mark.parametrize("command", ["train", "sample", "eval", "push"])
def test_every_flag_has_a_help_line_and_its_default(command):
    parser = _subcommands()[command]
    text = parser.format_help()
    for action in parser._actions:
        if action.dest == "help":
            continue
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
    with_default = [a for a in parser._actions if a.option_strings and a.default is not None and a.dest != "help"]
    assert text.count("(default:") == len(with_default)


def test_train_flags_come_from_the_model_options_and_train_config():
    parser = _subcommands()["train"]
    actions = {a.dest: a for a in parser._actions}
    assert set(OPTIONS) <= set(actions)
    flags = {f.name for f in TrainConfig.__dataclass_fields__.values() if f.metadata["flag"]}
    assert flags <= set(actions) and "command" not in actions
    for name, default in ((n, p.default) for n, p in OPTIONS.items()):
        assert actions[name].default == default
    assert actions["cell"].choices == tuple(CELLS) and actions["mode"].choices == MODES
    assert actions["row_head"].choices == ROW_HEADS and actions["step"].choices == STEPS
    assert actions["values"].choices == tuple(distributions.LEVELS) and actions["augment"].choices == ("crops", "flips", "none")
    assert "a tenth" in actions["warmup_steps"].help


# -- bad input: one line, exit code 2 -------------------------------------------------------------

@pytest.mark.parametrize(
    "flags, words",
    [
        (["--batch-size", "0"], "batch_size must be at least 1, got 0"),
        (["--log-every", "0"], "log_every must be at least 1"),
        (["--save-every", "0"], "save_every must be at least 1"),
        (["--eval-batch-size", "0"], "eval_batch_size must be at least 1"),
        (["--copies", "0"], "copies must be at least 1"),
        (["--threads", "-1"], "threads must be at least 0"),
        (["--lr", "-1"], "lr must be above 0, got -1.0"),
        (["--lr", "nan"], "lr must be a finite number, got nan"),
        (["--epochs", "-1"], "epochs must be at least 0"),
        (["--batch-size", "many"], "argument --batch-size: invalid int value: 'many'"),
        (["--cell", "transformer"], "argument --cell: invalid choice: 'transformer'"),
        (["--data", "missing.png"], "the data source 'missing.png' does not exist"),
    ],
)
def test_bad_training_flags_are_one_line(capsys, tmp_path, flags, words):
    code, _, err = _cli(capsys, "train", "--data", "digits", "--out", tmp_path / "run", *CLI_TINY, *flags)
    _one_line_error(code, err, words)
    assert not (tmp_path / "run").exists()


def test_cuda_without_cuda_is_one_line(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = _cli(capsys, "train", "--out", tmp_path / "run", "--device", "cuda")
    _one_line_error(code, err, "CUDA is not available on this machine")


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--seed", 2**70], f"argument --seed: {2**70} is not between 0 and {2**64 - 1}"),
        (["--out", "x.txt"], "--out x.txt: the picture needs an image file name ending in one of"),
        (["--out", "missing/x.png"], "the folder missing does not exist"),
        (["-n", "0"], "the number of images must be a whole number from 1 to 1024, got 0"),
        (["--scale", "0"], "argument --scale: 0 is not between 1 and 64"),
    ],
)
def test_bad_sampling_flags_are_one_line(capsys, checkpoint, tmp_path, monkeypatch, flags, words):
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(capsys, "sample", checkpoint, *flags)
    _one_line_error(code, err, words)
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "x.txt").exists()


def test_sample_writes_other_image_formats(capsys, checkpoint, tmp_path):
    code, out, err = _cli(capsys, "sample", checkpoint, "-n", 4, "--scale", 1, "--out", tmp_path / "s.webp")
    assert code == 0, err
    assert Image.open(tmp_path / "s.webp").format == "WEBP"


def test_a_full_disk_while_sampling_is_one_line_and_leaves_no_half_picture(capsys, checkpoint, tmp_path, monkeypatch):
    def full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", full)
    code, _, err = _cli(capsys, "sample", checkpoint, "-n", 2, "--out", tmp_path / "s.png")
    _one_line_error(code, err, "No space left on device")
    assert not (tmp_path / "s.png").exists()


def test_a_full_disk_while_training_is_one_line(capsys, tmp_path, monkeypatch):
    import safetensors.torch

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safetensors.torch, "save", full)
    code, _, err = _cli(capsys, "train", "--data", "digits", "--out", tmp_path / "run", *CLI_TINY, "--epochs", 0, "--max-steps", 2)
    _one_line_error(code, err.splitlines()[-1] + "\n", "No space left on device")  # after the progress bar's line


def test_train_over_a_folder_it_did_not_write_is_one_line_and_touches_nothing(capsys, tmp_path):
    (tmp_path / "README.md").write_text("my project")
    code, _, err = _cli(capsys, "train", "--data", "digits", "--out", tmp_path, *CLI_TINY)
    _one_line_error(code, err, "is not empty and holds no pixelrnn training run")
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"] and (tmp_path / "README.md").read_text() == "my project"


def test_a_run_ended_by_max_steps_prints_its_real_figure_and_a_finished_run_is_not_resumed(capsys, tmp_path):
    run = ["train", "--data", "digits", "--out", tmp_path, *CLI_TINY, "--epochs", 0, "--max-steps", 3, "--warmup-steps", 1]
    code, out, err = _cli(capsys, *run)
    assert code == 0, err
    best = json.loads((tmp_path / "last" / "state.json").read_text())["best_valid_nll"]
    assert f"best checkpoint: {tmp_path} (valid NLL {best:.3f} nats per image)" in out and "inf" not in out
    code, _, err = _cli(capsys, *run, "--resume")
    _one_line_error(code, err, "is finished (3 of 3 steps")
    code, _, err = _cli(capsys, *run)
    _one_line_error(code, err, "continue it with --resume, start it over with --overwrite")


def test_eval_refuses_a_bad_batch_size_and_shows_progress(capsys, checkpoint, tmp_path):
    code, out, err = _cli(capsys, "eval", checkpoint, "--data", "digits", "--batch-size", -5)
    _one_line_error(code, err, "argument --batch-size: -5 is not at least 1")
    assert "nll_nats" not in out
    code, out, err = _cli(capsys, "eval", checkpoint, "--data", "digits", "--batch-size", 10, "--json", tmp_path / "e.json")
    assert code == 0, err
    assert "scoring" in err and "batch" in err  # the progress bar, on stderr
    assert json.loads((tmp_path / "e.json").read_text())["images"] == 150
    with pytest.raises(pixelrnn.PixelRNNError, match="batch size must be a whole number of at least 1, got -5"):
        evaluate(tiny(height=8, width=8), torch.zeros(2, 1, 8, 8), batch_size=-5)


def test_train_shows_progress_while_it_scores_the_validation_and_test_splits(capsys, tmp_path):
    code, _, err = _cli(capsys, "train", "--data", "digits", "--out", tmp_path, *CLI_TINY, "--epochs", 1, "--eval-batch-size", 10, "--test")
    assert code == 0, err
    assert err.count("scoring:") >= 2 and "batch" in err  # a bar for the validation split, one for the test split


def test_eval_json_into_a_missing_folder_is_one_line(capsys, checkpoint, tmp_path):
    code, _, err = _cli(capsys, "eval", checkpoint, "--data", "digits", "--max-images", 5, "--json", tmp_path / "no" / "e.json")
    _one_line_error(code, err, "cannot write --json")
    assert "scoring" not in err  # refused before the work


def test_eval_on_cifar10_test_images(capsys, tmp_path):
    folder = shared_data("cifar10_original.npz").parent
    tiny(height=32, width=32, channels=3, values="8bit").save_pretrained(tmp_path / "ckpt")
    common = ["eval", tmp_path / "ckpt", "--data", "cifar10", "--data-dir", folder, "--max-images", 4]
    code, out, err = _cli(capsys, *common, "--split", "test", "--json", tmp_path / "e.json")
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["images"] == 4


# -- an unreachable Hub (issue 24, item 1) --------------------------------------------------------

def test_an_unreachable_hub_fails_once_at_once_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{free_port()}", HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(ROOT), PIXELRNN_CACHE=str(tmp_path / "cache"))  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "pixelrnn", "sample", "alice/no-such-model", "--out", "s.png"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "Retrying" not in done.stderr
    _one_line_error(done.returncode, done.stderr, "cannot reach the Hub to fetch alice/no-such-model")
