"""Class-conditional models (issue 25): the likelihood against its definitions, labels in every job, the data."""
import itertools

import pytest
import torch

import pixelrnn
from conftest import error_of, random_images, tiny
from pixelrnn.datasets import load_splits
from pixelrnn.evaluate import evaluate
from pixelrnn.options import parameter_count
from pixelrnn.train import TrainConfig, run

CORES = [dict(), dict(core="spatial", batch_norm=False, cell="lstm"), dict(mode="many-to-one", window=2)]
EVERY_IMAGE = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).reshape(16, 1, 2, 2)


def _id(config):
    return "-".join(f"{k}={v}" for k, v in config.items()) or "vector"


def _sharp(model):
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)
    return model


def _model(**config):
    model = _sharp(tiny(height=2, width=2, classes=3, **config))
    with torch.no_grad():  # batch norm's running statistics, for every class
        for c in range(3):
            model(random_images(model, batch=8), labels=c)
    model.eval()
    model.set_class_counts(torch.tensor([1.0, 2.0, 5.0]))
    return model


@pytest.mark.parametrize("config", CORES, ids=_id)
def test_each_class_and_the_marginal_are_distributions_over_all_images(config):
    model = _model(**config)
    with torch.no_grad():
        for c in range(3):
            assert model.log_prob(EVERY_IMAGE, labels=c).sum(dim=(1, 2, 3)).exp().sum().item() == pytest.approx(1.0, abs=1e-5)
        assert model.log_prob(EVERY_IMAGE).sum(dim=(1, 2, 3)).exp().sum().item() == pytest.approx(1.0, abs=1e-5)
        per_class = torch.stack([model.log_prob(EVERY_IMAGE, labels=c).sum(dim=(1, 2, 3)) for c in range(3)])
    assert (per_class[0] - per_class[1]).abs().max() > 0.1  # the class changes the distribution


@pytest.mark.parametrize("config", CORES + [dict(values="8bit", channels=3)], ids=_id)
def test_the_marginal_is_logsumexp_of_prior_plus_conditional_summed_by_hand(config):
    # in float64: the sharp 8-bit model's float32 log-probabilities differ by up to 1e-2 nats between batch
    # shapes on some CPUs (differences of logistic CDFs), which is rounding, not the marginal's arithmetic
    model = _model(**config).double()
    x = random_images(model, batch=5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        marginal = model.log_prob(x).sum(dim=(1, 2, 3))
        by_hand = torch.stack([
            torch.stack([model.class_log_prior[c] + model.log_prob(image[None], labels=c).sum() for c in range(3)]).logsumexp(0)
            for image in x
        ])  # fmt: skip
    torch.testing.assert_close(marginal, by_hand, rtol=0, atol=1e-6)
    assert torch.allclose(model.class_log_prior.exp(), torch.tensor([1 / 8, 2 / 8, 5 / 8], dtype=torch.float64))


@pytest.mark.parametrize("config", CORES, ids=_id)
def test_every_class_and_the_marginal_are_causal(config):
    model = _model(**config)
    base_image = random_images(model, batch=1, generator=torch.Generator().manual_seed(1))
    order = lambda lp: model.to_tokens(lp).flatten()  # noqa: E731 - the values in the model's order
    with torch.no_grad():
        for labels in (0, 1, 2, None):
            base = order(model.log_prob(base_image, labels=labels))
            for position in range(4):
                changed = order(base_image).clone()
                changed[position] = 1 - changed[position]
                after = order(model.log_prob(model.to_image(changed.reshape(1, model.num_tokens, model.token_size)), labels=labels))
                torch.testing.assert_close(after[:position], base[:position], rtol=0, atol=1e-5)


def test_generate_draws_each_class_from_its_own_distribution_and_classes_from_the_prior():
    model = _model()
    with torch.no_grad():
        exact = {c: model.log_prob(EVERY_IMAGE, labels=c).sum(dim=(1, 2, 3)).exp() for c in (2,)}
        exact[None] = model.log_prob(EVERY_IMAGE).sum(dim=(1, 2, 3)).exp()
    codes = lambda images: (images.reshape(-1, 4) * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()  # noqa: E731
    for labels, probabilities in exact.items():
        steps = [pixelrnn.last(pixelrnn.generate(model, n=1024, seed=seed, labels=labels)) for seed in range(8)]
        frequency = torch.bincount(codes(torch.cat([s.image for s in steps])), minlength=16).float() / (8 * 1024)
        assert (frequency - probabilities).abs().max().item() < 0.025, (labels, frequency, probabilities)  # 5 sigma of 8,192 draws
        drawn = torch.tensor([label for s in steps for label in s.labels])
        if labels is None:
            shares = torch.bincount(drawn, minlength=3).float() / len(drawn)
            assert (shares - torch.tensor([1 / 8, 2 / 8, 5 / 8])).abs().max() < 0.025, shares
        else:
            assert bool((drawn == labels).all())


def test_labels_one_per_image_and_their_errors():
    model = _model()
    assert pixelrnn.last(pixelrnn.generate(model, n=3, seed=0, labels=[2, 0, 1])).labels == [2, 0, 1]
    assert "3 class indices from 0 to 2" in error_of(lambda: pixelrnn.generate(model, n=3, labels=[0, 5, 1]))
    assert "class index" in error_of(lambda: pixelrnn.generate(model, n=3, labels="cat"))
    assert "pass labels" in error_of(lambda: model(EVERY_IMAGE))
    plain = tiny(height=2, width=2)
    assert "no classes" in error_of(lambda: pixelrnn.generate(plain, n=2, labels=0))
    assert "no classes" in error_of(lambda: plain.log_prob(EVERY_IMAGE, labels=0))
    assert pixelrnn.last(pixelrnn.generate(plain, n=2, seed=0)).labels is None


def test_complete_draws_the_class_from_its_posterior_given_the_kept_rows():
    model = _model()
    image = EVERY_IMAGE[6]  # rows [0 1] and [1 0]
    with torch.no_grad():
        joint = torch.stack([model.log_prob(image[None], labels=c)[0, :, :1].sum() for c in range(3)]) + model.class_log_prior
    posterior = torch.softmax(joint.double(), 0)
    drawn = torch.tensor(pixelrnn.last(pixelrnn.complete(model, image, keep_rows=1, n=1024, seed=4)).labels)
    shares = torch.bincount(drawn, minlength=3).double() / len(drawn)
    assert (shares - posterior).abs().max() < 0.08, (shares, posterior)  # 5 sigma of 1,024 draws
    step = pixelrnn.last(pixelrnn.complete(model, image, keep_rows=1, n=3, seed=0, labels=[0, 1, 2]))
    assert step.labels == [0, 1, 2] and torch.equal(step.image[:, :, :1], image[None, :, :1].expand(3, -1, -1, -1))
    restored = pixelrnn.last(pixelrnn.reconstruct(model, image))
    with torch.no_grad():
        likeliest = int(model.class_log_prob(image[None]).argmax())
    assert restored.labels == [likeliest]


@pytest.mark.parametrize("config", CORES, ids=_id)
def test_the_carried_state_matches_the_parallel_pass_for_every_class(config):
    model = _model(**config)
    x = random_images(model, batch=3, generator=torch.Generator().manual_seed(2))
    labels = model.labels_for([2, 0, 1], 3)
    with torch.no_grad():
        parallel = model(x, labels=labels)
        tokens, state, previous = model.to_tokens(x), None, None
        for t in range(model.num_tokens):
            context, state = model.context_step(previous, state, batch_size=3, labels=labels)
            torch.testing.assert_close(model.token_params(context, tokens[:, t]), parallel[:, t], rtol=1e-4, atol=1e-5)
            previous = tokens[:, t]


def test_a_class_conditional_model_saves_loads_strictly_and_counts_its_parameters(tmp_path):
    model = _model(class_names=["cat", "dog", "<b>owl</b>"])
    model.save_pretrained(tmp_path / "m")
    loaded = pixelrnn.PixelRNN.from_pretrained(tmp_path / "m")
    assert loaded.config["class_names"] == ["cat", "dog", "<b>owl</b>"] and loaded.config["classes"] == 3
    torch.testing.assert_close(loaded.class_log_prior, model.class_log_prior)
    with torch.no_grad():
        torch.testing.assert_close(loaded.log_prob(EVERY_IMAGE), model.log_prob(EVERY_IMAGE))
    for config in CORES:
        built = tiny(classes=4, **config)
        assert parameter_count(built.config) == sum(p.numel() for p in built.parameters())


@pytest.mark.parametrize("bad, words", [
    (dict(classes=2, class_names=["a"]), "1 names for 2 classes"),
    (dict(classes=2, class_names=["a", "a"]), "distinct"),
    (dict(classes=2, class_names=["a", "\x1b[31m"]), "printable"),
    (dict(classes=2, class_names="ab"), "list of names"),
    (dict(classes=1001), "classes must be between 0 and 1000"),
])  # fmt: skip
def test_bad_class_options_are_refused_clearly(bad, words):
    assert words in error_of(lambda: tiny(**bad))


def test_evaluate_gives_the_marginal_the_conditional_and_the_classifier():
    model = _model()
    labels = torch.tensor([0, 1, 2, 2] * 4)
    figures = evaluate(model, EVERY_IMAGE, batch_size=5, labels=labels)
    with torch.no_grad():
        marginal = -model.log_prob(EVERY_IMAGE).sum(dim=(1, 2, 3)).mean().item()
        given = -model.log_prob(EVERY_IMAGE, labels=labels).sum(dim=(1, 2, 3)).mean().item()
        accuracy = (model.class_log_prob(EVERY_IMAGE).argmax(1) == labels).float().mean().item()
    assert figures["nll_nats"] == pytest.approx(marginal, abs=1e-4)
    assert figures["conditional_nll_nats"] == pytest.approx(given, abs=1e-4)
    assert figures["class_accuracy"] == pytest.approx(accuracy)
    assert evaluate(model, EVERY_IMAGE)["nll_nats"] == pytest.approx(marginal, abs=1e-4)


def test_sources_with_labels_and_a_folder_of_class_subfolders(tmp_path):
    from PIL import Image

    config = tiny(height=8, width=8).config
    digits = load_splits("digits", config, labels=True)
    assert digits.class_names == [str(d) for d in range(10)] and len(digits.train_labels) == len(digits.train)
    for name, shade in (("light", 220), ("dark", 20)):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("L", (8, 8), shade + i).save(tmp_path / name / f"{i}.png")
    folder = load_splits(str(tmp_path), config, copies=8, labels=True)
    assert folder.class_names == ["dark", "light"]
    assert folder.train[folder.train_labels == 0].mean() < folder.train[folder.train_labels == 1].mean()
    Image.new("L", (8, 8), 0).save(tmp_path / "loose.png")
    assert "one subfolder per class" in error_of(lambda: load_splits(str(tmp_path), config, labels=True))
    assert "has no labels" in error_of(lambda: load_splits("photos", tiny(height=8, width=8).config, labels=True))


def test_train_labels_makes_a_class_conditional_model_and_refuses_a_mismatch(tmp_path):
    settings = dict(data="digits", epochs=1, batch_size=64, max_steps=3, out=str(tmp_path / "run"), labels=True, test=True)
    model_config = dict(height=8, width=8, hidden_size=8, head_size=8)
    list(run(TrainConfig(**settings), model_config))
    trained = pixelrnn.PixelRNN.from_pretrained(tmp_path / "run")
    assert trained.config["classes"] == 10 and trained.config["class_names"][3] == "3"
    counts = load_splits("digits", trained.config, labels=True).class_counts().double()
    torch.testing.assert_close(trained.class_log_prior.double(), (counts / counts.sum()).log(), rtol=0, atol=1e-6)
    card = (tmp_path / "run" / "README.md").read_text()
    assert "10 classes: 0, 1, 2" in card and "test_conditional_nll_nats" in card
    assert "add --labels" in error_of(lambda: list(run(TrainConfig(**{**settings, "labels": False, "out": str(tmp_path / "b")}),
                                                       {**model_config, "classes": 10})))  # fmt: skip
    assert "leave --classes out" in error_of(lambda: list(run(TrainConfig(**{**settings, "out": str(tmp_path / "c")}),
                                                              {**model_config, "classes": 3})))  # fmt: skip


def test_a_hub_data_set_with_a_class_label_column_gives_labels(tmp_path):
    pytest.importorskip("datasets")
    from PIL import Image

    for split, count in (("train", 6), ("test", 2)):
        for name, shade in (("dark", 10), ("light", 240)):
            (tmp_path / "copy" / split / name).mkdir(parents=True)
            for i in range(count):
                Image.new("L", (12, 12), shade).save(tmp_path / "copy" / split / name / f"{i}.png")
    splits = load_splits(f"hf:{tmp_path / 'copy'}", tiny(height=8, width=8).config, labels=True)
    assert splits.class_names == ["dark", "light"]
    for images, labels in ((splits.train, splits.train_labels), (splits.valid, splits.valid_labels), (splits.test, splits.test_labels)):
        assert len(images) == len(labels) and bool(((images.mean(dim=(1, 2, 3)) > 0.5) == (labels == 1)).all())
