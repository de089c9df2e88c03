import pytest
import torch

import pixelrnn
from conftest import error_of, random_images, settle_batch_norm, tiny

CONFIGS = [
    dict(),
    dict(step="pixel"),
    dict(mode="many-to-one", bidirectional=True, cell="lstm", window=2),
    dict(values="8bit", channels=3, row_head="independent"),
    dict(values="8bit", channels=3, core="spatial", batch_norm=False, cell="lstm"),
]


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_generate_yields_one_step_per_row_in_order(config):
    model = settle_batch_norm(tiny(**config))
    steps = list(pixelrnn.generate(model, n=3, seed=0))
    assert [s.row for s in steps] == list(range(4))
    assert steps[-1].done and not steps[0].done
    for step in steps:
        assert step.image.shape == (3, model.config["channels"], 4, 3)
        assert step.image[:, :, step.row + 1 :].eq(0).all()  # rows not produced yet hold 0
        assert step.loss is None and step.row_loss is None
    for earlier, later in zip(steps, steps[1:]):
        torch.testing.assert_close(later.image[:, :, : earlier.row + 1], earlier.image[:, :, : earlier.row + 1])


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_reconstruct_losses_equal_the_parallel_log_prob(config):
    model = settle_batch_norm(tiny(**config))
    x = random_images(model, batch=1)
    steps = list(pixelrnn.reconstruct(model, x[0]))
    with torch.no_grad():
        log_prob = model.log_prob(x)[0]  # (C, H, W)
    for step in steps:
        assert step.row_loss == pytest.approx(-log_prob[:, step.row].mean().item(), rel=1e-5)
    last = steps[-1]
    assert last.nll == pytest.approx(-log_prob.sum().item(), rel=1e-5)
    assert last.loss * x.numel() == pytest.approx(last.nll, rel=1e-5)
    assert last.bits_per_dim == pytest.approx(last.nll / (x.numel() * 0.6931471805599453), rel=1e-6)
    assert len(last.row_losses) == 4


def test_reconstruct_shows_the_most_likely_value_and_counts_errors():
    model = settle_batch_norm(tiny(width=5))
    x = random_images(model, batch=1)
    last = list(pixelrnn.reconstruct(model, x))[-1]
    with torch.no_grad():
        greedy = (model(x)[..., 0] > 0).float()  # binary: logit > 0 is the likelier value
    torch.testing.assert_close(model.to_tokens(last.image), greedy)
    assert last.error_rate == pytest.approx((last.image != x).float().mean().item())


def test_complete_keeps_the_first_rows_and_reports_losses():
    model = settle_batch_norm(tiny(height=6, width=4))
    x = random_images(model, batch=1)[0]
    steps = list(pixelrnn.complete(model, x, keep_rows=3, seed=1, n=4))
    assert len(steps) == 6
    last = steps[-1]
    assert last.image.shape == (4, 1, 6, 4)
    assert last.image[:, :, :3].eq(x[:, :3]).all()
    assert steps[2].error_rate == 0.0  # kept rows are exact
    with torch.no_grad():
        kept = -model.log_prob(x[None])[0, :, :3].mean(dim=(0, 2))
    assert steps[0].row_loss == pytest.approx(kept[0].item(), rel=1e-5)
    assert all(s.loss is not None and s.nll is not None for s in steps)


def test_seed_reproduces_and_greedy_is_deterministic():
    model = settle_batch_norm(tiny())
    a = list(pixelrnn.generate(model, n=5, seed=7))[-1].image
    b = list(pixelrnn.generate(model, n=5, seed=7))[-1].image
    c = list(pixelrnn.generate(model, n=5, seed=8))[-1].image
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1 = list(pixelrnn.generate(model, n=2, greedy=True))[-1].image
    g2 = list(pixelrnn.generate(model, n=2, greedy=True))[-1].image
    assert torch.equal(g1, g2) and torch.equal(g1[0], g1[1])


def test_low_temperature_approaches_greedy():
    model = settle_batch_norm(tiny())
    greedy = list(pixelrnn.generate(model, n=64, greedy=True))[-1].image
    cold = list(pixelrnn.generate(model, n=64, temperature=0.01, seed=0))[-1].image
    assert (cold == greedy).float().mean() > 0.97


def test_sampling_leaves_training_mode_as_it_was():
    model = tiny().train()
    list(pixelrnn.generate(model, n=2, seed=0))
    assert model.training


def test_complete_accepts_a_real_image_and_the_bad_requests_are_clear():
    import numpy as np

    model = tiny()
    picture = np.zeros((20, 15), dtype=np.uint8)
    assert len(list(pixelrnn.complete(model, picture, keep_rows=2, seed=0))) == 4
    with pytest.raises(pixelrnn.PixelRNNError, match="keep_rows must be a whole number from 0 to 4"):
        pixelrnn.complete(model, picture, keep_rows=9)
    with pytest.raises(pixelrnn.PixelRNNError, match="temperature must be between"):
        pixelrnn.generate(model, n=2, temperature=0)
    with pytest.raises(pixelrnn.PixelRNNError, match="number of images"):
        pixelrnn.generate(model, n=0)
    with pytest.raises(pixelrnn.PixelRNNError, match="not an image"):
        pixelrnn.reconstruct(model, b"junk")


def test_no_inference_mode_leaks_across_yields_and_images_are_ordinary_tensors():
    import threading

    model = settle_batch_norm(tiny())
    steps = pixelrnn.generate(model, n=2, seed=0)
    first = next(steps)
    assert not torch.is_inference_mode_enabled()
    assert not first.image.is_inference()
    seen = []
    worker = threading.Thread(target=lambda: seen.append((next(steps).row, torch.is_inference_mode_enabled())))
    worker.start()
    worker.join()
    assert seen == [(1, False)]  # resumed on another thread, which is left as it was
    loss = -model.log_prob(first.image).sum()  # usable in training, with gradients
    loss.backward()


def test_each_image_of_a_batch_gets_its_own_sampling_loss():
    model = settle_batch_norm(tiny(height=5, width=4))
    images = random_images(model, batch=3)
    *_, together = pixelrnn.reconstruct(model, images)
    alone = [list(pixelrnn.reconstruct(model, image))[-1].loss for image in images]
    assert together.losses == pytest.approx(alone, abs=1e-5)
    assert sum(together.losses) / 3 == pytest.approx(together.loss, abs=1e-5)


HEADS = [
    dict(values="8bit", channels=3, width=4, mixtures=3),
    dict(values="8bit", channels=3, width=4, head_layers=3, direct_connections=False),
    dict(values="8bit", channels=3, step="pixel", head_size=2),
    dict(width=6, head_layers=2),
    dict(width=6, head_size=3),  # fewer hidden units than degrees: some degrees have none
    dict(width=1),
    dict(core="spatial", batch_norm=False, values="8bit", channels=3, width=5, mixtures=3, head_layers=2),
    dict(core="spatial", batch_norm=False, width=6, cell="gru", kernel_size=5),
]


def _draw_with_oracle(model, temperature, greedy, seed=0):
    """One token from `sample_token`, and what teacher forcing says it should have been drawn from."""
    with torch.inference_mode():
        context = torch.randn_like(model.context_step(None, None, batch_size=5)[0])  # (5, hidden) or (5, W, hidden)
        token, params = model.sample_token(context, temperature, greedy, torch.Generator().manual_seed(seed))
        teacher = model.token_params(context, token)  # the parallel pass, given the values drawn
    values = model.config["values"]
    if greedy:
        return token, params, teacher, pixelrnn.distributions.mode(teacher, values)
    shape = (5, model.token_size, pixelrnn.distributions.noise_size(values, model.config["mixtures"]))
    noise = pixelrnn.distributions.prepare_noise(torch.rand(shape, generator=torch.Generator().manual_seed(seed)), values)
    return token, params, teacher, pixelrnn.distributions.sample(teacher, noise, values, temperature)


@pytest.mark.parametrize("greedy", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("config", HEADS, ids=str)
def test_row_head_draws_each_value_from_its_teacher_forced_distribution(config, temperature, greedy):
    model = settle_batch_norm(tiny(**config))
    with torch.no_grad():
        for p in model.head.parameters():
            p.mul_(3)  # sharper conditionals: a wrong parameter changes the draw
    token, params, teacher, redrawn = _draw_with_oracle(model, temperature, greedy)
    torch.testing.assert_close(params, teacher, rtol=1e-5, atol=1e-5)
    assert torch.equal(token, redrawn)  # the same noise on the exact parameters picks the same levels


@pytest.mark.parametrize("config", [dict(), dict(core="spatial", batch_norm=False)], ids=str)
def test_row_head_sampling_follows_weights_changed_in_place(config):
    model = settle_batch_norm(tiny(values="8bit", channels=3, **config))
    _draw_with_oracle(model, 1.0, False)  # the sampling plan is built here
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(torch.randn_like(p))  # an optimizer step, say
    token, params, teacher, redrawn = _draw_with_oracle(model, 1.0, False)
    tolerance = 1e-4 if config else 1e-5  # the spatial head's deeper residual sums round a little more; a stale plan is off by O(1)
    torch.testing.assert_close(params, teacher, rtol=tolerance, atol=tolerance)
    assert torch.equal(token, redrawn)


@pytest.mark.parametrize("seed", [10**20, -1, 2**64, 2**70, 1e20, 2.5, "7", True, float("nan")])
def test_seeds_outside_64_bits_are_refused_with_the_range(seed):
    model = tiny()
    image = random_images(model, batch=1)[0]
    for call in (lambda: pixelrnn.generate(model, n=1, seed=seed), lambda: pixelrnn.complete(model, image, 1, seed=seed)):
        assert "seed must be a whole number from 0 to 2**64 - 1 (18446744073709551615)" in error_of(call)


def test_seeds_at_the_ends_of_the_range_and_whole_floats_work():
    model = settle_batch_norm(tiny())
    top = list(pixelrnn.generate(model, n=2, seed=2**64 - 1))[-1].image
    assert top.shape == (2, 1, 4, 3)
    assert torch.equal(list(pixelrnn.generate(model, n=2, seed=7.0))[-1].image, list(pixelrnn.generate(model, n=2, seed=7))[-1].image)
    assert list(pixelrnn.generate(model, n=2, seed=0))[-1].done


def test_a_batch_of_images_is_completed_one_completion_each():
    model = settle_batch_norm(tiny(height=5, width=4))
    images = random_images(model, batch=3)
    *_, last = pixelrnn.complete(model, images, keep_rows=2, seed=0)
    assert last.image.shape == images.shape
    assert torch.equal(last.image[:, :, :2], images[:, :, :2])
    assert "one completion each" in error_of(lambda: pixelrnn.complete(model, images, keep_rows=2, n=2))


@pytest.mark.parametrize("config", [dict(width=5), dict(width=5, core="spatial", batch_norm=False, values="8bit", channels=3)], ids=str)
def test_a_row_head_loop_that_cannot_be_scripted_warns_once_and_draws_the_same(monkeypatch, config):
    from pixelrnn import scripting

    model = settle_batch_norm(tiny(**config))
    scripted = list(pixelrnn.generate(model, 3, seed=4))[-1].image
    monkeypatch.setattr(scripting, "_scripted", {})

    def refuse(function):
        raise RuntimeError("no TorchScript here")

    monkeypatch.setattr(torch.jit, "script", refuse)
    with pytest.warns(RuntimeWarning, match="could not be scripted .*RuntimeError: no TorchScript here.*slower"):
        in_python = list(pixelrnn.generate(model, 3, seed=4))[-1].image
    assert torch.equal(in_python, scripted)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process, not per draw
        list(pixelrnn.generate(model, 3, seed=4))
