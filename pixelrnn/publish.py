"""Publishing a checkpoint folder to the Hugging Face Hub: `push` checks and loads the folder, upload.py sends it."""
from pathlib import Path

from . import hub
from .checkpoint import WEIGHTS_NAME, pickle_files
from .errors import PixelRNNError
from .model import PixelRNN
from .upload import push_loaded


def push(folder, repo_id: str, *, private: bool = False, revision: str | None = None, token: str | None = None,
         commit_message: str | None = None) -> str:  # fmt: skip
    """Publish a checkpoint folder to a Hub model repo and return the URL of the commit.

    Uploads model.safetensors, config.json, the model card (README.md, rebuilt for this repo and keeping the
    metrics, data set and command of the folder's card) and samples.png (16 samples, seed 0, drawn here when
    the folder has none). Nothing else in the folder is uploaded, and the folder is not changed. Creates the
    repo, and the branch `revision`, when they do not exist yet. A Hub that does not answer a request within
    `hub.hub_timeout()` seconds, all its requests together, ends the push with a PixelRNNError.
    """
    hub.check_repo_id(repo_id)
    folder = Path(folder)
    model = _publishable_model(folder)
    return push_loaded(folder, model, repo_id, private=private, revision=revision, token=token, commit_message=commit_message)


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
