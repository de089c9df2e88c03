"""Publishing to and loading from the Hub, against the local stand-in in tests/hub_server.py.

huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported, and conftest.py has imported it
already in this process, so every Hub-side step runs in a fresh Python process (`run_child`) whose
environment points at the local server. Nothing here can reach the real Hub.
"""
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pixelrnn
from conftest import error_of, free_port, settle_batch_norm, tiny
from hub_server import FakeHub
from pixelrnn.card import card_fields, model_card

ROOT = Path(__file__).resolve().parents[1]
ALICE = "hf_alice_write_token"  # accepted by the server, as user alice (see hub_server.TOKENS)
REVOKED = "hf_revoked_token"  # rejected with 401

CHILD_PRELUDE = """
import json, sys
import torch
import pixelrnn
from pixelrnn import publish

args = json.loads(sys.argv[1])

def error_of(call):
    try:
        call()
    except pixelrnn.PixelRNNError as error:
        return str(error)
    return None

def differences(a, b):
    \"\"\"Names of the tensors (and 'config') that differ between two models; every tensor is compared.\"\"\"
    left, right = a.state_dict(), b.state_dict()
    names = [] if a.config == b.config else ["config"]
    names += [n for n in sorted(set(left) | set(right)) if n not in left or n not in right or not torch.equal(left[n], right[n])]
    return {"compared": len(left), "different": names}
"""
# huggingface_hub retries a refused connection five times with growing pauses (about 23 s in all):
# the retries still happen, only the pauses are skipped.
NO_BACKOFF_PAUSES = "import time\ntime.sleep = lambda seconds: None\n"


def hub_env(endpoint: str, hf_home: Path, token: str | None = ALICE, offline: bool = False) -> dict:
    """This environment without any Hugging Face settings, pointed at `endpoint` and a cache of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT))  # fmt: skip
    if token:
        env["HF_TOKEN"] = token
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def run_child(code: str, args: dict, *, endpoint: str, hf_home: Path, token: str | None = ALICE,
              offline: bool = False, skip_pauses: bool = False, env: dict | None = None) -> tuple[dict, str]:  # fmt: skip
    """Run `code` (which sets `result`) in a fresh interpreter; return `result` and everything it printed."""
    program = (NO_BACKOFF_PAUSES if skip_pauses else "") + CHILD_PRELUDE + code + "\nprint(json.dumps(result))\n"
    done = subprocess.run([sys.executable, "-c", program, json.dumps(args, default=str)], cwd=ROOT,
                          env={**hub_env(endpoint, hf_home, token, offline), **(env or {})}, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


def make_checkpoint(folder: Path, seed: int, **card) -> Path:
    torch.manual_seed(seed)
    settle_batch_norm(tiny()).save_pretrained(folder, model_card_kwargs=card)
    return folder


@pytest.fixture
def fake_hub():
    server = FakeHub().start()
    yield server
    server.stop()


LOAD_BOTH_BRANCHES = """
result = {}
for revision, folder in (None, args["main"]), ("v2", args["v2"]):
    remote = pixelrnn.PixelRNN.from_pretrained("alice/tiny", revision=revision)
    result[str(revision)] = differences(remote, pixelrnn.PixelRNN.from_pretrained(folder))
"""


def test_push_two_branches_then_load_each_by_repo_id_online_and_offline(fake_hub, tmp_path):
    main = make_checkpoint(tmp_path / "main", seed=1, metrics={"test_nll_nats": 3.25}, data="digits")
    v2 = make_checkpoint(tmp_path / "v2", seed=2)
    assert (main / "model.safetensors").read_bytes() != (v2 / "model.safetensors").read_bytes()
    home, args = tmp_path / "hf-home", {"main": main, "v2": v2}

    pushed, output = run_child(
        'result = [publish.push(args["main"], "alice/tiny"), publish.push(args["v2"], "alice/tiny", revision="v2")]',
        args, endpoint=fake_hub.endpoint, hf_home=home,
    )  # fmt: skip
    repo = fake_hub.repos["alice/tiny"]
    assert pushed == [f"{fake_hub.endpoint}/alice/tiny/commit/{repo.branches[b]}" for b in ("main", "v2")]
    for branch, folder in ("main", main), ("v2", v2):
        files = fake_hub.files("alice/tiny", branch)
        assert sorted(files) == [".gitattributes", "README.md", "config.json", "model.safetensors", "samples.png"]
        assert files["model.safetensors"] == (folder / "model.safetensors").read_bytes()
        assert files["config.json"] == (folder / "config.json").read_bytes()
        assert files["samples.png"].startswith(b"\x89PNG")
        assert "![samples drawn from the model](samples.png)" in files["README.md"].decode()
    assert 'from_pretrained("alice/tiny", revision="v2")' in fake_hub.files("alice/tiny", "v2")["README.md"].decode()
    # the token went to the server only: not printed, not written under HF_HOME
    assert ALICE not in output
    assert not [p for p in home.rglob("*") if p.is_file() and ALICE.encode() in p.read_bytes()]

    compared = len(tiny().state_dict())
    loaded, _ = run_child(LOAD_BOTH_BRANCHES, args, endpoint=fake_hub.endpoint, hf_home=home)
    assert loaded == {"None": {"compared": compared, "different": []}, "v2": {"compared": compared, "different": []}}

    endpoint = fake_hub.endpoint
    fake_hub.stop()  # from here on, only the local cache can answer
    offline, _ = run_child(
        LOAD_BOTH_BRANCHES + 'result["push"] = error_of(lambda: publish.push(args["main"], "alice/tiny"))',
        args, endpoint=endpoint, hf_home=home, offline=True,
    )  # fmt: skip
    assert offline["None"] == offline["v2"] == {"compared": compared, "different": []}
    assert offline["push"] == "cannot publish alice/tiny: HF_HUB_OFFLINE is set; unset it to reach the Hub"


def test_publishing_again_keeps_one_whole_card_and_leaves_the_folder_alone(fake_hub, tmp_path):
    metrics = {"test_nll_nats": 3.25, "test_bits_per_dim": 0.39}
    folder = make_checkpoint(tmp_path / "ckpt", seed=1, metrics=metrics, data="digits", command="python -m pixelrnn train")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    home = tmp_path / "hf-home"

    first, _ = run_child('result = publish.push(args["folder"], "alice/again")', {"folder": folder},
                         endpoint=fake_hub.endpoint, hf_home=home)  # fmt: skip
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    card = fake_hub.files("alice/again")["README.md"].decode()
    assert card_fields(card) == {"metrics": metrics, "data": "digits", "command": "python -m pixelrnn train"}

    # As after downloading the published repo: the folder's card is now the Hub card; publish it again.
    (folder / "README.md").write_text(card, encoding="utf-8")
    again, _ = run_child('result = publish.push(args["folder"], "alice/again")', {"folder": folder},
                         endpoint=fake_hub.endpoint, hf_home=home)  # fmt: skip
    assert again == first  # card and samples came out byte-identical, so there was nothing to commit
    assert fake_hub.files("alice/again")["README.md"].decode() == card
    for heading in ("## Metrics (measured)", "## Samples", "## Reproduce", "## Usage", "## Configuration"):
        assert card.count(heading) == 1, heading


def test_the_push_command_publishes_with_the_token_from_the_environment(fake_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "ckpt", seed=1)
    done = subprocess.run(
        [sys.executable, "-m", "pixelrnn", "push", str(folder), "alice/from-cli", "--private", "--revision", "v3"],
        env=hub_env(fake_hub.endpoint, tmp_path / "hf-home"), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    repo = fake_hub.repos["alice/from-cli"]
    assert repo.private and sorted(repo.branches) == ["main", "v3"]
    assert done.stdout.strip() == f"{fake_hub.endpoint}/alice/from-cli/commit/{repo.branches['v3']}"
    assert fake_hub.files("alice/from-cli", "v3")["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    assert "model.safetensors" not in fake_hub.files("alice/from-cli", "main")


def test_a_card_read_back_rebuilds_to_the_same_card():
    model = tiny()
    fields = {"metrics": {"test_nll_nats": 84.123456, "epochs": 3}, "data": "binarized-mnist",
              "command": "python -m pixelrnn train \\\n  --epochs 3"}  # fmt: skip
    numbers = (model.config, pixelrnn.count_parameters(model))
    card = model_card(*numbers, **fields, repo_id="alice/x", samples_image="samples.png")
    assert card_fields(card) == fields
    assert model_card(*numbers, **card_fields(card), repo_id="alice/x", samples_image="samples.png") == card
    assert card_fields(model_card(*numbers)) == {}
    assert f"Parameters: {numbers[1]:,}." in card


@pytest.mark.parametrize("text", ["", "# just a title\n", "---\n: : :\n---\n", "---\n- a list\n---\n",
                                  "---\nmodel-index: [{results: 7}]\ndatasets: {a: 1}\n---\n"])  # fmt: skip
def test_a_hand_edited_card_gives_what_it_can_and_no_error(text):
    assert card_fields(text) == {}


# -- errors ------------------------------------------------------------------------------------

WITH_TOKEN = """
good, pickled, bert = args["good"], args["pickled"], args["bert"]
load = pixelrnn.PixelRNN.from_pretrained
result = {
    "load: repo not found": error_of(lambda: load("alice/no-such-model")),
    "load: someone else's private repo": error_of(lambda: load("bob/private-model")),
    "load: bad token": error_of(lambda: load("alice/public-model", token=args["revoked"])),
    "load: no such revision": error_of(lambda: load("alice/public-model", revision="v9")),
    "load: repo with only a pickle file": error_of(lambda: load("alice/pickle-only")),
    "load: config is not a pixelrnn config": error_of(lambda: load("alice/bert")),
    "push: bad token": error_of(lambda: publish.push(good, "alice/new-model", token=args["revoked"])),
    "push: another user's namespace": error_of(lambda: publish.push(good, "bob/new-model")),
    "push: private onto an existing public repo": error_of(lambda: publish.push(good, "alice/public-model", private=True)),
    "push: pickle files in the folder": error_of(lambda: publish.push(pickled, "alice/new-model")),
    "push: config is not a pixelrnn config": error_of(lambda: publish.push(bert, "alice/new-model")),
    "push: not a repo id": error_of(lambda: publish.push(good, "not a / valid // id")),
}
publish.push(good, "alice/secret", private=True)
result["private repo, loaded by its owner"] = differences(load("alice/secret"), load(good))["different"]
"""
WITHOUT_TOKEN = """
result = {
    "load: private repo without a token": error_of(lambda: pixelrnn.PixelRNN.from_pretrained("alice/secret")),
    "push: private without a token": error_of(lambda: publish.push(args["good"], "alice/secret-2", private=True)),
}
"""
NO_NETWORK = """
result = {
    "load: a typo in a local path": error_of(lambda: pixelrnn.PixelRNN.from_pretrained("weights/binarized-mnst")),
    "load: a local path that does not exist": error_of(lambda: pixelrnn.PixelRNN.from_pretrained("./no-such-folder")),
    "push: no network": error_of(lambda: publish.push(args["good"], "alice/tiny")),
    "load: no network": error_of(lambda: pixelrnn.PixelRNN.from_pretrained("alice/tiny")),
}
"""
EXPECTED = {
    "load: repo not found": "Hub repo alice/no-such-model was not found, or it is private and the token does not give access to it",
    "load: someone else's private repo": "Hub repo bob/private-model was not found, or it is private and the token does not give access",
    "load: private repo without a token": "Hub repo alice/secret was not found, or it is private and the token does not give access",
    "load: bad token": "the Hub rejected the token (HTTP 401) while trying to fetch alice/public-model: pass token=",
    "load: no such revision": "Hub repo alice/public-model (revision v9) has no such revision (branch, tag or commit)",
    "load: repo with only a pickle file": "refusing to load pickle checkpoint file(s) pytorch_model.bin: pickle can run arbitrary code",
    "load: config is not a pixelrnn config": "config.json is not a pixelrnn config: unknown option(s) model_type, vocab_size",
    "load: no network": "cannot reach the Hub to fetch alice/tiny, and it is not in the local cache",
    "push: bad token": "the Hub rejected the token (HTTP 401) while trying to publish alice/new-model: pass token=",
    "push: another user's namespace": "the Hub refused to let this token publish bob/new-model (HTTP 403): it needs write access to the namespace 'bob'",
    "push: private without a token": "publishing a private repo needs a Hugging Face token with write access: pass token=",
    "push: private onto an existing public repo": "Hub repo alice/public-model already exists and is public: refusing to publish to it as private",
    "push: pickle files in the folder": "holds pickle file(s) pytorch_model.bin, which can run arbitrary code on whoever loads them",
    "push: config is not a pixelrnn config": "config.json is not a pixelrnn config: unknown option(s) model_type, vocab_size",
    "push: not a repo id": "'not a / valid // id' is not a Hub repo id like 'user/model'",
    "push: no network": "cannot reach the Hub at http://127.0.0.1:",
    # said at once, without a Hub request: against a closed port, one would read "cannot reach the Hub"
    "load: a typo in a local path": "there is no folder 'weights/binarized-mnst' on this machine (did you mean 'weights/binarized-mnist'?); "
    "hf:weights/binarized-mnst loads the Hub repo of that name",
    "load: a local path that does not exist": "there is no folder './no-such-folder' on this machine",
}  # fmt: skip


@pytest.fixture(scope="module")
def hub_errors(tmp_path_factory):
    """Every error case, run in three child processes (with a token, without one, with no server at all)."""
    base = tmp_path_factory.mktemp("hub-errors")
    good = make_checkpoint(base / "good", seed=3)
    pickled = Path(shutil.copytree(good, base / "pickled"))
    torch.save({"weights": torch.zeros(2)}, pickled / "pytorch_model.bin")
    bert = Path(shutil.copytree(good, base / "bert"))
    bert_config = json.dumps({"model_type": "bert", "vocab_size": 30522}).encode()
    (bert / "config.json").write_bytes(bert_config)
    pickle_bytes = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, pickle_bytes)

    server = FakeHub().start()
    checkpoint = {name: (good / name).read_bytes() for name in ("config.json", "model.safetensors")}
    server.add_repo("bob/private-model", checkpoint, private=True)
    server.add_repo("alice/public-model", checkpoint)
    server.add_repo("alice/pickle-only", {"config.json": checkpoint["config.json"], "pytorch_model.bin": pickle_bytes.getvalue()})
    server.add_repo("alice/bert", {"config.json": bert_config, "model.safetensors": checkpoint["model.safetensors"]})
    args = {"good": good, "pickled": pickled, "bert": bert, "revoked": REVOKED}
    try:
        messages, _ = run_child(WITH_TOKEN, args, endpoint=server.endpoint, hf_home=base / "owner-home")
        # a fresh cache: huggingface_hub would serve alice/secret from the cache the owner's download filled
        messages.update(run_child(WITHOUT_TOKEN, args, endpoint=server.endpoint, hf_home=base / "anonymous-home", token=None)[0])
        dead = f"http://127.0.0.1:{free_port()}"
        messages.update(run_child(NO_NETWORK, args, endpoint=dead, hf_home=base / "empty-home", skip_pauses=True)[0])
    finally:
        server.stop()
    return messages, server


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_hub_errors_are_clear_messages(hub_errors, case):
    messages, _ = hub_errors
    assert messages[case] is not None, f"{case}: no error was raised"
    assert EXPECTED[case] in messages[case]
    assert REVOKED not in messages[case] and ALICE not in messages[case]


def test_a_private_push_makes_a_private_repo_that_only_its_owner_loads(hub_errors):
    messages, server = hub_errors
    assert server.repos["alice/secret"].private
    assert messages["private repo, loaded by its owner"] == []
    assert "alice/secret-2" not in server.repos  # refused before anything was sent
    assert "alice/new-model" not in server.repos and "bob/new-model" not in server.repos


def test_the_models_own_push_to_hub_goes_through_the_same_checks(fake_hub, tmp_path):
    folder = make_checkpoint(tmp_path / "ckpt", seed=3)
    pushed, _ = run_child(
        'model = pixelrnn.PixelRNN.from_pretrained(args["folder"])\n'
        'result = {"url": model.push_to_hub("alice/direct", revision="v1"), '
        '"again": model.save_pretrained(args["copy"], push_to_hub=True, repo_id="alice/direct")}',
        {"folder": folder, "copy": tmp_path / "copy"}, endpoint=fake_hub.endpoint, hf_home=tmp_path / "home",
    )  # fmt: skip
    assert pushed["url"].startswith(f"{fake_hub.endpoint}/alice/direct/commit/")
    for branch in ("v1", "main"):
        files = fake_hub.files("alice/direct", branch)
        assert files["model.safetensors"] == (folder / "model.safetensors").read_bytes()
        assert files["samples.png"].startswith(b"\x89PNG")


# -- anonymous loads, and a Hub that never answers ----------------------------------------------

ANONYMOUS = """
load = pixelrnn.PixelRNN.from_pretrained
result = {
    "public": sorted(load("alice/public-model", token=False).state_dict()) == sorted(load(args["good"]).state_dict()),
    "pickle only": error_of(lambda: load("alice/pickle-only", token=False)),
    "private": error_of(lambda: load("alice/secret", token=False)),
}
"""


def test_a_load_with_token_false_sends_no_token_even_with_hf_token_set(tmp_path):
    good = make_checkpoint(tmp_path / "good", seed=3)
    checkpoint = {name: (good / name).read_bytes() for name in ("config.json", "model.safetensors")}
    pickle_bytes = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, pickle_bytes)
    server = FakeHub().start()
    try:
        server.add_repo("alice/public-model", checkpoint)
        server.add_repo("alice/secret", checkpoint, private=True)
        server.add_repo("alice/pickle-only", {"config.json": checkpoint["config.json"], "pytorch_model.bin": pickle_bytes.getvalue()})
        # HF_TOKEN is alice's, who owns every repo here: with it, each of these loads would work
        result, _ = run_child(ANONYMOUS, {"good": good}, endpoint=server.endpoint, hf_home=tmp_path / "home", token=ALICE)
        anonymous = list(zip(server.requests, server.headers))
        run_child('result = pixelrnn.PixelRNN.from_pretrained("alice/secret").config', {}, endpoint=server.endpoint,
                  hf_home=tmp_path / "owner-home", token=ALICE)  # fmt: skip
    finally:
        server.stop()
    assert result["public"] is True
    assert "refusing to load pickle checkpoint file(s) pytorch_model.bin" in result["pickle only"]
    assert "Hub repo alice/secret was not found, or it is private" in result["private"]
    paths = [path for (_, path), _ in anonymous]
    assert "/api/models/alice/pickle-only/tree/main" in paths  # the listing of the error path was anonymous too
    assert [path for (_, path), headers in anonymous if "authorization" in headers] == []
    owner = server.headers[len(anonymous):]
    assert owner and all(headers.get("authorization") == f"Bearer {ALICE}" for headers in owner)  # the control


@pytest.fixture
def silent_hub():
    """An endpoint that accepts connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


NEVER_ANSWERS = """
result = {
    "load": error_of(lambda: pixelrnn.PixelRNN.from_pretrained("alice/tiny")),
    "push": error_of(lambda: publish.push(args["good"], "alice/tiny")),
    "push to a bare name": error_of(lambda: publish.push(args["good"], "tiny")),
}
"""


def test_a_hub_that_never_answers_ends_loading_and_pushing_with_a_clear_message(silent_hub, tmp_path):
    good = make_checkpoint(tmp_path / "good", seed=3)
    result, output = run_child(NEVER_ANSWERS, {"good": good}, endpoint=silent_hub, hf_home=tmp_path / "home",
                               env={"PIXELRNN_HUB_TIMEOUT": "1.5"})  # fmt: skip
    said = f"the Hub at {silent_hub} did not answer within 1.5 s while trying to"
    assert result == {
        "load": f"{said} fetch alice/tiny: try again later (PIXELRNN_HUB_TIMEOUT sets how long to wait)",
        "push": f"{said} publish alice/tiny: try again later (PIXELRNN_HUB_TIMEOUT sets how long to wait)",
        "push to a bare name": f"{said} publish tiny: try again later (PIXELRNN_HUB_TIMEOUT sets how long to wait)",
    }
    assert "Retrying" not in output  # given up at the first timeout, not retried


def test_the_hub_timeout_is_sixty_seconds_unless_the_environment_says_otherwise(monkeypatch):
    from pixelrnn import hub

    monkeypatch.delenv("PIXELRNN_HUB_TIMEOUT", raising=False)
    assert hub.hub_timeout() == hub.HUB_TIMEOUT == 60
    monkeypatch.setenv("PIXELRNN_HUB_TIMEOUT", "2.5")
    assert hub.hub_timeout() == 2.5
    for bad in ("soon", "0", "-1", "nan", "1e9"):
        monkeypatch.setenv("PIXELRNN_HUB_TIMEOUT", bad)
        assert "PIXELRNN_HUB_TIMEOUT must be a number of seconds" in error_of(hub.hub_timeout)
    # said before any request is made
    assert "PIXELRNN_HUB_TIMEOUT must be a number of seconds" in error_of(lambda: pixelrnn.PixelRNN.from_pretrained("alice/tiny"))


USERS_FACTORY = """
from huggingface_hub.utils import _http, set_client_factory

seen = []
set_client_factory(lambda: _http.httpx2.Client(event_hooks={"request": [lambda request: seen.append(str(request.url))]}))
message = error_of(lambda: pixelrnn.PixelRNN.from_pretrained("alice/tiny"))
error_of(lambda: pixelrnn.PixelRNN.from_pretrained("alice/tiny"))  # wrapped once, not twice
result = {"message": message, "seen by the user's hook": len(seen)}
"""


def test_the_timeout_wraps_a_client_factory_the_user_set_instead_of_replacing_it(silent_hub, tmp_path):
    result, output = run_child(USERS_FACTORY, {}, endpoint=silent_hub, hf_home=tmp_path / "home", env={"PIXELRNN_HUB_TIMEOUT": "1"})
    assert result["message"].startswith(f"the Hub at {silent_hub} did not answer within 1 s")
    assert result["seen by the user's hook"] == 2 and "Retrying" not in output  # one request per load, none retried
