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


def _per_image_nll(model, images, batch=250) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([-model.log_prob(images[i : i + batch]).sum(dim=(1, 2, 3)) for i in range(0, len(images), batch)]).double()


def _scores_as_claimed(model, images, claimed_nll, count):
    """The card's test NLL against a random slice of the test split, within 4 standard errors of the slice's
    own mean (its spread measured here), and evaluate() agreeing with the per-image sum."""
    subset = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:count]]  # files may be ordered
    nll = _per_image_nll(model, subset)
    slack = 4 * nll.std().item() / len(nll) ** 0.5
    assert abs(nll.mean().item() - claimed_nll) < slack, (nll.mean().item(), claimed_nll, slack)
    figures = evaluate(model, subset)
    assert figures["nll_nats"] == pytest.approx(nll.mean().item(), rel=1e-4)
    dims = subset[0].numel()
    torch.testing.assert_close(torch.tensor(figures["bits_per_dim"]), torch.tensor(figures["nll_nats"] / (dims * 0.6931471805599453)))
    return slack


def test_binarized_mnist_checkpoint_scores_as_its_card_says():
    DATA = shared_data("binarized_mnist.npz").parent
    folder = ROOT / "weights" / "binarized-mnist"
    model = pixelrnn.PixelRNN.from_pretrained(folder)
    claimed = card_fields((folder / "README.md").read_text())["metrics"]["test_nll_nats"]
    assert claimed <= 79.0  # the bar; the shipped model: 78.97 nats on test
    slack = _scores_as_claimed(model, load_splits("binarized-mnist", model.config, folder=str(DATA)).test, claimed, 2000)
    assert slack < 3  # 2,000 images pin the mean to about half a nat


def test_cifar10_checkpoint_scores_as_its_card_says_on_original_pixels():
    shared_data("cifar10_original.npz")
    folder = ROOT / "weights" / "cifar10"
    model = pixelrnn.PixelRNN.from_pretrained(folder)
    claimed = card_fields((folder / "README.md").read_text())["metrics"]
    assert claimed["test_nll_nats"] / (3072 * 0.6931471805599453) == pytest.approx(claimed["test_bits_per_dim"], abs=1e-4)
    slack = _scores_as_claimed(model, load_splits("cifar10", model.config).test, claimed["test_nll_nats"], 500)
    assert slack < 0.25 * 3072 * 0.6931471805599453  # under a quarter of a bit per dim


def test_mnist_classes_checkpoint_scores_as_its_card_says_given_the_class_and_marginally():
    data = shared_data("mnist.npz").parent
    folder = ROOT / "weights" / "mnist-classes"
    model = pixelrnn.PixelRNN.from_pretrained(folder)
    assert model.config["class_names"] == [str(d) for d in range(10)]
    claimed = card_fields((folder / "README.md").read_text())["metrics"]
    splits = load_splits("mnist", model.config, folder=str(data), labels=True)
    _scores_as_claimed(model, splits.test, claimed["test_nll_nats"], 500)  # the marginal: log_prob without labels
    subset = torch.randperm(len(splits.test), generator=torch.Generator().manual_seed(1))[:500]
    with torch.inference_mode():
        given = -model.log_prob(splits.test[subset], labels=splits.test_labels[subset]).sum(dim=(1, 2, 3)).double()
    assert abs(given.mean().item() - claimed["test_conditional_nll_nats"]) < 4 * given.std().item() / len(given) ** 0.5
    # knowing the class can only help, by at most log 10 nats (p(x) >= p(class) p(x | class), p(class) about 1/10)
    assert 0 < claimed["test_nll_nats"] - claimed["test_conditional_nll_nats"] < 2.4
