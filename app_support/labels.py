"""The words of the page that handlers and tests both read: the model line, the notes, the choices' names.

Every name and number here may come from a visitor or a Hub repo: it is shown as plain text (text.plain), and
the links built here are URL-encoded (text.url_part).
"""
import json
import os
from urllib.parse import urlencode

import pixelrnn

from .keys import ModelKey
from .text import plain, url_part

RESTORE, COMPLETE = "restore (teacher-forced)", "complete from the first rows"
SPLITS = {"test": "test", "valid": "validation", "train": "training"}
HUB_URL = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def measured(metrics: dict) -> str:
    """A card's metrics said as the README's tables say them: "test NLL 78.97 nats, 0.145 bits/dim".

    NLLs are nats per image, bits per dim per value; epoch and step name the checkpoint they were measured on
    (the best by validation NLL, not the run's last step). Any other metric is shown as plain text.
    """
    metrics = {name: value for name, value in (metrics or {}).items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
    if not metrics:
        return ""
    figures = []
    for split, word in SPLITS.items():
        nll, bits = metrics.pop(f"{split}_nll_nats", None), metrics.pop(f"{split}_bits_per_dim", None)
        said = ([f"NLL {nll:.2f} nats"] if nll is not None else []) + ([f"{bits:.3f} bits/dim"] if bits is not None else [])
        if said:
            figures.append(f"{word} {', '.join(said)}")
    where = [f"{name} {int(metrics.pop(name)):,}" for name in ("epoch", "step") if name in metrics]
    figures += [f"{plain(name)} {value:.4g}" if isinstance(value, float) else f"{plain(name)} {value}" for name, value in metrics.items()]
    if not figures:
        return ""
    checkpoint = f" on the checkpoint kept ({', '.join(where)})" if where else ""
    return f"Measured{checkpoint}: {'; '.join(figures)}."


def describe(model, key, metrics: dict | None = None) -> str:
    """The model line: where from, device, shape, options, parameters; its card's metrics; how to share and load it."""
    key = key if isinstance(key, ModelKey) else ModelKey.parse(key)
    c = model.config
    layers = f"{c['num_layers']} layer{'s' if c['num_layers'] > 1 else ''}"
    options = [f"{c['cell'].upper()} {c['hidden_size']} x {layers}", c["mode"], f"{c['row_head']} row head"]
    if c["mode"] == "many-to-one":
        options.append(f"window {c['window']}" + (", bidirectional" if c["bidirectional"] else ""))
    if c["batch_norm"]:
        options.append("batch norm")
    if c.get("classes"):
        options.append(f"{c['classes']:,} classes")  # their names: the class pickers (classes.py)
    lines = [
        f"**{plain(key.label)}** on **{model.device.type}**: {c['height']}x{c['width']} {_color(c)}, {plain(c['values'])} values; "
        f"{plain(', '.join(options))}; {pixelrnn.count_parameters(model):,} parameters."
    ]
    lines += [measured(metrics)] if measured(metrics) else []
    repo, revision = key.shareable
    if repo:
        card = f"{HUB_URL}/{url_part(repo, '/')}" + (f"/tree/{url_part(revision)}" if revision else "") if key.from_hub else None
        query = "?" + urlencode({"model": repo, **({"revision": revision} if revision else {})})
        lines.append(" · ".join([f"[share this model]({query})"] + ([f"[model card]({card})"] if card else [])))
        if card:
            load_args = _literal(repo) + (f", revision={_literal(revision)}" if revision else "")
            lines.append(
                f"```python\nimport pixelrnn\nmodel = pixelrnn.PixelRNN.from_pretrained({load_args})\n"
                "last = pixelrnn.sample.last(pixelrnn.generate(model, n=16, seed=0))\n```"
            )
    return "\n\n".join(lines)


def no_checkpoint_message(folder, files, default: str) -> str:
    return (
        f"No checkpoint found in {folder} (each model is a folder with {' and '.join(files)}; "
        f"the default is {default}). Train one in the Train tab, or load one from the Hub."
    )


def compare_note(first_key: str, first, second_key: str, second) -> str:
    """What two models have in common: each one's image size and values, and when their losses are not comparable."""
    a, b = first.config, second.config
    note = f"A: {plain(ModelKey.parse(first_key).label)}, {_said(a)}. B: {plain(ModelKey.parse(second_key).label)}, {_said(b)}."
    if a["values"] != b["values"]:
        note += (" Their losses are not comparable: both are nats per value, but a binary value has 2 levels and "
                 "an 8-bit one 256, so the 8-bit model's figures are larger by nature.")  # fmt: skip
    if (a["height"], a["width"]) != (b["height"], b["width"]):
        note += (f" The image is resized to each model's size, so the two curves have {a['height']} and {b['height']} rows; "
                 "a model with fewer rows keeps all of its rows when more are asked.")  # fmt: skip
    return note


def _color(config) -> str:
    return "gray" if config["channels"] == 1 else "RGB"


def _said(config) -> str:
    return f"{config['height']}x{config['width']} {_color(config)}, {'binary' if config['values'] == 'binary' else '8-bit'} values"


def _literal(text: str) -> str:
    """A Python string literal of `text` without a markup character (the same string: \\u003c is <)."""
    return json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
