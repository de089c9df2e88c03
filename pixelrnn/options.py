"""The model's options, named once: defaults, choices, ranges, help, validation and the parameter count.

`PixelRNN`'s keywords are the parameters of `_options` below; config.json, the CLI flags and the app's
limits all read them from here, and a configuration is checked (its parameter count included) before
anything is built.
"""
import inspect
import reprlib

from . import distributions, spatial
from .errors import PixelRNNError
from .views import view_count

CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks per RNN layer and direction
MODES = ("many-to-many", "many-to-one")
ROW_HEADS = ("autoregressive", "independent")
STEPS = ("row", "pixel")
CORES = ("vector", "spatial")  # one hidden vector per row, or a feature map over its columns (spatial.py)
MAX_SIDE, MAX_HIDDEN, MAX_LAYERS, MAX_WINDOW, MAX_MIXTURES = 1024, 8192, 16, 4096, 32
MAX_LAYER_WEIGHTS = 2**27  # one weight matrix above this (512 MiB in float32) is refused
MAX_PARAMETERS = 2**28  # a model above this (1 GiB in float32) is refused; the shipped ones have < 10 M
MAX_HEAD_LAYERS = 8
MAX_VIEW_SHIFT = 4
MAX_KERNEL = 15
MAX_CLASSES, MAX_CLASS_NAME = 1000, 64


def _options(
    height: int = 28,
    width: int = 28,
    channels: int = 1,
    values: str = "binary",
    cell: str = "gru",
    hidden_size: int = 256,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    head_dropout: float = 0.0,
    input_dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    batch_norm: bool = True,
    mode: str = "many-to-many",
    window: int = 8,
    row_head: str = "autoregressive",
    step: str = "row",
    head_size: int = 256,
    head_layers: int = 1,
    mixtures: int = 5,
    direct_connections: bool = True,
    view_shift: int = 0,
    core: str = "vector",
    kernel_size: int = 3,
    classes: int = 0,
    class_names: list = [],  # noqa: B006 - never mutated; a list, as config.json holds it
):
    """PixelRNN's keywords, in the order config.json and `--help` list them."""


OPTIONS = {name: p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for name, p in inspect.signature(_options).parameters.items()}
DEFAULTS = {name: p.default for name, p in OPTIONS.items()}
# What each option may be beyond its type: whole numbers in a range, or one of a few choices.
RANGES = {
    "height": (1, MAX_SIDE), "width": (1, MAX_SIDE), "hidden_size": (1, MAX_HIDDEN), "num_layers": (1, MAX_LAYERS),
    "window": (1, MAX_WINDOW), "head_size": (1, MAX_HIDDEN), "head_layers": (1, MAX_HEAD_LAYERS),
    "mixtures": (1, MAX_MIXTURES), "view_shift": (0, MAX_VIEW_SHIFT), "kernel_size": (1, MAX_KERNEL),
    "classes": (0, MAX_CLASSES),
}  # fmt: skip
CHOICES = {"channels": (1, 3), "values": tuple(distributions.LEVELS), "cell": CELLS, "mode": MODES,
           "row_head": ROW_HEADS, "step": STEPS, "core": CORES}  # fmt: skip

HELP = {  # one line per option: the CLI's --help and the app's hints
    "height": "image height in pixels",
    "width": "image width in pixels",
    "channels": "1 (gray) or 3 (RGB)",
    "values": "binary pixels (a Bernoulli per value) or 8-bit levels (a discretized logistic mixture)",
    "cell": "the recurrent cell",
    "hidden_size": "units of the RNN (per direction) and of the row encoder and decoder (core spatial: channels per column)",
    "num_layers": "stacked RNN layers",
    "bidirectional": "read each window of rows in both directions (needs --mode many-to-one)",
    "dropout": "dropout between RNN layers and before the row head, in [0, 1)",
    "head_dropout": "dropout on the autoregressive row head's hidden units, in [0, 1)",
    "input_dropout": "dropout on the RNN's input (the encoded rows above), in [0, 1)",
    "recurrent_dropout": "dropout on the RNN's hidden-to-hidden weights, one mask per batch (weight drop), in [0, 1)",
    "batch_norm": "batch norm in the row encoder and decoder",
    "mode": "many-to-many: one RNN pass over all rows, carrying its state; many-to-one: each row from a window of the rows above",
    "window": "rows above that a many-to-one model reads",
    "row_head": "autoregressive: the values of a row one after another (MADE, exact likelihood); independent: given the rows above only (the paper)",
    "step": "what the RNN reads per step: a row, or a pixel",
    "head_size": "units of the autoregressive row head's hidden layers (core spatial: the channels of its causal row head)",
    "head_layers": "hidden layers of the autoregressive row head (core spatial: the residual blocks of its causal row head)",
    "mixtures": "logistic mixture components per 8-bit value",
    "direct_connections": "the autoregressive row head also sees the earlier values of the row directly",
    "view_shift": "also train on copies shifted by up to this many pixels, the model told which (distribution augmentation); 0: off",
    "core": "vector: one hidden vector per row; spatial: a state per column, convolutions along the row (Row LSTM; needs --no-batch-norm)",
    "kernel_size": "core spatial: the width of its convolutions along a row (odd)",
    "classes": "class-conditional: the number of classes (0: an unconditional model); set by train --labels from the data",
    "class_names": "the name of each class (empty: '0', '1', ...); set by train --labels from the data",
}


def validate_config(config: dict, max_parameters: int | None = None) -> None:
    """Refuse invalid or absurd configurations with one clear message per problem, before anything is built.

    `max_parameters` lowers the limit on the total parameter count (MAX_PARAMETERS).
    """
    problems = []
    unknown, missing = sorted(set(config) - set(OPTIONS)), [name for name in OPTIONS if name not in config]
    if unknown or missing:
        problems += [f"unknown option(s) {', '.join(map(_shown, unknown))}"] if unknown else []
        problems += [f"missing option(s) {', '.join(missing)}"] if missing else []
        raise PixelRNNError("invalid PixelRNN configuration: " + "; ".join(problems))
    for name, option in OPTIONS.items():
        value = config[name]
        if name in CHOICES:
            if not any(type(value) is type(choice) and value == choice for choice in CHOICES[name]):
                problems.append(f"{name} must be one of {', '.join(map(repr, CHOICES[name]))}, got {_shown(value)}")
        elif option.annotation is bool:
            if not isinstance(value, bool):
                problems.append(f"{name} must be true or false, got {_shown(value)}")
        elif option.annotation is int:
            low, high = RANGES[name]
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{name} must be a whole number, got {_shown(value)}")
            elif not low <= value <= high:
                problems.append(f"{name} must be between {low} and {high}, got {_shown(value)}")
        elif option.annotation is list:  # class_names
            problems += _class_name_problems(config)
        elif option.annotation is float:  # a probability: dropout
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                problems.append(f"{name} must be a number in [0, 1), got {_shown(value)}")
        else:
            raise AssertionError(f"no rule for the option {name}")
    if config["bidirectional"] is True and config["mode"] == "many-to-many":
        problems.append(
            "bidirectional=True needs mode='many-to-one': in many-to-many the backward direction would read "
            "rows below the one being predicted, so the model would not be causal"
        )
    if config["core"] == "spatial":
        problems += _spatial_problems(config)
    if not problems:
        outputs = token_size(config) * distributions.params_per_value(config["values"], config["mixtures"])
        largest = max(outputs * max(config["head_size"], config["hidden_size"]), config["hidden_size"] ** 2 * 4)
        if largest > MAX_LAYER_WEIGHTS:
            problems.append(
                f"this configuration needs a weight matrix of {largest:,} numbers (limit {MAX_LAYER_WEIGHTS:,}): "
                "use a smaller image, hidden_size or head_size"
            )
        limit = MAX_PARAMETERS if max_parameters is None else min(max_parameters, MAX_PARAMETERS)
        total = parameter_count(config)
        if total > limit:
            problems.append(
                f"this configuration has {total:,} parameters (limit {limit:,}): "
                "use a smaller hidden_size, num_layers, head_size, head_layers or image"
            )
    if problems:
        raise PixelRNNError("invalid PixelRNN configuration: " + "; ".join(problems))


def _spatial_problems(config: dict) -> list:
    """What core='spatial' does not combine with: it is many-to-many, one row per step, its own row head."""
    wanted = {"mode": "many-to-many", "step": "row", "row_head": "autoregressive", "bidirectional": False,
              "batch_norm": False, "view_shift": 0, "input_dropout": 0.0, "recurrent_dropout": 0.0}  # fmt: skip
    problems = [f"core='spatial' needs {name}={value!r}, got {_shown(config[name])}" for name, value in wanted.items() if config[name] != value]
    if config["kernel_size"] % 2 == 0:
        problems.append(f"kernel_size must be odd (a column and as many on each side), got {config['kernel_size']}")
    return problems


def _class_name_problems(config: dict) -> list:
    names, classes = config["class_names"], config["classes"]
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        return [f"class_names must be a list of names, got {_shown(names)}"]
    problems = []
    if names and isinstance(classes, int) and len(names) != classes:
        problems.append(f"class_names has {len(names)} names for {_shown(classes)} classes")
    if any(not name.strip() or len(name) > MAX_CLASS_NAME or not name.isprintable() for name in names):
        problems.append(f"each class name must be printable text of 1 to {MAX_CLASS_NAME} characters")
    if len(set(names)) != len(names):
        problems.append("class_names must be distinct")
    return problems


def class_names(config: dict) -> list:
    """The name of each class of a class-conditional model: config's, or '0', '1', ... when it names none."""
    return list(config["class_names"]) or [str(i) for i in range(config["classes"])]


def parameter_count(config: dict) -> int:
    """How many parameters PixelRNN(**config) has, from a valid config alone: nothing is built or allocated."""
    c = {**DEFAULTS, **config}
    classes = c["classes"] * c["hidden_size"]  # a learned vector per class
    if c["core"] == "spatial":
        return classes + spatial.parameter_count(c, distributions.params_per_value(c["values"], c["mixtures"]))
    hidden, directions = c["hidden_size"], 2 if c["bidirectional"] else 1
    values_per_token = token_size(c)  # D
    outputs = values_per_token * distributions.params_per_value(c["values"], c["mixtures"])  # D * K
    norm = 2 * hidden if c["batch_norm"] else 0  # batch norm's weight and bias
    encoder = values_per_token * hidden + hidden + norm
    decoder = hidden * directions * hidden + hidden + norm
    gates = GATES[c["cell"]] * hidden
    layer_inputs = [hidden] + [hidden * directions] * (c["num_layers"] - 1)
    rnn = directions * sum(gates * (inputs + hidden + 2) for inputs in layer_inputs)  # input, hidden weights, two biases
    if c["row_head"] == "autoregressive":
        size = c["head_size"]
        head = (values_per_token + 1) * size + (hidden + 1) * size + (c["head_layers"] - 1) * (size + 1) * size
        head += (size + 1) * outputs + (hidden + 1) * outputs
        head += values_per_token * outputs if c["direct_connections"] else 0
    else:
        head = (hidden + 1) * outputs
    views = view_count(c["view_shift"]) * hidden if c["view_shift"] else 0
    return hidden + encoder + rnn + decoder + head + views + classes  # hidden: the start token


def _shown(value) -> str:
    """A value as a message shows it: short, whatever its size or depth."""
    if isinstance(value, int) and value.bit_length() > 200:  # repr would be long, or refused past 4300 digits
        digits = int((value.bit_length() - 1) * 0.30102999566398) + 1  # at most one short
        return f"a whole number of {digits + (abs(value) >= 10**digits)} digits"
    return reprlib.repr(value)


def token_size(config: dict) -> int:
    """D: values per token, a row's (width x channels) or a pixel's (channels)."""
    return config["width"] * config["channels"] if config["step"] == "row" else config["channels"]


def describe(config: dict) -> str:
    """The model in a few words, as cards and the app name it: its core, cell, sizes and row head."""
    c = {**DEFAULTS, **config}
    layers = f" x {c['num_layers']} layers" if c["num_layers"] > 1 else ""
    if c["classes"]:
        return f"{describe({**c, 'classes': 0})}, conditioned on {c['classes']} classes"
    if c["core"] == "spatial":
        return (f"spatial {c['cell'].upper()} {c['hidden_size']} per column{layers}, kernel {c['kernel_size']}, "
                f"causal row head {c['head_size']} x {c['head_layers']}")  # fmt: skip
    return f"{c['cell'].upper()} {c['hidden_size']}{layers}, {c['mode']}, {c['row_head']} row head"


def sampling_steps(config: dict) -> int:
    """How many steps drawing one image takes one after another, whatever the batch size (the app's time limit).

    core 'vector': the RNN's steps, one per token (a row, or a pixel), times the window for many-to-one; each
    layer and each direction waits for the one before. Then the row head: one pass per value (autoregressive) or
    per token (independent).
    core 'spatial': one recurrent step per row and layer; then its causal row head, column by column: its first
    layer and its `head_layers` blocks at the new column (spatial._sample_row), then one small layer per channel.
    """
    c = {**DEFAULTS, **config}
    values = c["height"] * c["width"] * c["channels"]
    if c["core"] == "spatial":
        return c["height"] * c["num_layers"] + c["height"] * c["width"] * (1 + c["head_layers"]) + values
    tokens = values // token_size(c)
    rnn_steps = tokens * (c["window"] if c["mode"] == "many-to-one" else 1) * c["num_layers"] * (2 if c["bidirectional"] else 1)
    return rnn_steps + (values if c["row_head"] == "autoregressive" else tokens)
