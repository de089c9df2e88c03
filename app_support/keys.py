"""A model key: where a model of the app comes from, parsed once.

The page's model list, its session state and the API carry a key as a string, "<kind>:<name>":
"local:<folder>" (a checkpoint folder of the weights folder), "preset:<repo id>" (a Hub model the operator listed
in PIXELRNN_HUB_MODELS: loaded with the server's token), "hub:<repo id>@<revision>" (a visitor's Hub load:
anonymous, never with the server's token; an empty revision is main) or "trained:<run id>" (a run of the Train tab).
`ModelKey.parse` turns that string into its parts; `str(key)` gives it back.
"""
from dataclasses import dataclass

import pixelrnn

KINDS = ("local", "preset", "hub", "trained")


@dataclass(frozen=True)
class ModelKey:
    kind: str
    name: str  # a folder name, a repo id or a run id
    revision: str = ""  # a Hub load's branch, tag or commit id ("": main)

    @classmethod
    def parse(cls, text) -> "ModelKey":
        kind, colon, name = (text if isinstance(text, str) else "").partition(":")
        if not colon or kind not in KINDS:
            raise pixelrnn.PixelRNNError(f"unknown model {text!r}: choose one in the model list")
        if kind == "hub":
            name, _, revision = name.rpartition("@")
            return cls(kind, name, revision)
        return cls(kind, name)

    def __str__(self) -> str:
        return f"hub:{self.name}@{self.revision}" if self.kind == "hub" else f"{self.kind}:{self.name}"

    @property
    def from_hub(self) -> bool:
        return self.kind in ("hub", "preset")

    @property
    def label(self) -> str:
        """The model's name in the model list."""
        if self.kind == "hub":
            return f"Hub: {self.name}" + (f"@{self.revision}" if self.revision else "")
        return "trained in this session" if self.kind == "trained" else self.name

    @property
    def shareable(self) -> tuple[str | None, str]:
        """(the `?model=` name, its revision) of a link to this model; (None, "") for a model trained here."""
        return (None, "") if self.kind == "trained" else (self.name, self.revision)


def label(key: str) -> str:
    """A key string's name in the model list (the string itself when it is no key)."""
    try:
        return ModelKey.parse(key).label
    except pixelrnn.PixelRNNError:
        return str(key)
