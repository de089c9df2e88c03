"""The model card (README.md of a checkpoint): Hub YAML metadata, metrics, samples, usage, configuration.

A card is always rebuilt whole from its inputs, and `card_fields` reads those inputs back from an
existing card, so publishing the same folder again gives the same card: no section twice, no metric lost.
"""
import json
import re

import yaml

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
        f"# PixelRNN ({shape}, {config['values']}, {config['cell'].upper()}, {config['mode']}, {config['row_head']} row head)",
        "",
        f"A row-by-row autoregressive image model from [pixelrnn]({REPO_URL}): "
        "an RNN reads the rows above and predicts the next row.",
        "",
        f"Parameters: {parameters:,}.",
    ]
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
        "*_, last = pixelrnn.generate(model, n=16, seed=0)",
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


def card_fields(text: str) -> dict:
    """What an existing card says that the weights cannot: its metrics, data set and training command.

    Anything missing or malformed (a hand-edited card) is left out rather than guessed.
    """
    metadata = _front_matter(text)
    fields = {}
    metrics = _metrics(metadata)
    if metrics:
        fields["metrics"] = metrics
    datasets = metadata.get("datasets")
    if isinstance(datasets, list) and datasets and isinstance(datasets[0], str):
        fields["data"] = datasets[0]
    command = re.search(r"^## Reproduce\n\n```bash\n(.*?)\n```$", text, re.MULTILINE | re.DOTALL)
    if command:
        fields["command"] = command.group(1)
    return fields


def _front_matter(text: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    if not match:
        return {}
    try:
        metadata = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _metrics(metadata: dict) -> dict:
    try:
        entries = metadata["model-index"][0]["results"][0]["metrics"]
        return {entry["type"]: entry["value"] for entry in entries}
    except (KeyError, IndexError, TypeError):
        return {}
