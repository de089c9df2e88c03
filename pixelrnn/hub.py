"""The Hugging Face Hub side of checkpoints: publish a folder, fetch by repo id, with errors a person can act on.

Tokens are passed to huggingface_hub for its requests and nowhere else: never logged, never written.
"""
import io
import sys
from pathlib import Path

from .card import SAMPLES_IMAGE, card_fields, model_card
from .checkpoint import CONFIG_NAME, PICKLE_SUFFIXES, WEIGHTS_NAME, refuse_pickle_message
from .errors import PixelRNNError

CARD_NAME = "README.md"
TOKEN_HELP = "pass token=... (--token), or set HF_TOKEN; create one at https://huggingface.co/settings/tokens"


def push(folder, repo_id: str, *, private: bool = False, revision: str | None = None, token: str | None = None,
         commit_message: str | None = None) -> str:  # fmt: skip
    """Publish a checkpoint folder to a Hub model repo and return the URL of the commit.

    Uploads model.safetensors, config.json, the model card (README.md, rebuilt for this repo and keeping the
    metrics, data set and command of the folder's card) and samples.png (16 samples, seed 0, drawn here when
    the folder has none). Nothing else in the folder is uploaded, and the folder is not changed. Creates the
    repo, and the branch `revision`, when they do not exist yet.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    _check_repo_id(repo_id)
    folder = Path(folder)
    model = _publishable_model(folder)
    token = token or get_token()
    if not token:
        kind = "a private repo" if private else "to the Hub"
        raise PixelRNNError(f"publishing {kind} needs a Hugging Face token with write access: {TOKEN_HELP}")
    api = HfApi(token=token)
    where = _where(repo_id, revision)
    try:
        if "/" not in repo_id:  # a bare name goes to the token owner's namespace, as on the website
            repo_id = f"{api.whoami()['name']}/{repo_id}"
            where = _where(repo_id, revision)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if private and not api.model_info(repo_id).private:
            raise PixelRNNError(
                f"Hub repo {repo_id} already exists and is public: refusing to publish to it as private. "
                "Make it private on the Hub first, or publish without --private"
            )
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        files = _files_to_publish(folder, model, repo_id, revision)
        commit = api.create_commit(
            repo_id,
            operations=[CommitOperationAdd(path_in_repo=name, path_or_fileobj=content) for name, content in files.items()],
            commit_message=commit_message or f"Upload pixelrnn checkpoint {_shape(model)}",
            revision=revision,
        )  # fmt: skip
    except PixelRNNError:
        raise
    except Exception as error:  # noqa: BLE001 - every Hub failure becomes one clear message
        raise _publish_error(error, where, repo_id) from None
    return str(commit.commit_url)


def _publishable_model(folder: Path):
    from .model import PixelRNN

    if folder.is_dir():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise PixelRNNError(
                f"refusing to publish {str(folder)!r}: it holds pickle file(s) {', '.join(pickles)}, which can run "
                f"arbitrary code on whoever loads them. pixelrnn publishes only {WEIGHTS_NAME}: move them out of the folder"
            )
    elif not folder.exists():
        raise PixelRNNError(f"no checkpoint folder {str(folder)!r} to publish")
    return PixelRNN.from_pretrained(folder)  # the same strict checks as loading: what is published must load


def _files_to_publish(folder: Path, model, repo_id: str, revision: str | None) -> dict:
    """Name in the repo -> a path or bytes. The card and the samples are made here, never written into the folder."""
    old_card = folder / CARD_NAME
    fields = card_fields(old_card.read_text(encoding="utf-8")) if old_card.is_file() else {}
    card = model_card(model, **fields, repo_id=repo_id, samples_image=SAMPLES_IMAGE, revision=revision)
    samples = folder / SAMPLES_IMAGE
    return {
        WEIGHTS_NAME: folder / WEIGHTS_NAME,
        CONFIG_NAME: folder / CONFIG_NAME,
        CARD_NAME: card.encode("utf-8"),
        SAMPLES_IMAGE: samples if samples.is_file() else _samples_png(model),
    }


def _samples_png(model) -> bytes:
    from .data import to_pil
    from .sample import generate

    *_, last = generate(model, 16, seed=0)
    scale = min(8, max(1, 112 // max(model.config["height"], model.config["width"])))  # about 112 px per image
    buffer = io.BytesIO()
    to_pil(last.image, model, scale=scale).save(buffer, format="PNG")
    return buffer.getvalue()


def _shape(model) -> str:
    config = model.config
    return f"({config['height']}x{config['width']}x{config['channels']}, {config['values']}, {config['cell']})"


def fetch(repo_id: str, filename: str, revision=None, *, token=None, cache_dir=None, local_files_only=False,
          force_download=False) -> str:  # fmt: skip
    """The local path of one file of a Hub model repo, downloaded or taken from the local cache."""
    from huggingface_hub import hf_hub_download

    _check_repo_id(repo_id, local_too=True)
    try:
        return hf_hub_download(
            repo_id, filename, revision=revision, token=token, cache_dir=cache_dir,
            local_files_only=local_files_only, force_download=force_download,
        )  # fmt: skip
    except Exception as error:  # noqa: BLE001 - every Hub failure becomes one clear message
        raise _download_error(error, filename, repo_id, revision, token) from None


def _check_repo_id(repo_id: str, local_too: bool = False) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        neither = "neither a checkpoint folder on this machine nor" if local_too else "not"
        raise PixelRNNError(f"{repo_id!r} is {neither} a Hub repo id like 'user/model'") from None


def _where(repo_id, revision) -> str:
    return f"{repo_id}" + (f" (revision {revision})" if revision else "")


def _download_error(error, filename, repo_id, revision, token) -> PixelRNNError:
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, OfflineModeIsEnabled

    where = _where(repo_id, revision)
    # LocalEntryNotFoundError is also an EntryNotFoundError: a cache miss must not read as a missing file
    if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return PixelRNNError(
            f"cannot reach the Hub to fetch {where}, and it is not in the local cache: "
            "check the network (or HF_HUB_OFFLINE), or load a local folder"
        )
    if isinstance(error, EntryNotFoundError):
        if filename == WEIGHTS_NAME:
            pickles = _pickle_files(repo_id, revision, token)
            if pickles:
                return PixelRNNError(refuse_pickle_message(pickles))
        return PixelRNNError(f"Hub repo {where} has no {filename}: it is not a pixelrnn checkpoint")
    return _hub_error(error, where, "fetch", "read") or PixelRNNError(
        f"cannot fetch {where} from the Hub: {type(error).__name__}: {error}"
    )


def _publish_error(error, where, repo_id) -> PixelRNNError:
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(error, OfflineModeIsEnabled):
        return PixelRNNError(f"cannot publish {where}: HF_HUB_OFFLINE is set; unset it to reach the Hub")
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status == 403:
        namespace = repo_id.split("/")[0]
        return PixelRNNError(
            f"the Hub refused to let this token publish {where} (HTTP 403): it needs write access to "
            f"the namespace {namespace!r}; {TOKEN_HELP}"
        )
    return _hub_error(error, where, "publish", "write") or PixelRNNError(
        f"cannot publish {where} to the Hub: {type(error).__name__}: {error}"
    )


def _hub_error(error, where, doing, access) -> PixelRNNError | None:
    """The failures that read the same for fetching and publishing; None for anything else."""
    from huggingface_hub import constants
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(error, GatedRepoError):
        return PixelRNNError(f"{where} is gated: accept its terms on the Hub and pass a token")
    if isinstance(error, RepositoryNotFoundError):
        return PixelRNNError(
            f"Hub repo {where} was not found, or it is private and the token does not give access to it"
        )
    if isinstance(error, RevisionNotFoundError):
        return PixelRNNError(f"Hub repo {where} has no such revision (branch, tag or commit)")
    if _is_network_error(error):
        return PixelRNNError(
            f"cannot reach the Hub at {constants.ENDPOINT} to {doing} {where}: check the network connection "
            "(and HF_ENDPOINT, if set)"
        )
    if isinstance(error, HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        if status == 401:
            return PixelRNNError(f"the Hub rejected the token (HTTP 401) while trying to {doing} {where}: {TOKEN_HELP}")
        if status == 403:
            return PixelRNNError(f"the Hub refused to {doing} {where} (HTTP 403): the token needs {access} access")
        return PixelRNNError(f"the Hub failed to {doing} {where}: {error}")
    return None


def _is_network_error(error) -> bool:
    # huggingface_hub 2.x speaks through httpx2, 1.x through httpx: whichever is loaded raised it
    transports = [module.TransportError for module in (sys.modules.get("httpx2"), sys.modules.get("httpx")) if module]
    return isinstance(error, tuple(transports))


def _pickle_files(repo_id, revision, token) -> list:
    from huggingface_hub import HfApi

    try:
        files = HfApi().list_repo_files(repo_id, revision=revision, token=token)
    except Exception:  # noqa: BLE001 - only used to improve the message
        return []
    return sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
