"""Talking to the Hugging Face Hub: fetch one file of a repo, list a repo's files, and the errors a person can act on.

Publishing (which needs the model, its card and samples) is in publish.py; this module knows nothing of models.
Tokens are passed to huggingface_hub for its requests and nowhere else: never logged, never written.
`token=False` sends no token at all, even when HF_TOKEN is set (anonymous loads, as the app does for visitors).

A Hub that accepts connections and never answers would hang huggingface_hub for minutes (several of its calls
send no timeout, and its downloads retry timeouts five times). Every request pixelrnn makes waits at most
`hub_timeout()` seconds for an answer (HUB_TIMEOUT, or the environment variable PIXELRNN_HUB_TIMEOUT) and is
not retried once it timed out; a refused connection (no network, a Hub that is down) is not retried either, so
an unreachable Hub is said at once instead of after five "Retrying in Ns" pauses (about 25 s). For that, every Hub call first wraps the httpx client factory set in
huggingface_hub (set_client_factory) once, for the whole process; a factory the user set is kept inside.
"""
import contextlib
import contextvars
import os
import sys
import time

from .errors import PixelRNNError

HUB_TIMEOUT = 60.0  # seconds the Hub has to answer a request; PIXELRNN_HUB_TIMEOUT overrides it
# The files a Hub repo may hold, at most these many bytes each (what the Hub reports, checked before fetching).
MAX_BYTES = {"config.json": 2**20, "README.md": 2**20}
_deadline = contextvars.ContextVar("pixelrnn_hub_deadline", default=None)  # time.monotonic() when all must be done
_size_limits = contextvars.ContextVar("pixelrnn_hub_size_limits", default={})
TOKEN_HELP = "pass token=... (--token), or set HF_TOKEN; create one at https://huggingface.co/settings/tokens"


class FileMissing(PixelRNNError):
    """The repo (at that revision) exists and answers, but has no such file."""


class _NoAnswer(Exception):
    """A request timed out; deliberately not an httpx TimeoutException, so that huggingface_hub does not retry it."""


class _Unreachable(Exception):
    """A connection could not be made; deliberately not an httpx ConnectError, so that huggingface_hub does not retry it."""


def hub_timeout() -> float:
    """How long to wait for the Hub to answer one request, in seconds."""
    text = os.environ.get("PIXELRNN_HUB_TIMEOUT", "").strip()
    if not text:
        return HUB_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= 3600:
        raise PixelRNNError(f"PIXELRNN_HUB_TIMEOUT must be a number of seconds between 0 and 3600, got {text!r}")
    return seconds


@contextlib.contextmanager
def deadline(seconds: float | None = None):
    """Every Hub request inside ends by one deadline, `seconds` from now (default `hub_timeout()`), bytes
    arriving or not: a Hub that drips its answer cannot hold a load or a push longer. Nested, the earlier wins."""
    end = time.monotonic() + (hub_timeout() if seconds is None else seconds)
    outer = _deadline.get()
    token = _deadline.set(end if outer is None else min(outer, end))
    try:
        yield
    finally:
        _deadline.reset(token)


@contextlib.contextmanager
def size_limits(limits: dict):
    """File name -> the most bytes `fetch` downloads of it, inside this block (on top of MAX_BYTES)."""
    token = _size_limits.set({**_size_limits.get(), **limits})
    try:
        yield
    finally:
        _size_limits.reset(token)


def max_bytes(filename: str) -> int | None:
    return _size_limits.get().get(filename, MAX_BYTES.get(filename))


def connect() -> None:
    """Make every huggingface_hub request in this process give up after `hub_timeout()` seconds without an answer.

    The client factory set in huggingface_hub (its default, or one the user set) is wrapped, not replaced: its
    clients keep their transport, proxies and hooks, and only their `send` gains the timeout.
    """
    hub_timeout()  # a bad PIXELRNN_HUB_TIMEOUT is said here, before any request
    from huggingface_hub.utils import _http, set_client_factory

    current = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None) or _http.default_client_factory
    if getattr(current, "_pixelrnn_timed", False):
        return
    httpx = getattr(_http, "httpx2", None) or _http.httpx  # httpx2 in huggingface_hub 2.x, httpx in 1.x

    def timed_factory():
        return _with_timeout(current(), httpx)

    timed_factory._pixelrnn_timed = True
    set_client_factory(timed_factory)


def _with_timeout(client, httpx):
    """`client`, whose requests now carry the timeout and whose timeouts are not retried by huggingface_hub."""
    send = client.send

    class Until(httpx.SyncByteStream):
        """A response body that stops with _NoAnswer once the deadline has passed, however slowly it arrives."""

        def __init__(self, stream, end: float):
            self.stream, self.end = stream, end

        def __iter__(self):
            for chunk in self.stream:
                if time.monotonic() > self.end:
                    raise _NoAnswer("the Hub's answer did not arrive in time")
                yield chunk

        def close(self):
            self.stream.close()

    def timed_send(request, *, stream=False, **kwargs):
        end = _deadline.get()
        left = hub_timeout() if end is None else end - time.monotonic()
        if left <= 0:
            raise _NoAnswer("the deadline of this Hub operation has passed")
        request.extensions = {**request.extensions, "timeout": httpx.Timeout(left).as_dict()}
        try:
            response = send(request, stream=True, **kwargs)
            if end is not None:  # each read has its timeout; the deadline also bounds all of them together
                response.stream = Until(response.stream, end)
            if not stream:
                response.read()
            return response
        except httpx.TimeoutException as error:
            raise _NoAnswer(str(error)) from error
        except httpx.ConnectError as error:
            raise _Unreachable(str(error)) from error

    client.send = timed_send
    return client


def fetch(repo_id: str, filename: str, revision=None, *, token=None, cache_dir=None, local_files_only=False,
          force_download=False) -> str:  # fmt: skip
    """The local path of one file of a Hub model repo, downloaded or taken from the local cache.

    Raises FileMissing when the repo answers but has no such file. A file larger than `max_bytes(filename)`, by
    the size the Hub reports, is refused before it is downloaded. All its requests end by one deadline.
    """
    with deadline():
        return _fetch(repo_id, filename, revision, token, cache_dir, local_files_only, force_download)


def _fetch(repo_id, filename, revision, token, cache_dir, local_files_only, force_download) -> str:
    from huggingface_hub import hf_hub_download

    check_repo_id(repo_id, local_too=True)
    connect()
    options = dict(revision=revision, token=token, cache_dir=cache_dir)
    try:
        if not local_files_only:
            _check_size(repo_id, filename, revision, token)
        return hf_hub_download(repo_id, filename, local_files_only=local_files_only, force_download=force_download, **options)
    except PixelRNNError:
        raise
    except Exception as error:  # noqa: BLE001 - every Hub failure becomes one clear message
        if (_no_answer(error) or _unreachable(error)) and not force_download:  # as huggingface_hub does when the Hub is unreachable
            try:
                return hf_hub_download(repo_id, filename, local_files_only=True, **options)
            except Exception:  # noqa: BLE001 - not in the cache either: report the timeout
                pass
        raise _download_error(error, filename, repo_id, revision) from None


def _check_size(repo_id, filename, revision, token) -> None:
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    limit = max_bytes(filename)
    if limit is None or constants.HF_HUB_OFFLINE:
        return
    try:
        size = get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), token=token).size
    except Exception as error:  # noqa: BLE001 - the download below meets the same failure and says it
        if _no_answer(error):
            raise
        return
    if size is not None and size > limit:
        raise PixelRNNError(
            f"{filename} of {where(repo_id, revision)} is {size:,} bytes; a pixelrnn {filename} here is at most "
            f"{limit:,}: it is not fetched"
        )


def list_files(repo_id: str, revision=None, *, token=None) -> list[str]:
    """Every file name in a Hub model repo, or [] when the Hub cannot say (only used to improve messages)."""
    from huggingface_hub import HfApi

    connect()
    try:
        return list(HfApi().list_repo_files(repo_id, revision=revision, token=token))
    except Exception:  # noqa: BLE001
        return []


def check_repo_id(repo_id: str, local_too: bool = False) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        neither = "neither a checkpoint folder on this machine nor" if local_too else "not"
        raise PixelRNNError(f"{repo_id!r} is {neither} a Hub repo id like 'user/model'") from None


def where(repo_id, revision) -> str:
    return f"{repo_id}" + (f" (revision {revision})" if revision else "")


def _download_error(error, filename, repo_id, revision) -> PixelRNNError:
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, OfflineModeIsEnabled

    place = where(repo_id, revision)
    if _no_answer(error):
        return hub_error(error, place, "fetch", "read")
    # LocalEntryNotFoundError is also an EntryNotFoundError: a cache miss must not read as a missing file
    if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled)) or _unreachable(error):
        return PixelRNNError(
            f"cannot reach the Hub to fetch {place}, and it is not in the local cache: "
            "check the network (or HF_HUB_OFFLINE), or load a local folder"
        )
    if isinstance(error, EntryNotFoundError):
        return FileMissing(f"Hub repo {place} has no {filename}: it is not a pixelrnn checkpoint")
    return hub_error(error, place, "fetch", "read") or PixelRNNError(
        f"cannot fetch {place} from the Hub: {type(error).__name__}: {error}"
    )


def hub_error(error, place, doing, access) -> PixelRNNError | None:
    """The failures that read the same for fetching and publishing; None for anything else."""
    from huggingface_hub import constants
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if _no_answer(error):
        return PixelRNNError(
            f"the Hub at {constants.ENDPOINT} did not answer within {hub_timeout():g} s while trying to {doing} {place}: "
            "try again later (PIXELRNN_HUB_TIMEOUT sets how long to wait)"
        )
    if isinstance(error, GatedRepoError):
        return PixelRNNError(f"{place} is gated: accept its terms on the Hub and pass a token")
    if isinstance(error, RepositoryNotFoundError):
        return PixelRNNError(
            f"Hub repo {place} was not found, or it is private and the token does not give access to it"
        )
    if isinstance(error, RevisionNotFoundError):
        return PixelRNNError(f"Hub repo {place} has no such revision (branch, tag or commit)")
    if _is_network_error(error) or _unreachable(error):
        return PixelRNNError(
            f"cannot reach the Hub at {constants.ENDPOINT} to {doing} {place}: check the network connection "
            "(and HF_ENDPOINT, if set)"
        )
    if isinstance(error, HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        if status == 401:
            return PixelRNNError(f"the Hub rejected the token (HTTP 401) while trying to {doing} {place}: {TOKEN_HELP}")
        if status == 403:
            return PixelRNNError(f"the Hub refused to {doing} {place} (HTTP 403): the token needs {access} access")
        return PixelRNNError(f"the Hub failed to {doing} {place}: {error}")
    return None


def _no_answer(error, kind=_NoAnswer) -> bool:
    """Whether a request timed out, here or behind the exceptions huggingface_hub wraps it in."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, kind):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _unreachable(error) -> bool:
    """Whether a connection to the Hub could not be made, here or behind huggingface_hub's exceptions."""
    return _no_answer(error, _Unreachable)


def _is_network_error(error) -> bool:
    # huggingface_hub 2.x speaks through httpx2, 1.x through httpx: whichever is loaded raised it
    transports = [module.TransportError for module in (sys.modules.get("httpx2"), sys.modules.get("httpx")) if module]
    return isinstance(error, tuple(transports))
