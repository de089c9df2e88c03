"""The app through its API, as gradio_client sees it: streaming, agreement with the library, errors, load."""
import os
import subprocess
import sys
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from app_harness import CLASS_NAMES, EXAMPLES, app_fast, ROOT, assert_same_picture, free_port, library_model, pixels, served
from conftest import png_bytes
from app_support import pictures
from app_support.labels import COMPLETE, RESTORE
from PIL import Image

import pixelrnn

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pandas 3 warns inside Gradio's queue


@pytest.fixture(scope="module")
def app():
    return served()


@pytest.fixture
def client(app):
    return Client(app[1], verbose=False)


def reconstruct_args(path, how=RESTORE, keep_rows=14, sampling="greedy", temperature=1.0, seed=0, invert=True):
    return (handle_file(str(path)), invert, how, keep_rows, sampling, temperature, seed)


def train_args(files=(), data="digits", size=8, steps=15, **options) -> dict:
    """The /train endpoint's arguments by name: the model options are the library's own keywords."""
    settings = dict(channels=1, values="binary", cell="gru", hidden_size=16, num_layers=1, bidirectional=False,
                    mode="many-to-many", window=4, batch_norm=True, row_head="autoregressive")  # fmt: skip
    settings.update(options)
    return dict(files=[handle_file(str(f)) for f in files], data=data, steps=steps, height=size, **settings)


def streamed_rows(pictures, steps, model) -> list:
    """The row of each streamed picture: each must show exactly the library's image after that row.

    The app paces its frames (a person sees about 12 a second), so it may skip rows, but never the first
    or the last, and never goes back.
    """
    rows, start = [], 0
    for picture in pictures:
        got = pixels(picture)
        for row in range(start, len(steps)):
            if np.array_equal(got, np.asarray(pixelrnn.to_pil(steps[row].image, model).convert("RGB"))):
                rows.append(row)
                start = row + 1
                break
        else:
            raise AssertionError(f"frame {len(rows)} shows no row after row {start - 1} of the library's images")
    assert rows[0] == 0 and rows[-1] == len(steps) - 1
    return rows


# -- generate -------------------------------------------------------------------------------------------
def test_generate_streams_rows_equal_to_the_library(app, client):
    job = client.submit(4, 0.8, 7, False, api_name="/generate")
    job.result()
    frames = job.outputs()
    model = library_model()
    steps = list(pixelrnn.generate(model, fast=app_fast(), n=4, temperature=0.8, seed=7))
    streamed_rows([picture for picture, _ in frames], steps, model)
    assert all(seed_used == 7 for _, seed_used in frames)


def test_random_seed_is_reported_and_reproduces_the_images(app, client):
    picture, seed_used = client.predict(2, 1.0, 0, True, api_name="/generate")
    model = library_model()
    *_, last = pixelrnn.generate(model, fast=app_fast(), n=2, seed=int(seed_used))
    assert_same_picture(picture, last.image, model)


def test_an_rgb_model_chosen_from_the_list_generates_in_color(app, client):
    client.predict("local:rgb-8bit", api_name="/choose_model")
    picture, _ = client.predict(3, 1.0, 11, False, api_name="/generate")
    model = library_model("rgb-8bit")
    *_, last = pixelrnn.generate(model, fast=app_fast(), n=3, seed=11)
    assert_same_picture(picture, last.image, model)
    assert len(np.unique(pixels(picture).reshape(-1, 3), axis=0)) > 2


# -- reconstruct and complete -----------------------------------------------------------------------------
def test_restore_streams_rows_with_the_library_scores(app, client):
    path = EXAMPLES / "digit-7-on-paper.png"
    job = client.submit(*reconstruct_args(path), api_name="/reconstruct")
    job.result()
    frames = job.outputs()
    model = library_model()
    original = pixelrnn.load_image(path, model, invert="auto")
    steps = list(pixelrnn.reconstruct(model, original))
    rows = streamed_rows([frame[0] for frame in frames], steps, model)
    assert frames[0][1] is None  # the first frame clears the error map of the request before
    for (result, error_map, loss, nll, bits, error_rate, _), row in zip(frames, rows):
        step = steps[row]
        if error_map not in (None, {"__type__": "update"}):  # skipped between curve updates
            assert pixels(error_map).shape == pixels(result).shape
        assert float(loss) == pytest.approx(step.loss, abs=1e-4) and float(bits) == pytest.approx(step.bits_per_dim, abs=1e-4)
        assert float(nll) == pytest.approx(step.nll, abs=0.01) and float(error_rate) == pytest.approx(step.error_rate, abs=1e-4)
    # The curve and the error map are sent less often than the pictures, and always with the last row.
    expected = pictures.error_map(original, steps[-1].image, steps[-1].row, model)
    np.testing.assert_array_equal(pixels(frames[-1][1]), pixels(expected))
    plot = frames[-1][-1]
    assert [row for row, _ in plot["data"]] == list(range(28))
    np.testing.assert_allclose([loss for _, loss in plot["data"]], steps[-1].row_losses, rtol=1e-6)


def test_sampled_completion_keeps_the_first_rows_and_matches_the_library(app, client):
    path = EXAMPLES / "digit-3.png"
    job = client.submit(*reconstruct_args(path, COMPLETE, keep_rows=10, sampling="sample", temperature=0.7, seed=5), api_name="/reconstruct")
    result = job.result()[0]
    model = library_model()
    original = pixelrnn.load_image(path, model, invert="auto")
    *_, last = pixelrnn.complete(model, original, fast=app_fast(), keep_rows=10, temperature=0.7, seed=5)
    assert_same_picture(result, last.image, model)
    assert torch.equal(last.image[0, :, :10].cpu(), original[:, :10])


@pytest.mark.parametrize("example", ["digit-0-transparent.png", "digit-7-on-paper.png", "colors.png"])
def test_preview_shows_the_image_as_the_model_sees_it(app, client, example):
    sent = client.predict(handle_file(str(EXAMPLES / example)), True, api_name="/preview")
    model = library_model()
    assert_same_picture(sent, pixelrnn.load_image(EXAMPLES / example, model, invert="auto"), model)


def odd_images(folder: Path) -> dict:
    """Uploads that are images in awkward modes: each must work."""
    gray16 = Image.fromarray((np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).astype(np.uint16))
    palette = Image.new("P", (20, 20), 0)
    palette.info["transparency"] = 0
    files = {"16bit.png": gray16, "palette.png": palette, "la.png": Image.new("LA", (30, 30), (255, 128)),
             "cmyk.jpg": Image.new("CMYK", (30, 30), (0, 50, 100, 0))}  # fmt: skip
    for name, image in files.items():
        image.save(folder / name, transparency=0) if name == "palette.png" else image.save(folder / name)
    return {name: folder / name for name in files}


def test_odd_image_modes_are_accepted(app, client, tmp_path):
    model = library_model()
    for name, path in odd_images(tmp_path).items():
        sent = client.predict(handle_file(str(path)), False, api_name="/preview")
        assert_same_picture(sent, pixelrnn.load_image(path, model), model)


def bad_uploads(folder: Path) -> dict:
    """file name -> (bytes, words the message must hold)."""
    huge = Image.new("L", (8000, 8000))  # 64 million pixels, a few kB as PNG
    return {
        "notes.png": (b"these are notes, not pixels", "not an image that can be read"),
        "cut.png": (png_bytes(Image.new("L", (64, 64), 200))[:60], "not an image that can be read"),
        "empty.png": (b"", "empty"),
        "huge.png": (png_bytes(huge), "the limit is 40,000,000 pixels"),
    }


@pytest.mark.parametrize("endpoint", ["/reconstruct", "/preview"])
def test_bad_uploads_get_a_message_and_the_app_keeps_serving(app, client, tmp_path, endpoint):
    for name, (data, words) in bad_uploads(tmp_path).items():
        (tmp_path / name).write_bytes(data)
        args = reconstruct_args(tmp_path / name)
        with pytest.raises(AppError) as error:
            client.predict(*(args if endpoint == "/reconstruct" else args[:2]), api_name=endpoint)
        assert words in str(error.value) and "Traceback" not in str(error.value), name
    assert client.predict(2, 1.0, 0, False, api_name="/generate")[1] == 0


def test_an_unexpected_error_gives_a_short_message_without_internals(app, client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("internal detail at 0xdeadbeef")

    monkeypatch.setattr(app[0].pixelrnn, "generate", broken)
    with pytest.raises(AppError) as error:
        client.predict(2, 1.0, 0, False, api_name="/generate")
    assert "Something went wrong on the server (RuntimeError)" in str(error.value)
    assert "0xdeadbeef" not in str(error.value) and "Traceback" not in str(error.value)


def test_requests_out_of_bounds_get_messages(client):
    with pytest.raises(AppError, match="Value 500 is greater than maximum value 64"):
        client.predict(500, 1.0, 0, False, api_name="/generate")
    with pytest.raises(AppError, match="Value 40 is greater than maximum value 28"):
        client.predict(*reconstruct_args(EXAMPLES / "digit-3.png", COMPLETE, keep_rows=40), api_name="/reconstruct")
    with pytest.raises(AppError, match="upload an image first"):
        client.predict(None, True, RESTORE, 14, "greedy", 1.0, 0, api_name="/reconstruct")
    client.predict("local:rgb-8bit", api_name="/choose_model")  # the slider's range follows the model
    with pytest.raises(AppError, match="Value 10 is greater than maximum value 8"):
        client.predict(*reconstruct_args(EXAMPLES / "colors.png", COMPLETE, keep_rows=10), api_name="/reconstruct")


# -- models -----------------------------------------------------------------------------------------------
def test_hub_failures_say_why_and_keep_the_current_model(app, client, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network in tests
    monkeypatch.chdir(ROOT)  # a local path must not pass for a Hub id
    client.predict("local:rgb-8bit", api_name="/choose_model")
    cases = {("nobody/missing-model", "v1"): "cannot reach the Hub", ("not a repo id", ""): "not a Hub model id",
             ("tests/conftest.py", ""): "not a Hub model id",
             ("tests/fixture", ""): "cannot reach the Hub"}  # a near miss of the server's tests/fixtures: still the Hub
    for (repo, revision), words in cases.items():
        with pytest.raises(AppError, match=words) as raised:
            client.predict(repo, revision, api_name="/load_from_hub")
        assert "fixtures" not in str(raised.value)  # the server's folders are never named
    picture, _ = client.predict(2, 1.0, 4, False, api_name="/generate")
    model = library_model("rgb-8bit")
    *_, last = pixelrnn.generate(model, fast=app_fast(), n=2, seed=4)
    assert_same_picture(picture, last.image, model)  # the model chosen before is still in use


def test_a_missing_checkpoint_folder_is_explained(app, monkeypatch, tmp_path):
    monkeypatch.setenv("PIXELRNN_WEIGHTS", str(tmp_path))
    model_key, _, info, *_ = app[0].page_load("", [], None)
    assert model_key == "" and "No checkpoint found" in info
    with pytest.raises(Exception, match="No checkpoint found"):
        app[0].MODELS.get("")


def test_the_app_starts_and_explains_when_there_is_no_checkpoint(tmp_path):
    port = free_port()
    env = dict(os.environ, PIXELRNN_WEIGHTS=str(tmp_path), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in server.stdout:  # the app prints its URL once it serves
            if f":{port}" in line:
                break
        config = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30).read().decode()
        assert "No checkpoint found" in config
        with pytest.raises(AppError, match="No checkpoint found"):
            Client(f"http://127.0.0.1:{port}/", verbose=False).predict(2, 1.0, 0, False, api_name="/generate")
    finally:
        server.terminate()
        server.wait(timeout=30)


# -- load -------------------------------------------------------------------------------------------------
def test_eight_clients_at_once_all_finish(app):
    model = library_model()

    def one(seed):
        job = Client(app[1], verbose=False).submit(16, 1.0, seed, False, api_name="/generate")
        picture, _ = job.result(timeout=120)
        return seed, picture, len(job.outputs())

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    for seed, picture, frames in results:
        assert 2 <= frames <= 28
        *_, last = pixelrnn.generate(model, fast=app_fast(), n=16, seed=seed)
        assert_same_picture(picture, last.image, model)


# -- train ------------------------------------------------------------------------------------------------
def test_training_streams_its_curve_and_the_model_is_used_downloaded(app, client, tmp_path):
    job = client.submit(**train_args([EXAMPLES / "digit-3.png"], "uploads", size=8, steps=15), api_name="/train")
    curve, status, model_list, info, archive, keep_rows, samples, _, draw_keep_rows, *class_pickers = job.result(timeout=120)
    assert status.startswith("Done") and "trained in this session" in info and "8x8 gray" in info
    assert [step for step, _, series in curve["data"] if series == "train"][-1] == 15
    assert keep_rows["maximum"] == draw_keep_rows["maximum"] == 8 and samples is not None
    picture, _ = client.predict(4, 1.0, 1, False, api_name="/generate")
    with zipfile.ZipFile(archive) as zipped:
        assert {"pixelrnn-model/model.safetensors", "pixelrnn-model/config.json"} <= set(zipped.namelist())
        zipped.extractall(tmp_path)
    trained = pixelrnn.PixelRNN.from_pretrained(tmp_path / "pixelrnn-model").to(app[0].DEVICE)
    assert trained.config["height"] == 8 and trained.config["hidden_size"] == 16
    *_, last = pixelrnn.generate(trained, fast=app_fast(), n=4, seed=1)
    assert_same_picture(picture, last.image, trained)


def test_every_training_option_reaches_the_model(app, client):
    options = dict(channels=3, values="8bit", cell="lstm", hidden_size=24, num_layers=2, bidirectional=True,
                   mode="many-to-one", window=3, batch_norm=False, row_head="independent")  # fmt: skip
    client.predict(**train_args([EXAMPLES / "colors.png"], "uploads", size=6, steps=3, **options), api_name="/train")
    folder = app[0].RUNS.checkpoint(client.session_hash)
    config = pixelrnn.PixelRNN.from_pretrained(folder).config
    expected = dict(options, height=6, width=6, head_size=24)
    assert {key: config[key] for key in expected} == expected


def test_stop_ends_training_early_and_keeps_the_model(app, client):
    job = client.submit(**train_args(data="digits", size=8, steps=2000), api_name="/train")
    next(iter(job))  # the first streamed curve: training is under way
    client.predict(api_name="/stop_training")
    _, status, _, info, archive, *_ = job.result(timeout=120)
    assert status.startswith("Stopped after") and "trained in this session" in info and Path(archive).is_file()


def test_bad_training_options_get_messages(client):
    with pytest.raises(AppError, match="bidirectional"):
        client.predict(**train_args(bidirectional=True), api_name="/train")
    with pytest.raises(AppError, match="upload one or a few images"):
        client.predict(**train_args(data="uploads"), api_name="/train")
    with pytest.raises(AppError, match="Value 200 is greater than maximum value 64"):
        client.predict(**train_args(size=200), api_name="/train")


def test_push_hands_the_folder_and_token_to_the_library_and_never_shows_the_token(app, client, monkeypatch, caplog):
    calls = []

    def push(folder, repo_id, private, token):
        calls.append((Path(folder), repo_id, private, token))
        if repo_id.endswith("refused"):
            raise pixelrnn.PixelRNNError(f"the Hub refused token {token}")

    import pixelrnn.publish

    monkeypatch.setattr(pixelrnn.publish, "push", push)
    with pytest.raises(AppError, match="no model was trained"):
        client.predict("me/model", True, "hf_secret123", api_name="/push_to_hub")
    client.predict(**train_args(steps=3), api_name="/train")
    message = client.predict("me/model", False, "hf_secret123", api_name="/push_to_hub")
    folder, repo_id, private, token = calls[-1]
    assert "me/model" in message and (repo_id, private, token) == ("me/model", False, "hf_secret123")
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    with pytest.raises(AppError) as error:
        client.predict("me/refused", True, "hf_secret123", api_name="/push_to_hub")
    assert "hf_secret123" not in str(error.value) and "refused" in str(error.value)
    assert "hf_secret123" not in caplog.text


# -- draw and complete, compare -----------------------------------------------------------------------------
def test_a_drawing_is_completed_several_ways_as_the_library_does(app, client):
    path = EXAMPLES / "digit-3.png"
    drawing = {"background": None, "layers": [], "composite": handle_file(str(path))}
    client.predict("local:binarized-mnist", api_name="/choose_model")
    job = client.submit(drawing, 12, 6, 1.0, 3, api_name="/complete_drawing")
    grid, losses = job.result()
    model = library_model()
    original = pixelrnn.load_image(path, model, invert="auto")
    steps = list(pixelrnn.complete(model, original, fast=app_fast(), keep_rows=12, n=6, seed=3))
    streamed_rows([frame[0] for frame in job.outputs()], steps, model)
    assert_same_picture(grid, steps[-1].image, model)
    assert len(losses["data"]) == 6
    np.testing.assert_allclose([loss for _, loss in losses["data"]], steps[-1].losses, atol=1e-4)


def test_compare_restores_one_image_with_two_models(app, client):
    path = EXAMPLES / "colors.png"
    job = client.submit(handle_file(str(path)), False, RESTORE, 4, 0, "local:binarized-mnist", "local:rgb-8bit", api_name="/compare")
    first_loss, second_loss, curves = job.result()[2:]
    sent = [[frame[index] for frame in job.outputs() if not isinstance(frame[index], dict)] for index in (0, 1)]
    first, second = sent[0][-1], sent[1][-1]  # a picture that did not change is not sent again
    for picture, loss, name, series in ((first, first_loss, "binarized-mnist", "A"), (second, second_loss, "rgb-8bit", "B")):
        model = library_model(name)
        *_, last = pixelrnn.reconstruct(model, pixelrnn.load_image(path, model))
        assert_same_picture(picture, last.image, model)
        assert float(loss) == pytest.approx(last.loss, abs=1e-4)
        assert [row for row, _, model_name in curves["data"] if model_name == series] == list(range(model.config["height"]))


# -- class-conditional models: the class pickers (app_support/classes.py) -------------------------------------
def test_a_class_conditional_model_generates_the_class_picked(app, client):
    client.predict("local:tiny-classes", api_name="/choose_model")
    assert "batch norm\\, 3 classes;" in app[0].model_updates("local:tiny-classes")[0]  # the model line (Markdown-escaped)
    model = library_model("tiny-classes")
    picture, seed_used = client.predict(6, 1.0, 5, False, "b", api_name="/generate")  # the caption stays off the API
    *_, last = pixelrnn.generate(model, fast=app_fast(), n=6, seed=5, labels=1)
    assert_same_picture(picture, last.image, model)
    assert seed_used == 5 and last.labels == [1] * 6
    picture, _ = client.predict(6, 1.0, 5, False, api_name="/generate")  # no class sent: "any"
    *_, last = pixelrnn.generate(model, fast=app_fast(), n=6, seed=5)
    assert_same_picture(picture, last.image, model)


def test_generate_with_any_says_each_images_class_as_plain_text(app):
    frames = list(app[0].generate(5, 1.0, 2, False, "any", "local:tiny-classes"))  # what the page gets
    model = library_model("tiny-classes")
    *_, last = pixelrnn.generate(model, fast=app_fast(), n=5, seed=2)
    names = [CLASS_NAMES[label] for label in last.labels]
    assert frames[0][2] == f"row 1: {', '.join(names[:3])}\nrow 2: {', '.join(names[3:])}"
    assert all(caption == {"__type__": "update"} for *_, caption in frames[1:])  # said once, with the first frame
    first = next(app[0].generate(3, 1.0, 2, False, "<i>c</i>", "local:tiny-classes"))
    assert first[2] == "All 3 drawn as <i>c</i>."  # a Textbox: the page shows these characters, never markup


def test_draw_and_complete_as_each_class(app, client):
    path = EXAMPLES / "digit-3.png"
    drawing = {"background": None, "layers": [], "composite": handle_file(str(path))}
    client.predict("local:tiny-classes", api_name="/choose_model")
    grid, table = client.predict(drawing, 4, 9, 1.0, 3, "each class", api_name="/complete_drawing")  # not 9: one per class
    model = library_model("tiny-classes")
    original = pixelrnn.load_image(path, model, invert="auto")
    *_, last = pixelrnn.complete(model, original, fast=app_fast(), keep_rows=4, n=3, seed=3, labels=[0, 1, 2])
    assert_same_picture(grid, last.image, model)
    assert table["headers"] == ["completion", "class", "sampling loss (nats per value)"]
    assert [row[:2] for row in table["data"]] == [[1, "a"], [2, "b"], [3, "<i>c</i>"]]
    np.testing.assert_allclose([row[2] for row in table["data"]], last.losses, atol=1e-4)
    _, table = client.predict(drawing, 4, 4, 1.0, 3, "a", api_name="/complete_drawing")
    assert [row[1] for row in table["data"]] == ["a"] * 4


def test_reconstruct_restores_and_completes_as_the_class_picked(app, client):
    client.predict("local:tiny-classes", api_name="/choose_model")
    path = EXAMPLES / "digit-3.png"
    result = client.predict(*reconstruct_args(path, COMPLETE, keep_rows=3, sampling="sample", seed=4), "b", api_name="/reconstruct")[0]
    model = library_model("tiny-classes")
    original = pixelrnn.load_image(path, model, invert="auto")
    *_, last = pixelrnn.complete(model, original, fast=app_fast(), keep_rows=3, seed=4, labels=1)
    assert_same_picture(result, last.image, model)
    result, _, _, nll, *_ = client.predict(*reconstruct_args(path, keep_rows=3), "<i>c</i>", api_name="/reconstruct")  # restored as class 2
    *_, last = pixelrnn.reconstruct(model, original, labels=2)
    assert_same_picture(result, last.image, model)
    assert float(nll) == pytest.approx(last.nll, abs=0.01)


def test_a_class_that_is_not_the_models_is_a_message(app, client, monkeypatch):
    client.predict("local:tiny-classes", api_name="/choose_model")
    drawing = {"background": None, "layers": [], "composite": handle_file(str(EXAMPLES / "digit-3.png"))}
    cases = [((2, 1.0, 0, False, "d"), "/generate", "'d' is not a class of this model: choose 'any' or one of 'a', 'b'"),
             ((2, 1.0, 0, False, "each class"), "/generate", "is not a class of this model"),
             ((2, 1.0, 0, False, ["a"]), "/generate", "is a name from the class list"),
             ((drawing, 4, 4, 1.0, 0, "<b>x</b>"), "/complete_drawing", "&lt;b&gt;x&lt;/b&gt;' is not a class")]  # fmt: skip
    for args, endpoint, words in cases:
        with pytest.raises(AppError) as error:
            client.predict(*args, api_name=endpoint)
        assert words in str(error.value) and "Traceback" not in str(error.value)
    monkeypatch.setattr(app[0].limits, "MAX_COMPLETIONS", 2)  # the 3 classes no longer fit a grid
    with pytest.raises(AppError, match="this model has 3 classes and a grid here holds at most 2 completions"):
        client.predict(drawing, 4, 4, 1.0, 0, "each class", api_name="/complete_drawing")
    client.predict("local:binarized-mnist", api_name="/choose_model")
    with pytest.raises(AppError, match="this model has no classes"):
        client.predict(2, 1.0, 0, False, "a", api_name="/generate")


# -- a public Space: limits ---------------------------------------------------------------------------------
def test_a_request_past_its_time_limit_stops_with_a_message(app, client, monkeypatch):
    monkeypatch.setattr(app[0].limits, "REQUEST_SECONDS", 0.0)
    with pytest.raises(AppError, match="limit of one request"):
        client.predict(4, 1.0, 0, False, api_name="/generate")


def test_a_model_too_slow_for_the_app_is_refused_when_chosen(app, client, monkeypatch):
    import app_support.limits

    monkeypatch.setattr(app_support.limits, "MAX_STEPS_PER_IMAGE", 100)  # the 8x8 RGB model needs 8 + 192
    app[0].MODELS._loaded.clear()
    with pytest.raises(AppError, match="sequential steps to draw one image"):
        client.predict("local:rgb-8bit", api_name="/choose_model")


def test_seeds_beyond_64_bits_get_a_message(client):
    for seed in (10**20, -1):
        with pytest.raises(AppError, match="seed"):
            client.predict(2, 1.0, seed, False, api_name="/generate")


def test_closing_the_page_during_training_leaves_no_files(app, client):
    runs = app[0].RUNS
    job = client.submit(**train_args(data="digits", size=8, steps=2000), api_name="/train")
    next(iter(job))  # training is under way
    folder = runs._runs[client.session_hash].folder
    runs.end(client.session_hash)  # what the page's unload event does
    with pytest.raises(AppError):
        job.result(timeout=120)  # the session is gone: there is no model to hand back
    assert not folder.exists()


def test_a_visitors_hub_load_never_carries_the_servers_token(tmp_path):
    """The app runs with a Space secret HF_TOKEN; a visitor's /load_from_hub must reach the Hub anonymously,
    while the operator's own preset (PIXELRNN_HUB_MODELS) may use the token."""
    from hub_server import FakeHub

    hub = FakeHub().start()
    folder = tmp_path / "checkpoint"
    pixelrnn.PixelRNN(height=6, width=6, hidden_size=8, head_size=8).save_pretrained(folder)
    files = {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors", "README.md")}
    hub.add_repo("alice/public-model", files)
    hub.add_repo("alice/preset-model", files)
    port = free_port()
    env = dict(os.environ, PIXELRNN_WEIGHTS=str(tmp_path / "no-weights"), GRADIO_SERVER_NAME="127.0.0.1",
               GRADIO_SERVER_PORT=str(port), HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "hf"),
               HF_TOKEN="hf_alice_write_token", PIXELRNN_HUB_MODELS="alice/preset-model")  # fmt: skip
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in server.stdout:
            if f":{port}" in line:
                break
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict("preset:alice/preset-model", api_name="/choose_model")
        client.predict("alice/public-model", "", api_name="/load_from_hub")
        picture, _ = client.predict(1, 1.0, 0, False, api_name="/generate")
        assert pixels(picture).shape[:2] == (6, 6)
        visitor = [headers for (method, path), headers in zip(hub.requests, hub.headers) if "public-model" in path]
        operator = [headers for (method, path), headers in zip(hub.requests, hub.headers) if "preset-model" in path]
        assert visitor and all("authorization" not in headers for headers in visitor)
        assert operator and all(headers.get("authorization") == "Bearer hf_alice_write_token" for headers in operator)
    finally:
        server.terminate()
        server.wait(timeout=30)
        hub.stop()


def test_the_model_cache_forgets_what_it_kept_beside_a_dropped_model(monkeypatch, tmp_path):
    from app_support.models import Models

    for name in ("first", "second"):
        pixelrnn.PixelRNN(height=4, width=4, hidden_size=8, head_size=8).save_pretrained(tmp_path / name)
    monkeypatch.setenv("PIXELRNN_WEIGHTS", str(tmp_path))
    models = Models("cpu", capacity=1)
    models.get("local:first")
    models.samples("local:first")  # drawn here: the folders have no samples.png
    models.get("local:second")
    assert list(models._loaded) == list(models._metrics) == ["local:second"] and models._samples == {}


# -- words of the page ------------------------------------------------------------------------------------
SHIPPED_METRICS = dict(epoch=60, step=46860, valid_nll_nats=79.222, valid_bits_per_dim=0.14578, test_nll_nats=78.974, test_bits_per_dim=0.14533)


def test_the_model_line_says_its_cards_metrics_as_the_readme_does(app, client):
    folder = app[2] / "with-metrics"
    pixelrnn.PixelRNN(height=6, width=6, hidden_size=8, head_size=8).save_pretrained(folder, model_card_kwargs=dict(metrics=SHIPPED_METRICS))
    try:
        info = app[0].model_updates("local:with-metrics")[0]  # what /choose_model sends (the list offers shipped folders only)
    finally:
        import shutil

        shutil.rmtree(folder)
    assert "test NLL 78.97 nats, 0.145 bits/dim" in info and "validation NLL 79.22 nats, 0.146 bits/dim" in info
    assert "checkpoint kept (epoch 60, step 46,860)" in info
    assert "_nll_nats" not in info and "bits_per_dim" not in info


def test_training_says_at_once_what_it_does_and_which_checkpoint_is_in_use(app, client):
    job = client.submit(**train_args(steps=12), api_name="/train")
    *_, (_, status, *_) = [job.result(timeout=120)]
    frames = job.outputs()
    first_curve, first_status = frames[0][0], frames[0][1]
    assert first_status.startswith("Reading the data")  # before the data is read: the page is not left waiting
    assert {series for *_, series in first_curve["data"]} == {"train", "valid"}  # the plot's colours are fixed at once
    assert status.startswith("Done: 12 steps in") and "checkpoint kept" in status


class _Link:
    """A page request opened with these query parameters (what page_load reads)."""

    def __init__(self, **query):
        self.query_params = query


@pytest.mark.parametrize("query, said", [
    (dict(model="binarized-mnst"), "did you mean binarized-mnist?"),
    (dict(model="binarized-mnist", revision="v2"), "has no revisions"),
])  # fmt: skip
def test_a_link_that_cannot_be_followed_says_what_to_open_instead(app, query, said):
    _, _, info, *_ = app[0].page_load("", [], _Link(**query))
    info = info.replace("\\", "")  # as shown: Markdown's escapes of the plain text removed
    assert "could not be loaded" in info and said in info
    assert "binarized-mnist" in info.split("could not be loaded")[0]  # the default model is in use


def test_a_training_run_whose_data_cannot_be_read_keeps_the_model_trained_before(app, client, tmp_path):
    client.predict(**train_args(steps=3), api_name="/train")
    before = app[0].RUNS.checkpoint(client.session_hash)
    (tmp_path / "notes.png").write_bytes(b"these are notes, not pixels")
    with pytest.raises(AppError, match="not an image that can be read"):
        client.predict(**train_args([tmp_path / "notes.png"], "uploads", steps=3), api_name="/train")
    assert app[0].RUNS.checkpoint(client.session_hash) == before and (before / "model.safetensors").is_file()
