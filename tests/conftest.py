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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
