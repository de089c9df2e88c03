"""The model card (README.md of a checkpoint): Hub YAML metadata, configuration, metrics, usage."""
import json

import yaml

from .model import count_parameters


def model_card(model, metrics: dict | None = None, data: str | None = None, command: str | None = None,
               repo_id: str | None = None, samples_image: str | None = None) -> str:  # fmt: skip
    config = model.config
    metadata = {
        "library_name": "pixelrnn",
        "license": "mit",
        "pipeline_tag": "unconditional-image-generation",
        "tags": ["pixelrnn", "image-generation", "autoregressive", "pytorch", "pytorch_model_hub_mixin"],
    }
    if data:
        metadata["datasets"] = [data]
    if metrics:
        metadata["model-index"] = [
            {
                "name": repo_id or "pixelrnn",
                "results": [
                    {
                        "task": {"type": "unconditional-image-generation"},
                        "dataset": {"name": data or "unknown", "type": data or "unknown"},
                        "metrics": [{"type": key, "value": value} for key, value in metrics.items()],
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
        "A row-by-row autoregressive image model from [pixelrnn](https://github.com/pixelrnn/pixelrnn): "
        "an RNN reads the rows above and predicts the next row.",
        "",
        f"Parameters: {count_parameters(model):,}.",
    ]
    if data:
        lines += ["", f"Trained on: {data}."]
    if metrics:
        lines += ["", "## Metrics (measured)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |" for key, value in metrics.items()]
    if samples_image:
        lines += ["", "## Samples", "", f"![samples]({samples_image})"]
    if command:
        lines += ["", "## Reproduce", "", "```bash", command, "```"]
    load_from = repo_id or "path/to/this/folder"
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "import pixelrnn",
        f'model = pixelrnn.PixelRNN.from_pretrained("{load_from}")',
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
