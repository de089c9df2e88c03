"""`python -m pixelrnn train | sample | eval | push`: each subcommand a thin call into the library.

Every flag of `train` comes from one place: the model's options (pixelrnn.model.OPTIONS, its keyword
arguments) with the help lines of MODEL_HELP and the choices of pixelrnn.model, and the fields of
TrainConfig with the help in their metadata.
"""
import argparse
import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path

from . import distributions
from .errors import PixelRNNError
from .model import CELLS, MODES, OPTIONS, ROW_HEADS, STEPS, PixelRNN

MODEL_HELP = {
    "height": "image height in pixels",
    "width": "image width in pixels",
    "channels": "1 (gray) or 3 (RGB)",
    "values": "binary pixels (a Bernoulli per value) or 8-bit levels (a discretized logistic mixture)",
    "cell": "the recurrent cell",
    "hidden_size": "units of the RNN (per direction) and of the row encoder and decoder",
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
    "head_size": "units of the autoregressive row head's hidden layers",
    "head_layers": "hidden layers of the autoregressive row head",
    "mixtures": "logistic mixture components per 8-bit value",
    "direct_connections": "the autoregressive row head also sees the earlier values of the row directly",
    "view_shift": "also train on copies shifted by up to this many pixels, the model told which (distribution augmentation); 0: off",
}
MODEL_CHOICES = {"channels": (1, 3), "values": tuple(distributions.LEVELS), "cell": tuple(CELLS), "mode": MODES,
                 "row_head": ROW_HEADS, "step": STEPS}  # fmt: skip
MAX_SEED = 2**64 - 1  # what torch.Generator.manual_seed takes


class _Parser(argparse.ArgumentParser):
    """Bad flags are one line on stderr and exit code 2, like every other error of the command line."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's default after its help line, except where there is none."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args, argv) or 0
    except PixelRNNError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a write the handlers did not expect to fail (a full disk, a vanished folder)
        where = f" {error.filename}" if getattr(error, "filename", None) else ""
        print(f"error: cannot read or write{where}: {error.strerror or error}", file=sys.stderr)
        return 2


def _parser():
    from .train import TrainConfig

    formatter = _Help
    parser = _Parser(prog="pixelrnn", description="Row-by-row PixelRNN: train, sample, evaluate, publish.")
    commands = parser.add_subparsers(dest="command", required=True)
    settings = {spec.name: spec for spec in dataclasses.fields(TrainConfig)}

    train = commands.add_parser("train", help="train a model", formatter_class=formatter,
                                description="Train a PixelRNN; the run folder (--out) holds the best checkpoint and last/ for --resume.")  # fmt: skip
    model_options = train.add_argument_group("model (every PixelRNN option)")
    for name, parameter in OPTIONS.items():
        _add_option(model_options, name, parameter.default, MODEL_HELP[name], MODEL_CHOICES.get(name))
    train_options = train.add_argument_group("training")
    for spec in settings.values():
        if spec.metadata["flag"]:
            _add_option(train_options, spec.name, spec.default, spec.metadata["help"], spec.metadata["choices"])
    train_options.add_argument("--push-to-hub", metavar="REPO_ID", help="push the best checkpoint to this Hub repo when done")
    train.set_defaults(handler=_train)

    sample = commands.add_parser("sample", help="write a grid of generated images", formatter_class=formatter,
                                 description="Draw images from a checkpoint and write them as one picture.")  # fmt: skip
    sample.add_argument("checkpoint", help="checkpoint folder or Hub repo id")
    sample.add_argument("--revision", help="a branch, tag or commit of the Hub repo")
    sample.add_argument("-n", "--n", type=int, default=16, help="images to draw (1 to 1024)")
    sample.add_argument("--temperature", type=float, default=1.0, help="below 1: safer, above 1: wilder (0.01 to 100)")
    sample.add_argument("--seed", type=_seed, default=0, help="random seed (0 to 2**64-1)")
    sample.add_argument("--greedy", action="store_true", help="the most likely value everywhere instead of a draw")
    sample.add_argument("--scale", type=_whole(1, 64), default=4, help="pixels per image pixel in the picture (1 to 64)")
    sample.add_argument("--out", default="samples.png", help="the picture to write: .png, .jpg, .webp, ... (a format Pillow writes)")
    sample.set_defaults(handler=_sample)

    evaluate = commands.add_parser("eval", help="NLL (nats per image), bits/dim and sampling loss on a data split",
                                   formatter_class=formatter, description="Score a checkpoint on a data split.")  # fmt: skip
    evaluate.add_argument("checkpoint", help="checkpoint folder or Hub repo id")
    evaluate.add_argument("--revision", help="a branch, tag or commit of the Hub repo")
    for name in ("data", "data_dir"):
        _add_option(evaluate, name, settings[name].default, settings[name].metadata["help"])
    evaluate.add_argument("--split", choices=("train", "valid", "test"), default="test", help="which part of the data to score")
    evaluate.add_argument("--max-images", type=_whole(0), default=0, help="score the first N images (0: all of them)")
    evaluate.add_argument("--batch-size", type=_whole(1), default=500, help="images per batch")
    evaluate.add_argument("--json", metavar="PATH", help="also write the figures to this file")
    evaluate.set_defaults(handler=_eval)

    push = commands.add_parser("push", help="upload a checkpoint folder to the Hugging Face Hub", formatter_class=formatter)
    push.add_argument("folder", help="the checkpoint folder (model.safetensors, config.json, README.md)")
    push.add_argument("repo_id", help="the Hub repo to create or update, as user/name")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--revision", metavar="BRANCH", help="push to this branch instead of main")
    push.add_argument("--token", help="a Hub token with write access; when not given, huggingface_hub uses $HF_TOKEN or the saved login")
    push.set_defaults(handler=_push)
    return parser


def _add_option(group, name, default, help, choices=None):
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=default, help=help)
    elif default is None:
        group.add_argument(flag, dest=name, default=None, help=help)
    else:
        group.add_argument(flag, dest=name, type=type(default), default=default, choices=choices, help=help)


def _whole(low, high=None):
    """An argparse type: a whole number in [low, high]."""

    def parse(text):
        value = int(text)  # argparse turns the ValueError into "invalid ... value"
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is not {f'between {low} and {high}' if high is not None else f'at least {low}'}")
        return value

    parse.__name__ = "whole number"
    return parse


_seed = _whole(0, MAX_SEED)
_seed.__name__ = "seed"


def _train(args, argv):
    from tqdm import tqdm

    from .train import TrainConfig, run

    model_config = {name: getattr(args, name) for name in OPTIONS}
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.metadata["flag"]}
    config = TrainConfig(**settings, command="python -m pixelrnn " + shlex.join(argv))
    rank = int(os.environ.get("RANK", "0"))
    bar = None
    last = None
    try:
        for progress in run(config, model_config, show_scoring=rank == 0):
            if bar is None:
                bar = tqdm(total=progress.total_steps, initial=progress.step - 1, disable=rank != 0, unit="step", dynamic_ncols=True)
            bar.update(progress.step - bar.n)
            epoch = f"{progress.epoch}/{config.epochs}" if config.epochs else progress.epoch
            bar.set_postfix(epoch=epoch, loss=f"{progress.loss:.2f}", lr=f"{progress.lr:.1e}", best=f"{progress.best_valid_nll:.2f}")
            if progress.valid and rank == 0:
                bar.write(f"epoch {progress.epoch}: valid NLL {progress.valid['nll_nats']:.3f} nats, "
                          f"{progress.valid['bits_per_dim']:.4f} bits/dim")  # fmt: skip
            last = progress
    finally:  # the bar's last line before any message
        if bar is not None:
            bar.close()
    if rank != 0:
        return 0
    if last is None or last.step < last.total_steps:
        print(f"stopped at step {last.step if last else 0}; continue with the same command and --resume", file=sys.stderr)
        return 130
    print(f"best checkpoint: {config.out} (valid NLL {last.best_valid_nll:.3f} nats per image)")
    if args.push_to_hub:
        from .publish import push

        print(push(config.out, args.push_to_hub))
    return 0


def _sample(args, argv):
    from . import generate, to_pil

    out = _picture_path(args.out)
    model = PixelRNN.from_pretrained(args.checkpoint, revision=args.revision)
    *_, last = generate(model, n=args.n, temperature=args.temperature, seed=args.seed, greedy=args.greedy)
    picture = to_pil(last.image, model, scale=args.scale)
    try:
        picture.save(out)
    except OSError as error:
        out.unlink(missing_ok=True)  # never leave half a picture behind
        raise PixelRNNError(f"cannot write {out}: {error.strerror or error}") from None
    print(f"wrote {args.n} samples to {out}")


def _picture_path(text) -> Path:
    """The --out of sample: an image format Pillow writes, in a folder that exists (checked before sampling)."""
    from PIL import Image

    out = Path(text)
    extensions = Image.registered_extensions()
    if extensions.get(out.suffix.lower()) not in Image.SAVE:
        writable = sorted(e for e, f in extensions.items() if f in Image.SAVE and e in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"))
        raise PixelRNNError(f"--out {text}: the picture needs an image file name ending in one of {', '.join(writable)}")
    if not out.parent.is_dir():
        raise PixelRNNError(f"--out {text}: the folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise PixelRNNError(f"--out {text}: the folder {out.parent} is not writable")
    return out


def _eval(args, argv):
    from .datasets import load_splits
    from .evaluate import evaluate

    if args.json and not Path(args.json).parent.is_dir():
        raise PixelRNNError(f"cannot write --json {args.json}: the folder {Path(args.json).parent} does not exist")
    model = PixelRNN.from_pretrained(args.checkpoint, revision=args.revision)
    splits = load_splits(args.data, model.config, folder=args.data_dir)
    images = getattr(splits, args.split)
    if images is None or not len(images):
        raise PixelRNNError(f"the data source {args.data!r} has no {args.split} split")
    if args.max_images:
        images = images[: args.max_images]
    figures = {"checkpoint": str(args.checkpoint), "data": args.data, "split": args.split,
               **evaluate(model, images, args.batch_size, progress=True)}  # fmt: skip
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.6g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(json.dumps(figures))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
        except OSError as error:
            raise PixelRNNError(f"cannot write --json {args.json}: {error.strerror or error}") from None


def _push(args, argv):
    from .publish import push

    print(push(args.folder, args.repo_id, private=args.private, revision=args.revision, token=args.token))
