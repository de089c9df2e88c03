"""Uploading a checkpoint folder and its model to the Hugging Face Hub: the files, the card rebuilt for the
repo, and samples. It knows the model only as the object it is given, so the model's own `push_to_hub` and
`publish.push` (which loads a folder first) share it without importing each other.

The transport (timeouts, error messages shared with fetching) is hub.py's.
"""
import io

from . import hub
from .card import SAMPLES_IMAGE, card_fields, model_card
from .checkpoint import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME
from .data import to_pil
from .errors import PixelRNNError
from .sample import generate, last


def push_loaded(folder, model, repo_id: str, *, private: bool = False, revision: str | None = None, token: str | None = None,
                commit_message: str | None = None) -> str:  # fmt: skip
    """Publish `folder`, whose checkpoint is `model` (already loaded and checked), to a Hub repo; see `publish.push`."""
    from huggingface_hub import get_token

    hub.check_repo_id(repo_id)
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


def _files_to_publish(folder, model, samples, repo_id: str, revision: str | None) -> dict:
    """Name in the repo -> a path or bytes. The card and the samples are made here, never written into the folder."""
    old_card = folder / CARD_NAME
    fields = card_fields(old_card.read_text(encoding="utf-8")) if old_card.is_file() else {}
    card = model_card(model.config, sum(p.numel() for p in model.parameters()), **fields, repo_id=repo_id, samples_image=SAMPLES_IMAGE,
                      revision=revision)  # fmt: skip
    return {WEIGHTS_NAME: folder / WEIGHTS_NAME, CONFIG_NAME: folder / CONFIG_NAME, CARD_NAME: card.encode("utf-8"),
            SAMPLES_IMAGE: samples}  # fmt: skip


def _samples_png(model) -> bytes:
    final = last(generate(model, 16, seed=0))  # one step kept at a time: memory does not grow with the height
    scale = min(8, max(1, 112 // max(model.config["height"], model.config["width"])))  # about 112 px per image
    buffer = io.BytesIO()
    to_pil(final.image, model, scale=scale).save(buffer, format="PNG")
    return buffer.getvalue()


def _shape(model) -> str:
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
