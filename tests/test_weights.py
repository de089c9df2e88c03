"""The checkpoints shipped in weights/ load strictly, sample, carry honest cards, and (where the data is here) score."""
import json
import os
from pathlib import Path

import pytest
import torch

import pixelrnn
from pixelrnn.options import DEFAULTS
from pixelrnn.card import card_fields
from pixelrnn.datasets import load_splits
from pixelrnn.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (ROOT / "weights").iterdir() if (p / "config.json").exists())
from conftest import shared_data


def test_the_default_checkpoint_is_shipped():
    assert (ROOT / "weights" / "binarized-mnist" / "model.safetensors").exists()


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_checkpoint_loads_samples_and_has_a_card(folder):
    model = pixelrnn.PixelRNN.from_pretrained(folder)
    saved = json.loads((folder / "config.json").read_text())
    assert model.config == {**DEFAULTS, **saved}  # an option added after the file was written takes its default
    assert (folder / "model.safetensors").stat().st_size < 10 * 2**20
    *_, last = pixelrnn.generate(model, n=2, seed=0)
    assert last.image.shape == (2, model.config["channels"], model.config["height"], model.config["width"])
    fields = card_fields((folder / "README.md").read_text())
    assert "valid_nll_nats" in fields["metrics"] and fields["command"].startswith("python -m pixelrnn train")
    assert (folder / "samples.png").exists() and (folder / "train.json").exists()


def test_binarized_mnist_checkpoint_scores_as_its_card_says():
    DATA = shared_data("binarized_mnist.npz").parent
    folder = ROOT / "weights" / "binarized-mnist"
    model = pixelrnn.PixelRNN.from_pretrained(folder)
    test = load_splits("binarized-mnist", model.config, folder=str(DATA)).test
    subset = test[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:2000]]  # the file is ordered by difficulty
    figures = evaluate(model, subset)
    claimed = card_fields((folder / "README.md").read_text())["metrics"]["test_nll_nats"]
    assert claimed <= 79.0  # the bar; the shipped model: 78.97 nats on test
    assert abs(figures["nll_nats"] - claimed) < 2.5  # a random fifth of the test images: close to the full figure
    torch.testing.assert_close(torch.tensor(figures["bits_per_dim"]), torch.tensor(figures["nll_nats"] / (784 * 0.6931471805599453)))


def test_cifar10_checkpoint_scores_as_its_card_says_on_original_pixels():
    shared_data("cifar10_original.npz")
    folder = ROOT / "weights" / "cifar10"
    model = pixelrnn.PixelRNN.from_pretrained(folder)
    claimed = card_fields((folder / "README.md").read_text())["metrics"]
    claimed = claimed.get("exact_test_bits_per_dim", claimed["test_bits_per_dim"])  # a card of the JPEG-decoded era
    figures = evaluate(model, load_splits("cifar10", model.config).test[:200])
    assert abs(figures["bits_per_dim"] - claimed) < 0.15  # the first 200 of the 9,979 original-pixel test images
