"""A public Space against a hostile visitor and hostile Hub repos (issue 21): markup, cards, memory, time, queue,
uploads, disk. Hub code runs against the local stand-ins of hub_server.py and hostile.py, never the network."""
import json
import os
import signal
import threading
import time
import types
import weakref
from pathlib import Path

import pytest
import torch
from app_harness import served
from conftest import error_of as _error, tiny
from hostile import EVIL, HostileHub, checkpoint_files, serve_app, stop
from test_hub import run_child

import pixelrnn
from app_support import fairness, labels, limits, models, scratch, uploads
from app_support.hubcache import HubCache
from app_support.text import plain, plain_html
from app_support.training import TrainingRuns, _Run
from pixelrnn.card import card_fields
from pixelrnn.options import sampling_steps

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
GIB3 = 3 * 2**30
METRICS_CARD = """---
model-index:
- name: x
  results:
  - metrics:
    - {{type: test_nll_nats, value: 80.5}}
    - {{type: '<img src={evil}/m.png>', value: 1}}
    - {{type: overlay, value: '<a href={evil} style="position:fixed;inset:0">x</a>'}}
    - {{type: huge, value: {digits}}}
---
# card
"""


# -- 1. markup --------------------------------------------------------------------------------------------
def test_plain_text_escapes_every_markup_character():
    attack = f'<a href={EVIL} style="position:fixed">[Your session expired]({EVIL})</a> **x** $$\\rule{{9em}}{{9em}}$$ www.evil.example'
    shown = plain(attack)
    assert "<" not in shown and ">" not in shown and "](" not in shown and "**" not in shown and "$$" not in shown
    assert "www." not in shown and "https:" not in shown  # no autolink either
    assert plain_html("<img src=x>") == "&lt;img src=x&gt;"


def test_the_model_line_shows_a_hostile_revision_as_text_and_encodes_its_links():
    model = tiny()
    revision = f"v1)<img/src={EVIL}/r.png>"
    line = labels.describe(model, f"hub:alice/model@{revision}", {"test_nll_nats": 80.5})
    assert "<img" not in line and "&lt;img" in line
    assert "/tree/v1%29%3Cimg%2Fsrc%3Dhttps%3A%2F%2Fevil.example%2Fr.png%3E)" in line  # the card link, whole


# -- 2, 3, 12. hostile cards ------------------------------------------------------------------------------
def test_a_card_is_parsed_in_linear_time():
    card = "## Reproduce\n\n```bash\n" * 5000  # about 110 KB: quadratic in the old regex (seconds), linear now
    started = time.perf_counter()
    assert card_fields(card) == {}
    assert time.perf_counter() - started < 1.0
    assert card_fields("x\n## Reproduce\n\n```bash\npython -m pixelrnn train\n```\n")["command"] == "python -m pixelrnn train"


def test_a_hostile_cards_yaml_gives_no_metrics_and_no_error():
    bomb = "---\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    ) + "model-index: [{results: [{metrics: [{type: nll, value: *j}]}]}]\n---\n"
    assert len(bomb) < 1000 and card_fields(bomb) == {}
    assert card_fields("---\nx: " + "[" * 5000 + "\n---\n") == {}  # 5,000 deep
    assert card_fields(METRICS_CARD.format(evil=EVIL, digits="9" * 5000)) == {}  # a 5,000-digit number: unreadable YAML
    assert card_fields(METRICS_CARD.format(evil=EVIL, digits="7")) == {"metrics": {"test_nll_nats": 80.5, "huge": 7}}


# -- 4. memory ----------------------------------------------------------------------------------------------
def _counting_steps(alive_counts, rows=30):
    alive = weakref.WeakSet()

    class Image(torch.Tensor):
        pass

    for row in range(rows):
        image = torch.zeros(16, 1, 4, 3).as_subclass(Image)
        alive.add(image)
        alive_counts.append(len(alive))
        yield pixelrnn.Step(row=row, image=image, height=rows)


def test_the_model_lines_samples_and_publish_keep_one_step_at_a_time(monkeypatch, tmp_path):
    import pixelrnn.upload

    model = tiny()
    for name in ("many",):
        model.save_pretrained(tmp_path / name)
    monkeypatch.setenv("PIXELRNN_WEIGHTS", str(tmp_path))
    counts = []
    monkeypatch.setattr(pixelrnn, "generate", lambda *a, **k: _counting_steps(counts))
    models.Models("cpu").samples("local:many")
    assert max(counts) <= 2, counts  # `*_, last = ...` kept all 30
    counts.clear()
    monkeypatch.setattr(pixelrnn.upload, "generate", lambda *a, **k: _counting_steps(counts))
    pixelrnn.upload._samples_png(model)
    assert max(counts) <= 2, counts
    counts.clear()
    assert pixelrnn.sample.last(_counting_steps(counts)).row == 29 and max(counts) <= 2


def test_a_model_with_large_images_or_many_layers_is_refused():
    big = pixelrnn.PixelRNN.check_config(dict(height=1024, width=1024, channels=3, row_head="independent", hidden_size=8, head_size=8))
    error = _error(lambda: limits.check_affordable(types.SimpleNamespace(config=big)))
    assert "3,145,728 values" in error and f"{limits.MAX_IMAGE_VALUES:,}" in error
    one = pixelrnn.PixelRNN.check_config(dict(height=28, width=28, row_head="independent"))
    assert sampling_steps(dict(one, num_layers=4)) == 28 * 4 + 28  # each layer is a step of its own


# -- 5, 8. Hub downloads: sizes before fetching, one deadline -----------------------------------------------
SIZES_AND_DRIP = """
from pixelrnn import hub
import time
load = pixelrnn.PixelRNN.from_pretrained
started = time.monotonic()
result = {"drip": error_of(lambda: load("mallory/drip"))}
result["drip seconds"] = time.monotonic() - started
result["config"] = error_of(lambda: load("mallory/big-config"))
with hub.size_limits({"model.safetensors": 10**6}):
    result["weights"] = error_of(lambda: load("mallory/big-weights"))
"""


def test_hub_files_over_their_size_are_not_fetched_and_a_dripping_hub_meets_one_deadline(tmp_path):
    hub = HostileHub().start()
    try:
        files = checkpoint_files(tmp_path / "good")
        for repo in ("mallory/drip", "mallory/big-config", "mallory/big-weights"):
            hub.add_repo(repo, files)
        hub.sizes[("mallory/big-config", "config.json")] = GIB3
        hub.sizes[("mallory/big-weights", "model.safetensors")] = GIB3
        hub.drips.add(("mallory/drip", "config.json"))  # a byte every 0.5 s: each read is in time, the whole is not
        result, _ = run_child(SIZES_AND_DRIP, {}, endpoint=hub.endpoint, hf_home=tmp_path / "home", env={"PIXELRNN_HUB_TIMEOUT": "2"})
    finally:
        hub.stop()
    assert "did not answer within 2 s" in result["drip"] and result["drip seconds"] < 8
    assert "config.json of mallory/big-config is 3,221,225,472 bytes" in result["config"]
    assert "model.safetensors of mallory/big-weights is 3,221,225,472 bytes" in result["weights"]
    assert hub.gets("mallory/big-config", "config.json") == 0 and hub.gets("mallory/big-weights", "model.safetensors") == 0


def test_the_apps_hub_cache_keeps_to_its_bound(tmp_path):
    cache = HubCache(tmp_path, max_bytes=2500)
    for index, name in enumerate(("a/old", "a/mid", "a/new")):
        blob = tmp_path / f"models--{name.replace('/', '--')}" / "blobs" / "x"
        blob.parent.mkdir(parents=True)
        blob.write_bytes(b"0" * 1000)
        os.utime(blob.parent.parent, (index, index))
    with cache.using("a/old"):  # in use: kept, and now the most recently used
        pass
    assert sorted(p.name for p in tmp_path.glob("models--*")) == ["models--a--new", "models--a--old"]
    assert cache.size() <= 2500


# -- 6, 12. the model line's work ---------------------------------------------------------------------------
def test_every_piece_of_model_work_shares_the_sampling_slots_and_its_time_limit(monkeypatch):
    app = served()[0]
    groups = {fn.name: fn.concurrency_id for fn in app.demo.fns.values()}
    for name in ("page_load", "preview", "choose_model", "load_from_hub", "generate", "restore_or_complete", "push_to_hub"):
        assert groups[name] == "sampling", name
    client = Client(served()[1], verbose=False)
    monkeypatch.setattr(app.limits, "REQUEST_SECONDS", 0.0)
    app.MODELS._samples.clear()
    with pytest.raises(AppError, match="stopped after 0 s"):
        client.predict("local:rgb-8bit", api_name="/choose_model")  # the 8x8 model ships no samples.png: drawn here


def test_bad_arguments_get_their_own_messages():
    client = Client(served()[1], verbose=False)
    with pytest.raises(AppError, match="choose a model in the model list"):
        client.predict(None, api_name="/choose_model")
    with pytest.raises(AppError, match="is not a Hub model id"):
        client.predict("a/" + "b" * 5000, "", api_name="/load_from_hub")
    with pytest.raises(AppError, match="not a revision"):
        client.predict("a/b", "main\nx", api_name="/load_from_hub")


def test_broken_weights_are_refused_at_load(tmp_path, monkeypatch):
    model = tiny()
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    model.save_pretrained(tmp_path / "nan")
    monkeypatch.setenv("PIXELRNN_WEIGHTS", str(tmp_path))
    error = _error(lambda: models.Models("cpu").get("local:nan"))
    assert error and "holds NaN or infinite numbers" in error


def test_a_token_with_a_line_break_is_said_to_be_one():
    from pixelrnn import publish

    folder = Path(served()[2]) / "binarized-mnist"
    assert "line breaks" in _error(lambda: publish.push(folder, "alice/x", token="hf_abc\ndef"))


# -- 7. the queue -------------------------------------------------------------------------------------------
def test_one_session_cannot_fill_the_queue(monkeypatch):
    import httpx

    app, url, _ = served()
    release, real = threading.Event(), app.pixelrnn.generate
    monkeypatch.setattr(fairness, "PER_SESSION", 2)

    def held(model, n, temperature, seed, fast, labels=None):
        release.wait(60) if seed == 99 else None
        return real(model, n=n, temperature=temperature, seed=seed, fast=fast, labels=labels)

    monkeypatch.setattr(app.pixelrnn, "generate", held)
    greedy = Client(url, verbose=False)
    try:
        jobs = [greedy.submit(1, 1.0, 99, False, api_name="/generate") for _ in range(2)]
        time.sleep(1.0)
        with pytest.raises(httpx.HTTPStatusError) as refused:
            greedy.predict(1, 1.0, 99, False, api_name="/generate")
        assert "this page already has 2 requests waiting or running" in refused.value.response.json()["detail"]
        assert Client(url, verbose=False).predict(1, 1.0, 3, False, api_name="/generate")[1] == 3  # another visitor is served
    finally:
        release.set()
    for job in jobs:
        job.result(timeout=60)


# -- 9. uploads ---------------------------------------------------------------------------------------------
def test_uploads_are_bounded_per_client(monkeypatch):
    import httpx

    _, url, _ = served()
    monkeypatch.setattr(uploads, "CLIENT_BYTES", 350_000)
    monkeypatch.setattr(uploads, "LEDGER", uploads.Ledger())
    answers = [httpx.post(url + "gradio_api/upload", files={"files": (f"f{i}.png", b"0" * 100_000, "image/png")}, timeout=30)
               for i in range(5)]  # fmt: skip
    assert [a.status_code for a in answers] == [200, 200, 200, 413, 413]
    assert "the most one visitor may" in answers[-1].text


# -- 10. files go with their sessions -----------------------------------------------------------------------
def test_start_up_removes_the_folders_a_dead_process_left(tmp_path):
    dead = tmp_path / "pixelrnn-app-runs-999999999.5-abc"
    dead.mkdir()
    mine = scratch.folder("runs", root=str(tmp_path))
    assert not dead.exists() and mine.is_dir()
    assert scratch.sweep("runs", root=str(tmp_path)) == [] and mine.is_dir()  # a live process's folder stays


def test_runs_that_outlive_their_use_are_removed(tmp_path, monkeypatch):
    import app_support.training as training

    runs = TrainingRuns()
    monkeypatch.setattr(training, "MAX_KEPT_RUNS", 2)
    for index in range(4):
        folder = runs.root / f"run{index}"
        folder.mkdir()
        runs._runs[f"session{index}"] = _Run(f"run{index}", folder, active=False, used_at=time.monotonic() - 10 * (4 - index))
    monkeypatch.setattr(training, "KEEP_SECONDS", 25)
    runs.sweep()
    assert sorted(runs._runs) == ["session2", "session3"]
    assert sorted(p.name for p in runs.root.iterdir()) == ["run2", "run3"]


def test_each_sessions_download_is_its_own_and_goes_with_it():
    from test_app import train_args

    app, url, _ = served()
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    archives = [Path(app.RUNS.download(c.session_hash)) for c in (first, second) if c.predict(**train_args(steps=3), api_name="/train")]
    assert archives[0] != archives[1]
    app.RUNS.end(first.session_hash)
    assert not archives[0].exists() and archives[1].exists()
