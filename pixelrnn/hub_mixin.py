"""The model's checkpoint methods: `from_pretrained`, `save_pretrained`, `push_to_hub`, over checkpoint.py.

huggingface_hub's PyTorchModelHubMixin gives the model its Hub identity (card metadata, the class keywords);
its loading (strict=False, a pickle fallback) and saving are replaced here by checkpoint.py's strict,
safetensors-only ones, and publishing goes through upload.py's checks.
"""
import tempfile
from pathlib import Path

from huggingface_hub import PyTorchModelHubMixin

from . import checkpoint, upload
from .card import HUB_METADATA

MIXIN_KEYWORDS = {**HUB_METADATA, "tags": list(HUB_METADATA["tags"])}  # the class keywords of the mixin


class CheckpointMethods(PyTorchModelHubMixin, **MIXIN_KEYWORDS):
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, revision: str | None = None, *,
                        max_parameters: int | None = None, **kwargs):  # fmt: skip
        """Load from a checkpoint folder or a Hub repo id: strict, safetensors only, in eval mode.

        `token=False` loads anonymously (no token is sent, even with HF_TOKEN set); `max_parameters` refuses a
        larger model from its config.json, before its weights are downloaded or anything is built.
        """
        return checkpoint.load(cls, pretrained_model_name_or_path, revision, max_parameters=max_parameters, **kwargs)

    def save_pretrained(self, save_directory, *, model_card_kwargs: dict | None = None, push_to_hub=False, repo_id=None, **push_kwargs):
        """Write model.safetensors, config.json and a model card (README.md) to a folder (and publish it)."""
        checkpoint.save(self, save_directory, **(model_card_kwargs or {}))
        if push_to_hub:
            return upload.push_loaded(Path(save_directory), self, repo_id, **push_kwargs)
        return None

    def push_to_hub(self, repo_id: str, *, private: bool = False, revision: str | None = None, token: str | None = None,
                    commit_message: str | None = None, model_card_kwargs: dict | None = None) -> str:  # fmt: skip
        """Publish this model to a Hub repo, through the same checks as `python -m pixelrnn push`."""
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, model_card_kwargs=model_card_kwargs)
            return upload.push_loaded(Path(folder), self, repo_id, private=private, revision=revision, token=token,
                                      commit_message=commit_message)  # fmt: skip
