import json

import pytest
import torch
from safetensors.torch import save_file

import pixelrnn
from conftest import random_images, settle_batch_norm, tiny


@pytest.mark.parametrize("config", [dict(), dict(values="8bit", channels=3, cell="lstm", mode="many-to-one", bidirectional=True)])
def test_save_and_load_round_trip_is_bit_exact(tmp_path, config):
    model = settle_batch_norm(tiny(**config))
    model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = pixelrnn.PixelRNN.from_pretrained(tmp_path / "ckpt")
    assert not loaded.training
    assert loaded.config == model.config
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text()) == model.config
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    x = random_images(model)
    assert torch.equal(model.log_prob(x), loaded.log_prob(x))
    assert torch.equal(list(pixelrnn.generate(model, 3, seed=1))[-1].image, list(pixelrnn.generate(loaded, 3, seed=1))[-1].image)


def test_model_card_has_hub_metadata_and_usage(tmp_path):
    tiny().save_pretrained(tmp_path, model_card_kwargs=dict(metrics={"nll_nats": 84.5}, data="binarized-mnist"))
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: pixelrnn" in card and "- pixelrnn" in card
    assert "| nll_nats | 84.5 |" in card and "pixelrnn.PixelRNN.from_pretrained" in card


def test_pickle_checkpoints_are_refused(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(pixelrnn.PixelRNNError, match="refusing to load pickle checkpoint file.*pytorch_model.bin"):
        pixelrnn.PixelRNN.from_pretrained(tmp_path)


def test_weights_that_do_not_match_the_config_are_a_clear_error(tmp_path):
    tiny(hidden_size=8).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["hidden_size"] = 16
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(pixelrnn.PixelRNNError, match="do not match its config.json: .*wrong shapes"):
        pixelrnn.PixelRNN.from_pretrained(tmp_path)


def test_missing_and_extra_tensors(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path)
    state = {k: v for k, v in model.state_dict().items() if k != "start"}
    state["surprise"] = torch.zeros(1)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(pixelrnn.PixelRNNError, match="missing tensors: start; unexpected tensors: surprise"):
        pixelrnn.PixelRNN.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda d: (d / "config.json").write_text("{not json"), "cannot be read as JSON"),
        (lambda d: (d / "config.json").write_text("[1, 2]"), "must hold a JSON object"),
        (lambda d: (d / "config.json").write_text('{"vocab_size": 5}'), "not a pixelrnn config: unknown option(s) vocab_size"),
        (lambda d: (d / "config.json").write_text('{"height": -1}'), "height must be between 1 and 1024"),
        (lambda d: (d / "config.json").unlink(), "no config.json"),
        (lambda d: (d / "model.safetensors").write_bytes(b"garbage!" * 4), "damaged or not a safetensors file"),
        (lambda d: (d / "model.safetensors").unlink(), "no model.safetensors"),
    ],
)
def test_damaged_checkpoints_are_clear_errors(tmp_path, damage, words):
    tiny().save_pretrained(tmp_path)
    damage(tmp_path)
    with pytest.raises(pixelrnn.PixelRNNError) as info:
        pixelrnn.PixelRNN.from_pretrained(tmp_path)
    assert words in str(info.value)


def test_a_file_or_an_unknown_name_is_a_clear_error(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    with pytest.raises(pixelrnn.PixelRNNError, match="is a file; give the checkpoint folder"):
        pixelrnn.PixelRNN.from_pretrained(path)
    with pytest.raises(pixelrnn.PixelRNNError, match="neither a checkpoint folder on this machine nor a Hub repo id"):
        pixelrnn.PixelRNN.from_pretrained("not a / valid // id")


def test_saving_overwrites_whole_files_only(tmp_path):
    first = tiny()
    first.save_pretrained(tmp_path)
    second = tiny()
    second.save_pretrained(tmp_path)
    assert not list(tmp_path.glob(".*.tmp"))
    loaded = pixelrnn.PixelRNN.from_pretrained(tmp_path)
    assert torch.equal(loaded.start, second.start)
