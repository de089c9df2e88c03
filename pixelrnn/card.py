"""The model card (README.md of a checkpoint): Hub YAML metadata, metrics, samples, usage, configuration.

A card is always rebuilt whole from its inputs, and `card_fields` reads those inputs back from an
existing card, so publishing the same folder again gives the same card: no section twice, no metric lost.
"""
import json
import math
import re

import yaml

from .options import class_names, describe

SAMPLES_IMAGE = "samples.png"
TASK = "unconditional-image-generation"
REPO_URL = "https://github.com/pixelrnn/pixelrnn"
# The Hub metadata of every pixelrnn model: the mixin's class keywords in model.py and every card use this.
HUB_METADATA = {
    "library_name": "pixelrnn",
    "license": "mit",
    "pipeline_tag": TASK,
    "tags": ("pixelrnn", "image-generation", "autoregressive", "pytorch"),
    "repo_url": REPO_URL,
}


def model_card(config: dict, parameters: int, metrics: dict | None = None, data: str | None = None,
               command: str | None = None, repo_id: str | None = None, samples_image: str | None = None,
               revision: str | None = None) -> str:  # fmt: skip
    """The card of a model with this configuration and this many parameters."""
    metadata = {
        "library_name": HUB_METADATA["library_name"],
        "license": HUB_METADATA["license"],
        "pipeline_tag": HUB_METADATA["pipeline_tag"],
        "tags": [*HUB_METADATA["tags"], "pytorch_model_hub_mixin"],  # the tag the mixin adds to its own cards
    }
    if data:
        metadata["datasets"] = [data]
    if metrics:
        metadata["model-index"] = [
            {
                "name": repo_id or "pixelrnn",
                "results": [
                    {
                        "task": {"type": TASK},
                        "dataset": {"name": data or "unknown", "type": data or "unknown"},
                        "metrics": [{"type": key, "name": key, "value": value} for key, value in metrics.items()],
                    }
                ],
            }
        ]
    shape = f"{config['height']}x{config['width']}x{config['channels']}"
    lines = [
        "---",
        yaml.safe_dump(metadata, sort_keys=False).strip(),
        "---",
        "",
        f"# PixelRNN ({shape}, {config['values']}, {describe(config)})",
        "",
        f"A row-by-row autoregressive image model from [pixelrnn]({REPO_URL}): "
        "an RNN reads the rows above and predicts the next row.",
        "",
        f"Parameters: {parameters:,}.",
    ]
    if config.get("classes"):
        lines += ["", f"Class-conditional, {config['classes']} classes: {', '.join(class_names(config))}. "
                  "Its NLL figures are of the exact marginal p(x) unless they say `conditional` (given the true class)."]
    if data:
        lines += ["", f"Trained on: {data}."]
    if metrics:
        lines += ["", "## Metrics (measured)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |" for key, value in metrics.items()]
    if samples_image:
        lines += ["", "## Samples", "", f"![samples drawn from the model]({samples_image})"]
    if command:
        lines += ["", "## Reproduce", "", "```bash", command, "```"]
    load_from = json.dumps(repo_id or "path/to/this/folder")
    load_args = load_from + (f", revision={json.dumps(revision)}" if revision else "")
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "import pixelrnn",
        f"model = pixelrnn.PixelRNN.from_pretrained({load_args})",
        "last = pixelrnn.sample.last(pixelrnn.generate(model, n=16, seed=0" + (", labels=0" if config.get("classes") else "") + "))",
        'pixelrnn.to_pil(last.image, model, scale=4).save("samples.png")',
        "```",
        "",
        "## Configuration",
        "",
        "```json",
        json.dumps(config, indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


MAX_FRONT_MATTER = 64 * 2**10  # characters of YAML read from a card: pixelrnn's own take a few hundred
MAX_YAML_DEPTH = 32  # nesting of a card's YAML; pixelrnn's own cards go 6 deep
MAX_METRICS, MAX_METRIC_NAME = 32, 64
METRIC_NAME = re.compile(r"[A-Za-z0-9_. /-]+")  # a metric is a short plain name and a number, or it is ignored


def card_fields(text: str) -> dict:
    """What an existing card says that the weights cannot: its metrics, data set and training command.

    Anything missing, malformed or hostile (a hand-edited card, YAML aliases, deep nesting, huge numbers) is left
    out rather than guessed. Reading is linear in the card's length; its YAML is read only up to MAX_FRONT_MATTER.
    """
    metadata = _front_matter(text)
    fields = {}
    metrics = _metrics(metadata)
    if metrics:
        fields["metrics"] = metrics
    datasets = metadata.get("datasets")
    if isinstance(datasets, list) and datasets and isinstance(datasets[0], str):
        fields["data"] = datasets[0]
    command = _reproduce_command(text)
    if command is not None:
        fields["command"] = command
    return fields


def _reproduce_command(text: str) -> str | None:
    """The body of the first "## Reproduce" section's bash block, read line by line (no backtracking)."""
    lines = iter(text.split("\n"))
    for line in lines:
        if line != "## Reproduce":
            continue
        if next(lines, None) != "" or next(lines, None) != "```bash":
            continue
        body = []
        for line in lines:
            if line == "```":
                return "\n".join(body)
            body.append(line)
        return None
    return None


class _CardLoader(yaml.SafeLoader):
    """Safe YAML without aliases (a few hundred bytes of them expand to gigabytes) and with bounded nesting."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases are not read in a model card")
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.YAMLError("the card's YAML is nested too deeply")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _front_matter(text: str) -> dict:
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---\n", 3, MAX_FRONT_MATTER + 8)
    if end < 0:
        return {}
    try:
        metadata = yaml.load(text[4:end], Loader=_CardLoader)  # noqa: S506 - a SafeLoader
    except (yaml.YAMLError, ValueError, RecursionError):  # ValueError: an integer of thousands of digits
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _metrics(metadata: dict) -> dict:
    try:
        entries = metadata["model-index"][0]["results"][0]["metrics"]
    except (KeyError, IndexError, TypeError):
        return {}
    if not isinstance(entries, list):
        return {}
    metrics = {}
    for entry in entries[:MAX_METRICS]:
        name, value = (entry.get("type"), entry.get("value")) if isinstance(entry, dict) else (None, None)
        if _is_metric(name, value):
            metrics[name] = value
    return metrics


def _is_metric(name, value) -> bool:
    if not (isinstance(name, str) and len(name) <= MAX_METRIC_NAME and METRIC_NAME.fullmatch(name)):
        return False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and abs(value) < 1e15
