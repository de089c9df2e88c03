import io
import os
import socket
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Tests never touch the network: huggingface_hub reads HF_ENDPOINT once, when it is first imported (after this
# line), so in this process and in every child that inherits the environment, Hub access goes to a closed port
# on this machine. Tests that start a local Hub (tests/hub_server.py) point their child processes at it instead.
assert "huggingface_hub" not in sys.modules, "conftest.py must set HF_ENDPOINT before huggingface_hub is imported"
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"

import pixelrnn  # noqa: E402
from pixelrnn.datasets import data_dir  # noqa: E402

SHARED_DATA = data_dir()  # $PIXELRNN_DATA, else the shared/data beside the project: the library's own default


def shared_data(name: str) -> Path:
    """The path of a data file in shared/data, or skip the test when it is not on this machine."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"no {name} in {SHARED_DATA} (set PIXELRNN_DATA to the folder that holds it)")
    return path


def tiny(**overrides) -> pixelrnn.PixelRNN:
    config = dict(height=4, width=3, channels=1, hidden_size=8, head_size=8)
    config.update(overrides)
    return pixelrnn.PixelRNN(**config)


def random_images(model, batch=2, generator=None) -> torch.Tensor:
    c = model.config
    top = 2 if c["values"] == "binary" else 256
    return torch.randint(0, top, (batch, c["channels"], c["height"], c["width"]), generator=generator).float()


def settle_batch_norm(model, batches=3):
    """Give batch norm non-trivial running statistics, then switch to eval."""
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(random_images(model, batch=8))
    return model.eval()


def error_of(call) -> str | None:
    """The message of the PixelRNNError that `call()` raises, or None when it raises none."""
    try:
        call()
    except pixelrnn.PixelRNNError as error:
        return str(error)
    return None


def png_bytes(image) -> bytes:
    """A PIL image encoded as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# -- the fast subset: `pytest -m "not slow"`, for everyday edits; the full suite (CI, `.ci/run`) runs everything --
# Chosen from `pytest --durations=0` on the 2-core machine, busy with a training run: the modules whose tests start
# processes, servers, browsers or training runs, or score the shipped checkpoints (test_train.py took 317 s,
# test_hub.py 184 s, test_weights.py 67 s, test_security.py 22 s; the app and browser tests minutes); single tests
# of a second or more by name; and of each test parametrized over a big grid (more than BIG_GRID cases: causality,
# 204 cases in 31 s; the parameter count, 840 in 14 s), the fast subset keeps one case in GRID_SAMPLE.
SLOW_MODULES = {"test_app.py", "test_browser.py", "test_browser_security.py", "test_security.py", "test_readme.py",
                "test_train.py", "test_weights.py", "test_hub.py"}  # fmt: skip
SLOW_TESTS = {
    "test_the_library_never_imports_the_apps_stack", "test_a_few_steps_of_training_lower_the_nll",  # test_model.py
    # test_cli.py: each starts python -m pixelrnn (or trains, or scores the shipped cifar10) in a child process
    "test_a_full_disk_while_training_is_one_line", "test_import_pixelrnn_is_cheap_and_its_names_still_work",
    "test_help_and_argument_errors_import_nothing_heavy", "test_an_unreachable_hub_fails_once_at_once_with_one_line",
    "test_eval_on_cifar10_test_images", "test_a_shipped_checkpoint_is_named_from_any_folder",
    "test_eval_json_never_replaces_a_file_unasked_and_a_failed_write_keeps_it",
    "test_a_run_stopped_by_max_steps_in_its_first_epoch_has_a_loss_plot",
    "test_train_shows_progress_while_it_scores_the_validation_and_test_splits",
    "test_the_default_data_folder_is_found_from_any_folder",
    "test_a_run_ended_by_max_steps_prints_its_real_figure_and_a_finished_run_is_not_resumed",
}  # fmt: skip
BIG_GRID, GRID_SAMPLE = 40, 8


def pytest_collection_modifyitems(config, items):
    grids = {}
    for item in items:
        grids.setdefault((item.path, getattr(item, "originalname", item.name)), []).append(item)
    for (path, name), cases in grids.items():
        for index, item in enumerate(cases):
            if (path.name in SLOW_MODULES or name in SLOW_TESTS
                    or (len(cases) > BIG_GRID and index % GRID_SAMPLE != 0)):  # fmt: skip
                item.add_marker(pytest.mark.slow)
