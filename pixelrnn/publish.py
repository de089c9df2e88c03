"""Publishing a checkpoint folder to the Hugging Face Hub: the files, the card rebuilt for the repo, and samples.

The transport (timeouts, error messages shared with fetching) is hub.py's; this module adds what publishing
needs on top: the model (to check that what is published loads), its card and a picture of samples.
"""
import io
from pathlib import Path

from . import hub
from .card import SAMPLES_IMAGE, card_fields, model_card
from .checkpoint import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, pickle_files
from .data import to_pil
from .errors import PixelRNNError
from .model import PixelRNN, count_parameters
from .sample import generate, last


def push(folder, repo_id: str, *, private: bool = False, revision: str | None = None, token: str | None = None,
         commit_message: str | None = None) -> str:  # fmt: skip
    """Publish a checkpoint folder to a Hub model repo and return the URL of the commit.

    Uploads model.safetensors, config.json, the model card (README.md, rebuilt for this repo and keeping the
    metrics, data set and command of the folder's card) and samples.png (16 samples, seed 0, drawn here when
    the folder has none). Nothing else in the folder is uploaded, and the folder is not changed. Creates the
    repo, and the branch `revision`, when they do not exist yet. A Hub that does not answer a request within
    `hub.hub_timeout()` seconds, all its requests together, ends the push with a PixelRNNError.
    """
    from huggingface_hub import get_token

    hub.check_repo_id(repo_id)
    folder = Path(folder)
    model = _publishable_model(folder)
    token = token or get_token()
    if not token:
        kind = "a private repo" if private else "to the Hub"
        raise PixelRNNError(f"publishing {kind} needs a Hugging Face token with write access: {hub.TOKEN_HELP}")
    if not all(" " < c < "\x7f" for c in token):  # else httpx refuses the header, which would read as no network
        raise PixelRNNError(f"the token holds spaces, line breaks or other characters a Hugging Face token never has: {hub.TOKEN_HELP}")
    samples = folder / SAMPLES_IMAGE
    samples = samples if samples.is_file() else _samples_png(model)  # drawn before the Hub's clock starts
    with hub.deadline():
        return _push(folder, model, samples, repo_id, private, revision, token, commit_message)


def _push(folder, model, samples, repo_id, private, revision, token, commit_message) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi

    hub.connect()
    api = HfApi(token=token)
    place = hub.where(repo_id, revision)
    try:
        if "/" not in repo_id:  # a bare name goes to the token owner's namespace, as on the website
            repo_id = f"{api.whoami()['name']}/{repo_id}"
            place = hub.where(repo_id, revision)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if private and not api.model_info(repo_id).private:
            raise PixelRNNError(
                f"Hub repo {repo_id} already exists and is public: refusing to publish to it as private. "
                "Make it private on the Hub first, or publish without --private"
            )
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        files = _files_to_publish(folder, model, samples, repo_id, revision)
        commit = api.create_commit(
            repo_id,
            operations=[CommitOperationAdd(path_in_repo=name, path_or_fileobj=content) for name, content in files.items()],
            commit_message=commit_message or f"Upload pixelrnn checkpoint {_shape(model)}",
            revision=revision,
        )  # fmt: skip
    except PixelRNNError:
        raise
    except Exception as error:  # noqa: BLE001 - every Hub failure becomes one clear message
        raise _publish_error(error, place, repo_id) from None
    return str(commit.commit_url)


def _publishable_model(folder: Path) -> PixelRNN:
    if folder.is_dir():
        pickles = pickle_files(p.name for p in folder.iterdir())
        if pickles:
            raise PixelRNNError(
                f"refusing to publish {str(folder)!r}: it holds pickle file(s) {', '.join(pickles)}, which can run "
                f"arbitrary code on whoever loads them. pixelrnn publishes only {WEIGHTS_NAME}: move them out of the folder"
            )
    elif not folder.exists():
        raise PixelRNNError(f"no checkpoint folder {str(folder)!r} to publish")
    return PixelRNN.from_pretrained(folder)  # the same strict checks as loading: what is published must load


def _files_to_publish(folder: Path, model: PixelRNN, samples, repo_id: str, revision: str | None) -> dict:
    """Name in the repo -> a path or bytes. The card and the samples are made here, never written into the folder."""
    old_card = folder / CARD_NAME
    fields = card_fields(old_card.read_text(encoding="utf-8")) if old_card.is_file() else {}
    card = model_card(model.config, count_parameters(model), **fields, repo_id=repo_id, samples_image=SAMPLES_IMAGE,
                      revision=revision)  # fmt: skip
    return {WEIGHTS_NAME: folder / WEIGHTS_NAME, CONFIG_NAME: folder / CONFIG_NAME, CARD_NAME: card.encode("utf-8"),
            SAMPLES_IMAGE: samples}  # fmt: skip


def _samples_png(model: PixelRNN) -> bytes:
    final = last(generate(model, 16, seed=0))  # one step kept at a time: memory does not grow with the height
    scale = min(8, max(1, 112 // max(model.config["height"], model.config["width"])))  # about 112 px per image
    buffer = io.BytesIO()
    to_pil(final.image, model, scale=scale).save(buffer, format="PNG")
    return buffer.getvalue()


def _shape(model: PixelRNN) -> str:
    config = model.config
    return f"({config['height']}x{config['width']}x{config['channels']}, {config['values']}, {config['cell']})"


def _publish_error(error, place, repo_id) -> PixelRNNError:
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(error, OfflineModeIsEnabled):
        return PixelRNNError(f"cannot publish {place}: HF_HUB_OFFLINE is set; unset it to reach the Hub")
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status == 403:
        namespace = repo_id.split("/")[0]
        return PixelRNNError(
            f"the Hub refused to let this token publish {place} (HTTP 403): it needs write access to "
            f"the namespace {namespace!r}; {hub.TOKEN_HELP}"
        )
    return hub.hub_error(error, place, "publish", "write") or PixelRNNError(
        f"cannot publish {place} to the Hub: {type(error).__name__}: {error}"
    )
