"""`python -m pixelrnn train | sample | eval | push`: each subcommand a thin call into the library.

Every flag of `train` comes from one place: the model's options (pixelrnn.options.OPTIONS, its keyword
arguments) with the help lines and choices of pixelrnn.options, and the fields of
TrainConfig with the help in their metadata.

Nothing heavy is imported before the arguments are parsed: `--help` and a bad flag answer without torch
(the table of flags is cli_flags.py's, cached).
"""
import argparse
import dataclasses
import difflib
import json
import os
import shlex
import sys
from pathlib import Path

from .cli_flags import PACKAGE, flag_table
from .errors import PixelRNNError
from .seeds import MAX_SEED

WEIGHTS = PACKAGE.parent / "weights"  # the shipped checkpoints, named from any folder: `sample binarized-mnist`
# The named data sets of a fixed size (pixelrnn.datasets): eval says which checkpoints and sources fit.
FIXED_SIZES = {"binarized-mnist": (28, 28, 1), "mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


class _Parser(argparse.ArgumentParser):
    """Bad flags are one line on stderr and exit code 2, like every other error of the command line."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's default after its help line, except where there is none."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def main(argv=None) -> int:
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    try:
        parser = _parser()
    except PixelRNNError as error:  # the flag table could not be built
        print(f"error: {error}", file=sys.stderr)
        return 2
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _unrecognized(parser, args, unknown)
    try:
        return args.handler(args, argv) or 0
    except PixelRNNError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a write the handlers did not expect to fail (a full disk, a vanished folder)
        where = f" {error.filename}" if getattr(error, "filename", None) else ""
        print(f"error: cannot read or write{where}: {error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _unrecognized(parser, args, unknown):
    """Arguments no flag takes: name the closest flag of the subcommand and point at its own help."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = commands.choices[args.command]
    flags = [s for action in command._actions for s in action.option_strings if s.startswith("--")]
    hint = ""
    typo = next((word for word in unknown if word.startswith("-")), None)
    if typo is not None:
        close = difflib.get_close_matches(typo.split("=", 1)[0], flags, n=1, cutoff=0.6)
        if close:
            hint = f": did you mean {close[0]}?"
    command.error(f"unrecognized argument{'s' if len(unknown) > 1 else ''} {' '.join(unknown)}{hint}")


# -- the flags ------------------------------------------------------------------------------------

def _parser():
    table = flag_table()
    formatter = _Help
    parser = _Parser(prog="pixelrnn", description="Row-by-row PixelRNN: train, sample, evaluate, publish.")
    commands = parser.add_subparsers(dest="command", required=True)
    settings = {row[0]: row for row in table["training"]}

    train = commands.add_parser("train", help="train a model", formatter_class=formatter,
                                description="Train a PixelRNN; the run folder (--out) holds the best checkpoint and last/ for --resume.")  # fmt: skip
    model_options = train.add_argument_group("model (every PixelRNN option)")
    for name, default, help, choices in table["model"]:
        _add_option(model_options, name, default, help, choices)
    train_options = train.add_argument_group("training")
    for name, default, help, choices in table["training"]:
        _add_option(train_options, name, default, help, choices)
    train_options.add_argument("--push-to-hub", metavar="REPO_ID", help="push the best checkpoint to this Hub repo when done")
    train.set_defaults(handler=_train)

    checkpoint_help = (f"checkpoint folder, the name of a shipped one ({', '.join(_shipped()) or 'none here'}: from any folder), "
                       "or a Hub repo id (hf:owner/name is always one)")  # fmt: skip
    sample = commands.add_parser("sample", help="write a grid of generated images", formatter_class=formatter,
                                 description="Draw images from a checkpoint and write them as one picture.")  # fmt: skip
    sample.add_argument("checkpoint", help=checkpoint_help)
    sample.add_argument("--revision", help="a branch, tag or commit of the Hub repo")
    sample.add_argument("-n", "--n", type=int, default=16, help="images to draw (1 to 1024)")
    sample.add_argument("--temperature", type=float, default=1.0, help="below 1: safer, above 1: wilder (0.01 to 100)")
    sample.add_argument("--seed", type=_seed, default=0, help="random seed (0 to 2**64-1)")
    sample.add_argument("--greedy", action="store_true", help="the most likely value everywhere instead of a draw")
    sample.add_argument("--label", help="a class-conditional model: draw this class (its name or index; "
                                        "when not given, each image's class is drawn from p(class))")
    sample.add_argument("--scale", type=_whole(1, 64), default=4, help="pixels per image pixel in the picture (1 to 64)")
    sample.add_argument("--out", default="samples.png", help="the picture to write: .png, .jpg, .webp, ... (a format Pillow writes); "
                                                             "an existing file is replaced only with --overwrite")  # fmt: skip
    sample.add_argument("--overwrite", action="store_true", help="replace --out if it exists (the picture is written whole or not at all)")
    sample.set_defaults(handler=_sample)

    evaluate = commands.add_parser("eval", help="NLL (nats per image), bits/dim and sampling loss on a data split",
                                   formatter_class=formatter, description="Score a checkpoint on a data split.")  # fmt: skip
    evaluate.add_argument("checkpoint", help=checkpoint_help)
    evaluate.add_argument("--revision", help="a branch, tag or commit of the Hub repo")
    for name in ("data", "data_dir"):
        _, default, help, _ = settings[name]
        _add_option(evaluate, name, default, help)
    evaluate.add_argument("--split", choices=("train", "valid", "test"), default="test", help="which part of the data to score")
    evaluate.add_argument("--max-images", type=_whole(0), default=0, help="score the first N images (0: all of them)")
    evaluate.add_argument("--batch-size", type=_whole(1), default=500, help="images per batch")
    evaluate.add_argument("--json", metavar="PATH", help="also write the figures to this file (an existing one only with --overwrite)")
    evaluate.add_argument("--overwrite", action="store_true", help="replace the --json file if it exists (written whole or not at all)")
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
    elif isinstance(default, list):  # class_names: comma-separated
        group.add_argument(flag, dest=name, type=_names, default=default, metavar="NAME,NAME,...", help=help)
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


def _names(text):
    """An argparse type: comma-separated names."""
    return [name.strip() for name in text.split(",")] if text.strip() else []


_names.__name__ = "list of names"

_seed = _whole(0, MAX_SEED)
_seed.__name__ = "seed"


# -- checkpoints by name --------------------------------------------------------------------------

def _shipped() -> list:
    """The checkpoint folders in the project's weights/, binarized-mnist first."""
    try:
        names = sorted(p.name for p in WEIGHTS.iterdir() if (p / "config.json").is_file())
    except OSError:
        return []
    return sorted(names, key=lambda name: name != "binarized-mnist")


def _checkpoint(text: str) -> str:
    """What to load for CHECKPOINT: a folder here as it is; else a shipped checkpoint named as `binarized-mnist`
    or `weights/binarized-mnist` (from any folder); else the text itself (a Hub repo id, or a path the library
    reports). A near miss of a shipped name is said at once, without asking the Hub."""
    if text.startswith("hf:"):
        return text
    try:
        if Path(text).expanduser().exists():
            return text
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte: the library says so
        return text
    parts = Path(text).parts
    if len(parts) == 1:
        name, shown = parts[0], "{}"
    elif len(parts) == 2 and parts[0] == "weights":
        name, shown = parts[1], "weights/{}"
    else:
        return text
    if name in _shipped():
        return str(WEIGHTS / name)
    close = difflib.get_close_matches(name, _shipped(), n=1, cutoff=0.85)
    if close:
        raise PixelRNNError(f"there is no checkpoint {text!r} here or among the shipped ones in {WEIGHTS} "
                            f"(did you mean {shown.format(close[0])!r}?); hf:{text} loads the Hub repo of that name")  # fmt: skip
    return text


# -- files written whole or not at all ------------------------------------------------------------

def _new_file(path: Path, flag: str, overwrite: bool) -> bool:
    """Check, before any work, that `path` can be written; True when it exists and --overwrite replaces it."""
    if not path.parent.is_dir():
        raise PixelRNNError(f"cannot write {flag} {path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise PixelRNNError(f"cannot write {flag} {path}: the folder {path.parent} is not writable")
    if path.is_dir():
        raise PixelRNNError(f"{flag} {path} is a folder: give a file name")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise PixelRNNError(f"{flag} {path} already exists: nothing was done; pass --overwrite to replace it, or choose another name")
        return True
    return False


def _write_whole(path: Path, flag: str, write) -> None:
    """write(temporary) beside `path`, then rename it over `path`: a failed write leaves the old file as it was."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    existed = path.exists()
    try:
        write(temporary)
        if existed:
            try:
                os.chmod(temporary, path.stat().st_mode & 0o7777)  # the replaced file's permissions
            except OSError:
                pass
        os.replace(temporary, path)
    except OSError as error:
        kept = f"; {path} is as it was" if existed else ""
        raise PixelRNNError(f"cannot write {flag} {path}: {error.strerror or error}{kept}") from None
    finally:
        temporary.unlink(missing_ok=True)


# -- the commands ---------------------------------------------------------------------------------

def _train(args, argv):
    from tqdm import tqdm

    from .options import DEFAULTS, OPTIONS
    from .train import TrainConfig, run

    model_config = {name: getattr(args, name) for name in OPTIONS}
    if args.init and not args.resume:  # the checkpoint's options, except those given here (checked by `run`)
        from .model import PixelRNN

        given = {name: value for name, value in model_config.items() if value != DEFAULTS[name]}
        model_config = {**PixelRNN.from_pretrained(args.init).config, **given}
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
                bar.write(f"step {progress.step} (epoch {progress.epoch}): valid NLL {progress.valid['nll_nats']:.3f} nats, "
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
    if config.test:
        test = _test_record(Path(config.out))
        if test is None:
            print(f"--test: the data source {config.data!r} has no test split, so nothing was tested", file=sys.stderr)
        else:
            print(f"test NLL {test['nll_nats']:.3f} nats per image, {test['bits_per_dim']:.4f} bits/dim "
                  f"({test['images']} test images, the best checkpoint)")  # fmt: skip
    if args.push_to_hub:
        from .publish import push

        print(push(config.out, args.push_to_hub))
    return 0


def _test_record(out: Path) -> dict | None:
    """The figures `--test` just wrote: the last line of metrics.jsonl, when it is a test record."""
    try:
        lines = (out / "metrics.jsonl").read_text(encoding="utf-8", errors="replace").splitlines()
        record = json.loads(next(line for line in reversed(lines) if line.strip()))
    except (OSError, StopIteration, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("kind") == "test" else None


def _sample(args, argv):
    from . import generate, to_pil
    from .model import PixelRNN
    from .sample import last

    out, picture_format = _picture_path(args.out)
    replacing = _new_file(out, "--out", args.overwrite)
    model = PixelRNN.from_pretrained(_checkpoint(args.checkpoint), revision=args.revision)
    labels = _label(model, args.label) if args.label is not None else None
    final = last(generate(model, n=args.n, temperature=args.temperature, seed=args.seed, greedy=args.greedy, labels=labels))  # one step kept
    picture = to_pil(final.image, model, scale=args.scale)
    _write_whole(out, "--out", lambda temporary: picture.save(temporary, format=picture_format))
    print(f"wrote {args.n} samples to {out}" + (" (replaced the file that was there)" if replacing else ""))


def _label(model, text: str) -> int:
    """--label: a class name of the model, or its index."""
    names = model.config["class_names"]
    if not names:
        raise PixelRNNError("--label is for class-conditional models, and this one has no classes")
    if text in names:
        return names.index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    raise PixelRNNError(f"--label {text!r} is not one of the model's classes ({shown}) nor an index from 0 to {len(names) - 1}")


def _picture_path(text):
    """The --out of sample and its format: an image format Pillow writes (checked before sampling)."""
    from PIL import Image

    out = Path(text)
    extensions = Image.registered_extensions()
    if extensions.get(out.suffix.lower()) not in Image.SAVE:
        writable = sorted(e for e, f in extensions.items() if f in Image.SAVE and e in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"))
        raise PixelRNNError(f"--out {text}: the picture needs an image file name ending in one of {', '.join(writable)}")
    return out, extensions[out.suffix.lower()]


def _eval(args, argv):
    from .datasets import load_splits
    from .evaluate import evaluate
    from .model import PixelRNN

    json_path = Path(args.json) if args.json else None
    replacing = json_path is not None and _new_file(json_path, "--json", args.overwrite)
    model = PixelRNN.from_pretrained(_checkpoint(args.checkpoint), revision=args.revision)
    _check_data_fits(model.config, args.data, args.checkpoint)
    splits = load_splits(args.data, model.config, folder=args.data_dir)
    images, labels = getattr(splits, args.split), None
    if images is None or not len(images):
        raise PixelRNNError(f"the data source {args.data!r} has no {args.split} split")
    if model.config["classes"] and splits.class_names is not None:  # also scored given each image's true class
        if len(splits.class_names) != model.config["classes"]:
            raise PixelRNNError(f"{args.checkpoint} has {model.config['classes']} classes and {args.data!r} {len(splits.class_names)}")
        labels = splits.labels_of(args.split)
    if args.max_images:
        images = images[: args.max_images]
        labels = labels[: args.max_images] if labels is not None else None
    figures = {"checkpoint": str(args.checkpoint), "data": args.data, "split": args.split,
               **evaluate(model, images, args.batch_size, progress=True, labels=labels)}  # fmt: skip
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.6g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(json.dumps(figures))
    if json_path is not None:
        text = json.dumps(figures, indent=2)
        _write_whole(json_path, "--json", lambda temporary: temporary.write_text(text, encoding="utf-8"))
        if replacing:
            print(f"replaced {json_path}", file=sys.stderr)


def _check_data_fits(config: dict, data: str, checkpoint: str) -> None:
    """A named data set of another size (or binarized MNIST for an 8-bit model): say what eval can do instead."""
    if data not in FIXED_SIZES:
        return
    size = FIXED_SIZES[data]
    shape = (config["height"], config["width"], config["channels"])
    binary_only = data == "binarized-mnist"
    if shape == size and not (binary_only and config["values"] != "binary"):
        return
    fitting = [name for name in _shipped() if _fits(WEIGHTS / name, size, binary_only)]
    models = f"a checkpoint made for it (shipped: {', '.join(fitting)})" if fitting else "a checkpoint made for it"
    sources = [name for name, other in FIXED_SIZES.items() if other == shape and name != data and not (name == "binarized-mnist" and config["values"] != "binary")]
    instead = f"--data {' or '.join(sources)}, " if sources else ""
    if shape == size:  # binarized MNIST and an 8-bit model
        said = f"{data} holds binary pixels and {checkpoint} models 8-bit values"
    else:
        said = (f"{checkpoint} is a {shape[0]}x{shape[1]} model with {shape[2]} channel(s) and {data} images are "
                f"{size[0]}x{size[1]} with {size[2]}")  # fmt: skip
    raise PixelRNNError(f"{said}: eval scores a checkpoint on data of its own kind; score {checkpoint} on {instead}"
                        f"digits, photos or an image file or folder (resized to the model), or score {models} on {data}")  # fmt: skip


def _fits(folder: Path, size, binary_only) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return (config["height"], config["width"], config["channels"]) == size and not (binary_only and config["values"] != "binary")
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _push(args, argv):
    from .publish import push

    print(push(args.folder, args.repo_id, private=args.private, revision=args.revision, token=args.token))
