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
from pixelrnn import cli, cli_flags, distributions
from pixelrnn.evaluate import evaluate
from pixelrnn.options import CELLS, MODES, OPTIONS, ROW_HEADS, STEPS
from pixelrnn.train import TrainConfig
from conftest import free_port, shared_data, tiny

ROOT = Path(__file__).resolve().parents[1]
CLI_TINY = ["--height", "8", "--width", "8", "--hidden-size", "8", "--head-size", "8", "--threads", "1"]


@pytest.fixture(scope="session")
def _flag_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("flag-cache")


@pytest.fixture(autouse=True)
def _own_flag_cache(_flag_cache, monkeypatch):
    """The command line's table of flags is kept in a folder of the tests, not in the user's ~/.cache."""
    monkeypatch.setenv(cli_flags.FLAG_CACHE_ENV, str(_flag_cache))


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
    code, out, err = _cli(capsys, "train", "--data", "digits", "--out", tmp_path, *CLI_TINY, "--epochs", 1, "--eval-batch-size", 10, "--test")
    assert code == 0, err
    assert err.count("scoring:") >= 2 and "batch" in err  # a bar for the validation split, one for the test split
    test = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])  # the figure --test printed at the end
    assert test["kind"] == "test" and out.splitlines()[-1] == (
        f"test NLL {test['nll_nats']:.3f} nats per image, {test['bits_per_dim']:.4f} bits/dim (150 test images, the best checkpoint)")


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


# -- checkpoints by name, from any folder; an unreachable Hub (issue 24, item 1) -------------------

def _no_hub(monkeypatch):
    from pixelrnn import hub

    def refuse(*args, **kwargs):
        raise AssertionError("the Hub was asked")

    monkeypatch.setattr(hub, "fetch", refuse)


@pytest.mark.parametrize("name", ["binarized-mnist", "weights/binarized-mnist"])
def test_a_shipped_checkpoint_is_named_from_any_folder(capsys, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    _no_hub(monkeypatch)
    code, out, err = _cli(capsys, "sample", name, "-n", 1, "--scale", 1, "--out", "s.png")
    assert code == 0, err
    assert Image.open(tmp_path / "s.png").size == (28, 28)
    code, out, err = _cli(capsys, "eval", name, "--data", "digits", "--max-images", 3, "--batch-size", 3)
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["images"] == 3


def test_a_near_miss_of_a_shipped_name_is_said_without_asking_the_hub(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _no_hub(monkeypatch)
    code, _, err = _cli(capsys, "sample", "binarized-mnst", "--out", "s.png")
    _one_line_error(code, err, "(did you mean 'binarized-mnist'?); hf:binarized-mnst loads the Hub repo of that name")
    code, _, err = _cli(capsys, "eval", "weights/binarized-mnst", "--data", "digits")
    _one_line_error(code, err, "(did you mean 'weights/binarized-mnist'?)")
    assert "shipped" in _subcommands()["sample"].format_help() and "binarized-mnist" in _subcommands()["eval"].format_help()


def test_the_default_data_folder_is_found_from_any_folder(capsys, tmp_path, monkeypatch):
    from pixelrnn.datasets import DEFAULT_DATA_DIR

    if not (DEFAULT_DATA_DIR / "binarized_mnist.npz").exists():
        pytest.skip(f"no binarized_mnist.npz in {DEFAULT_DATA_DIR}")
    monkeypatch.delenv("PIXELRNN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(capsys, "eval", "binarized-mnist", "--data", "binarized-mnist", "--max-images", 4, "--batch-size", 4)
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["images"] == 4
    assert str(DEFAULT_DATA_DIR) in " ".join(_subcommands()["eval"].format_help().split())


def test_an_unreachable_hub_fails_once_at_once_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{free_port()}", HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(ROOT), PIXELRNN_CACHE=str(tmp_path / "cache"))  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "pixelrnn", "sample", "alice/no-such-model", "--out", "s.png"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "Retrying" not in done.stderr
    _one_line_error(done.returncode, done.stderr, "cannot reach the Hub to fetch alice/no-such-model")


# -- start-up: nothing heavy before the arguments are parsed (item 2) -------------------------------

STARTUP = """
import json, sys
from pixelrnn import cli
codes = []
for argv in (["--help"], ["train", "--help"], ["sample", "--help"], ["eval", "--help"], ["train", "--hiden-size", "64"], ["sample"]):
    try:
        cli.main(argv)
    except SystemExit as done:
        codes.append(done.code)
heavy = sorted(name for name in ("torch", "numpy", "huggingface_hub", "PIL", "tqdm") if name in sys.modules)
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_help_and_argument_errors_import_nothing_heavy(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIXELRNN_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-m", "pixelrnn", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and "train" in first.stdout  # the first use reads the flags from the code
    done = subprocess.run([sys.executable, "-c", STARTUP], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0, 0, 0, 0, 2, 2], "heavy": []}


def test_the_flag_table_is_the_code_s_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv(cli_flags.FLAG_CACHE_ENV, str(tmp_path))
    built = cli_flags._built_flag_table()
    assert cli_flags.flag_table() == built and cli_flags.flag_table() == built  # built, then read back
    (cached,) = tmp_path.glob("flags-*.json")
    cached.write_text("{not json")
    assert cli_flags.flag_table() == built
    assert [type(row[1]) for row in cli_flags.flag_table()["model"]] == [type(row[1]) for row in built["model"]]


def test_import_pixelrnn_is_cheap_and_its_names_still_work(tmp_path):
    code = ("import sys, pixelrnn; light = 'torch' not in sys.modules; "
            "print(light, pixelrnn.PixelRNN.__name__, pixelrnn.generate.__name__, pixelrnn.options.MAX_PARAMETERS > 0, "
            "sorted(set(pixelrnn.__all__) - set(dir(pixelrnn))))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.stdout.split() == ["True", "PixelRNN", "generate", "True", "[]"], done.stderr
    from pixelrnn import PixelRNN, to_pil  # noqa: F401 - from-imports resolve too
    with pytest.raises(AttributeError):
        pixelrnn.no_such_name


# -- a typo'd flag (item 3) -----------------------------------------------------------------------

def test_a_typo_names_the_closest_flag_and_the_subcommand_s_help(capsys, checkpoint):
    code, _, err = _cli(capsys, "train", "--hiden-size", 64)
    _one_line_error(code, err, "unrecognized arguments --hiden-size 64: did you mean --hidden-size? (see pixelrnn train --help)")
    code, _, err = _cli(capsys, "sample", checkpoint, "--temprature=2")
    _one_line_error(code, err, "--temprature=2: did you mean --temperature? (see pixelrnn sample --help)")


# -- train: loss.png when --max-steps ends the first epoch (item 4) -----------------------------------

def test_a_run_stopped_by_max_steps_in_its_first_epoch_has_a_loss_plot(capsys, tmp_path):
    code, _, err = _cli(capsys, "train", "--data", "digits", "--out", tmp_path, *CLI_TINY, "--epochs", 0, "--max-steps", 3,
                        "--warmup-steps", 1, "--log-every", 1)  # fmt: skip
    assert code == 0, err
    assert Image.open(tmp_path / "loss.png").format == "PNG"


# -- eval on data of another size (item 5) --------------------------------------------------------

def test_eval_on_data_of_another_size_says_what_eval_can_do(capsys, tmp_path):
    code, _, err = _cli(capsys, "eval", "cifar10", "--data", "binarized-mnist")
    _one_line_error(code, err, "cifar10 is a 32x32 model with 3 channel(s) and binarized-mnist images are 28x28 with 1")
    assert "--height" not in err and "score cifar10 on --data cifar10, digits, photos" in err
    assert "score a checkpoint made for it (shipped: binarized-mnist" in err
    tiny(height=28, width=28, values="8bit").save_pretrained(tmp_path / "gray")
    code, _, err = _cli(capsys, "eval", tmp_path / "gray", "--data", "binarized-mnist")
    _one_line_error(code, err, "binarized-mnist holds binary pixels")
    assert "--data mnist" in err and "values=" not in err


# -- the app without its requirements (item 6) ------------------------------------------------------

def test_the_app_without_its_requirements_says_how_to_install_them(tmp_path):
    done = subprocess.run([sys.executable, "-S", str(ROOT / "app.py")], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "app.py needs gradio" in done.stderr, done.stderr
    assert f"-m pip install -r {ROOT / 'requirements.txt'}" in done.stderr


# -- the user's files: written whole, replaced only when asked (issue 21, item 11) ------------------

def test_sample_never_replaces_a_file_unasked_and_a_failed_write_keeps_it(capsys, checkpoint, tmp_path, monkeypatch):
    holiday = tmp_path / "holiday.png"
    Image.new("RGB", (3, 2), "red").save(holiday)
    before = holiday.read_bytes()
    code, out, err = _cli(capsys, "sample", checkpoint, "-n", 1, "--out", holiday)
    _one_line_error(code, err, f"--out {holiday} already exists: nothing was done; pass --overwrite to replace it")
    assert holiday.read_bytes() == before

    save = Image.Image.save

    def full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    monkeypatch.setattr(Image.Image, "save", full)
    code, _, err = _cli(capsys, "sample", checkpoint, "-n", 1, "--out", holiday, "--overwrite")
    _one_line_error(code, err, f"File too large; {holiday} is as it was")
    assert holiday.read_bytes() == before and [p.name for p in tmp_path.iterdir() if p.name != "ckpt"] == ["holiday.png"]

    monkeypatch.setattr(Image.Image, "save", save)
    code, out, err = _cli(capsys, "sample", checkpoint, "-n", 1, "--scale", 1, "--out", holiday, "--overwrite")
    assert code == 0, err
    assert f"wrote 1 samples to {holiday} (replaced the file that was there)" in out
    assert Image.open(holiday).size == (8, 8)


def test_eval_json_never_replaces_a_file_unasked_and_a_failed_write_keeps_it(capsys, checkpoint, tmp_path, monkeypatch):
    figures = tmp_path / "figures.json"
    figures.write_text('{"mine": 1}')
    common = ["eval", checkpoint, "--data", "digits", "--max-images", 3, "--json", figures]
    code, out, err = _cli(capsys, *common)
    _one_line_error(code, err, f"--json {figures} already exists: nothing was done; pass --overwrite")
    assert "scoring" not in err and figures.read_text() == '{"mine": 1}'

    write_text = Path.write_text

    def full(self, text, *args, **kwargs):
        write_text(self, text[:5], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    code, _, err = _cli(capsys, *common, "--overwrite")
    _one_line_error(code, err, "No space left on device")
    monkeypatch.setattr(Path, "write_text", write_text)
    assert figures.read_text() == '{"mine": 1}' and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "figures.json"]

    code, out, err = _cli(capsys, *common, "--overwrite")
    assert code == 0 and f"replaced {figures}" in err
    assert json.loads(figures.read_text())["images"] == 3
