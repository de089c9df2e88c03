import functools
import json

import pytest
import torch
from safetensors.torch import save_file

import pixelrnn
from conftest import error_of, random_images, settle_batch_norm, tiny


@pytest.mark.parametrize("config", [dict(), dict(values="8bit", channels=3, cell="lstm", mode="many-to-one", bidirectional=True),
                                    dict(values="8bit", channels=3, core="spatial", batch_norm=False, num_layers=2)])  # fmt: skip
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


def _record_builds(monkeypatch) -> list:
    """The device type of every PixelRNN built from here on ('meta' for the checkpoint's shape check)."""
    builds, build = [], pixelrnn.PixelRNN.__init__

    @functools.wraps(build)
    def recording(self, *args, **kwargs):
        builds.append(torch.empty(0).device.type)
        build(self, *args, **kwargs)

    monkeypatch.setattr(pixelrnn.PixelRNN, "__init__", recording)
    return builds


def test_a_lower_parameter_limit_refuses_before_anything_is_built_or_read(tmp_path, monkeypatch):
    model = tiny()
    model.save_pretrained(tmp_path)
    count = pixelrnn.count_parameters(model)
    assert pixelrnn.PixelRNN.from_pretrained(tmp_path, max_parameters=count).config == model.config
    (tmp_path / "model.safetensors").write_bytes(b"never read")  # a read would say "damaged"
    builds = _record_builds(monkeypatch)
    message = error_of(lambda: pixelrnn.PixelRNN.from_pretrained(tmp_path, max_parameters=count - 1))
    assert f"this configuration has {count:,} parameters (limit {count - 1:,})" in message
    assert builds == []


def test_a_huge_config_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    tiny().save_pretrained(tmp_path)
    huge = dict(cell="lstm", num_layers=16, bidirectional=True, mode="many-to-one", hidden_size=5792)
    (tmp_path / "config.json").write_text(json.dumps(huge))
    builds = _record_builds(monkeypatch)
    assert "has 12,684,211,880 parameters (limit 268,435,456)" in error_of(lambda: pixelrnn.PixelRNN.from_pretrained(tmp_path))
    assert builds == []


@pytest.mark.parametrize("big, builds", [(False, ["cpu"]), (True, ["meta"])], ids=["small", "big"])
def test_weights_are_compared_with_the_config_from_the_header_before_they_are_read(tmp_path, monkeypatch, big, builds):
    from pixelrnn import checkpoint

    tiny(hidden_size=8).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    changed = dict(config, cell="lstm", num_layers=2, hidden_size=2048, head_size=2048) if big else dict(config, hidden_size=16)
    assert (pixelrnn.PixelRNN.parameter_count(changed) > checkpoint.META_CHECK_ABOVE) is big
    (tmp_path / "config.json").write_text(json.dumps(changed))
    monkeypatch.setattr(checkpoint, "_read_weights", lambda path: pytest.fail("the weights were read"))
    built = _record_builds(monkeypatch)
    assert "wrong shapes" in error_of(lambda: pixelrnn.PixelRNN.from_pretrained(tmp_path))
    assert built == builds  # a big model: names and shapes only, no memory, no initialisation


def _nested(depth):
    return '{"height": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize(
    "text, words",
    [
        (_nested(100_000), "config.json is nested too deeply to be a pixelrnn config"),
        (_nested(500), "height must be a whole number, got [[[[[[[...]]]]]]]"),
        ('{"height": ' + "7" * 5000 + "}", "config.json holds a number too long to be a pixelrnn option"),
        ('{"height": ' + "7" * 4000 + "}", "height must be between 1 and 1024, got a whole number of 4000 digits"),
        ('{"height": 1e999}', "height must be a whole number, got inf"),
        ('{"height": 28' + " " * 2**20 + "}", "config.json is larger than 1024 KiB: it is not a pixelrnn config"),
        ('{"' + "x" * 1000 + '": 1}', "unknown option(s) " + "x" * 40 + "... (expected some of"),
        (b"\xff\xfe{}", "cannot be read as JSON"),
    ],
    ids=["deep", "nested", "5000-digits", "4000-digits", "infinite", "huge", "long-name", "not-utf8"],
)
def test_hostile_configs_are_clear_errors(tmp_path, text, words):
    tiny().save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    message = error_of(lambda: pixelrnn.PixelRNN.from_pretrained(tmp_path))
    assert message is not None and words in message
    assert len(message) < 600


@pytest.mark.parametrize(
    "name, words",
    [
        ("weights/binarized-mnst", "there is no folder 'weights/binarized-mnst' on this machine (did you mean "
         "'weights/binarized-mnist'?); hf:weights/binarized-mnst loads the Hub repo of that name"),
        ("./foo", "there is no folder './foo' on this machine"),
        ("../x", "there is no folder '../x' on this machine"),
        ("/no/such/folder", "there is no folder '/no/such/folder' on this machine"),
        ("~/no-such-folder-here", "there is no folder '~/no-such-folder-here' on this machine"),
    ],
)
def test_a_local_path_that_does_not_exist_is_said_at_once_without_the_hub(tmp_path, monkeypatch, name, words):
    from pixelrnn import hub

    (tmp_path / "weights" / "binarized-mnist").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hub, "fetch", lambda *a, **k: pytest.fail("the Hub was asked"))
    assert error_of(lambda: pixelrnn.PixelRNN.from_pretrained(name)) == words
    assert error_of(lambda: pixelrnn.PixelRNN.from_pretrained(tmp_path / "weights" / "binarized-mnst")) is not None


@pytest.mark.parametrize(
    "here, name",
    [(None, "alice/tiny"), ("photos", "alice/tiny"), ("tinyllama", "alice/tiny"), ("tiny-2", "alice/tiny"),
     ("tiny", "hf:alice/tiny"), ("tinny", "hf:alice/tiny")],
)  # fmt: skip
def test_a_name_that_reads_as_a_repo_id_still_goes_to_the_hub(tmp_path, monkeypatch, here, name):
    from pixelrnn import hub

    if here:  # a folder alice here, holding other things, a sibling model or (hf:) the very name
        (tmp_path / "alice" / here).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    asked = []
    monkeypatch.setattr(hub, "fetch", lambda repo_id, filename, *a, **k: asked.append((repo_id, filename)) or pytest.skip())
    with pytest.raises(pytest.skip.Exception):
        pixelrnn.PixelRNN.from_pretrained(name)
    assert asked == [("alice/tiny", "config.json")]


def test_every_saved_file_gets_the_permissions_of_the_users_umask(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        tiny().save_pretrained(tmp_path / "ckpt")
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "ckpt").iterdir()}
    assert modes == {"README.md": 0o644, "config.json": 0o644, "model.safetensors": 0o644}
