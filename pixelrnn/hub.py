"""The Hugging Face Hub side of checkpoints: download by repo id, with errors a person can act on."""
from .checkpoint import CONFIG_NAME, PICKLE_SUFFIXES, WEIGHTS_NAME, refuse_pickle_message
from .errors import PixelRNNError


def download(repo_id: str, revision=None, *, token=None, cache_dir=None, local_files_only=False, force_download=False):
    """Fetch config.json and model.safetensors of a Hub model repo (or take them from the local cache)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise PixelRNNError(
            f"{repo_id!r} is neither a checkpoint folder on this machine nor a Hub repo id like 'user/model'"
        ) from None
    where = f"{repo_id}" + (f" (revision {revision})" if revision else "")
    paths = []
    for filename in (CONFIG_NAME, WEIGHTS_NAME):
        try:
            paths.append(
                hf_hub_download(
                    repo_id, filename, revision=revision, token=token, cache_dir=cache_dir,
                    local_files_only=local_files_only, force_download=force_download,
                )  # fmt: skip
            )
        except Exception as error:  # noqa: BLE001 - every Hub failure becomes one clear message
            raise _explain(error, where, filename, repo_id, revision, token) from None
    return paths


def _explain(error, where, filename, repo_id, revision, token) -> PixelRNNError:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(error, GatedRepoError):
        return PixelRNNError(f"{where} is gated: accept its terms on the Hub and pass a token")
    if isinstance(error, RepositoryNotFoundError):
        return PixelRNNError(
            f"Hub repo {where} was not found, or it is private and the token does not give access to it"
        )
    if isinstance(error, RevisionNotFoundError):
        return PixelRNNError(f"Hub repo {repo_id} has no revision {revision!r}")
    if isinstance(error, EntryNotFoundError):
        if filename == WEIGHTS_NAME:
            pickles = _pickle_files(repo_id, revision, token)
            if pickles:
                return PixelRNNError(refuse_pickle_message(pickles))
        return PixelRNNError(f"Hub repo {where} has no {filename}: it is not a pixelrnn checkpoint")
    if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return PixelRNNError(
            f"cannot reach the Hub to fetch {where}, and it is not in the local cache: "
            "check the network (or HF_HUB_OFFLINE), or load a local folder"
        )
    if isinstance(error, HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        if status in (401, 403):
            return PixelRNNError(f"the Hub refused access to {where} (HTTP {status}): check the token")
        return PixelRNNError(f"the Hub failed to serve {where}: {error}")
    return PixelRNNError(f"cannot fetch {where} from the Hub: {type(error).__name__}: {error}")


def _pickle_files(repo_id, revision, token) -> list:
    from huggingface_hub import HfApi

    try:
        files = HfApi().list_repo_files(repo_id, revision=revision, token=token)
    except Exception:  # noqa: BLE001 - only used to improve the message
        return []
    return sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
