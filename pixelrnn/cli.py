"""`python -m pixelrnn train | sample | eval | push`: each subcommand a thin call into the library."""
import argparse
import dataclasses
import inspect
import json
import os
import shlex
import sys

from .errors import PixelRNNError
from .model import PixelRNN


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args, argv) or 0
    except PixelRNNError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _parser():
    from .train import TrainConfig

    parser = argparse.ArgumentParser(prog="pixelrnn", description="Row-by-row PixelRNN: train, sample, evaluate, publish.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    model_options = train.add_argument_group("model (every PixelRNN option)")
    for name, parameter in inspect.signature(PixelRNN.__init__).parameters.items():
        if name != "self":
            _add_option(model_options, name, parameter.default)
    train_options = train.add_argument_group("training")
    for spec in dataclasses.fields(TrainConfig):
        if spec.name != "command":
            _add_option(train_options, spec.name, spec.default)
    train_options.add_argument("--push-to-hub", metavar="REPO_ID", help="push the best checkpoint when done")
    train.set_defaults(handler=_train)

    sample = commands.add_parser("sample", help="write a PNG grid of generated images")
    sample.add_argument("checkpoint", help="checkpoint folder or Hub repo id")
    sample.add_argument("--revision")
    sample.add_argument("-n", "--n", type=int, default=16)
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--greedy", action="store_true")
    sample.add_argument("--scale", type=int, default=4)
    sample.add_argument("--out", default="samples.png")
    sample.set_defaults(handler=_sample)

    evaluate = commands.add_parser("eval", help="NLL (nats per image), bits/dim and sampling loss on a data split")
    evaluate.add_argument("checkpoint", help="checkpoint folder or Hub repo id")
    evaluate.add_argument("--revision")
    evaluate.add_argument("--data", default="binarized-mnist")
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--split", choices=("train", "valid", "test"), default="test")
    evaluate.add_argument("--max-images", type=int, default=0)
    evaluate.add_argument("--batch-size", type=int, default=500)
    evaluate.add_argument("--json", metavar="PATH", help="also write the figures to this file")
    evaluate.set_defaults(handler=_eval)

    push = commands.add_parser("push", help="upload a checkpoint folder to the Hugging Face Hub")
    push.add_argument("folder")
    push.add_argument("repo_id")
    push.add_argument("--private", action="store_true")
    push.add_argument("--revision", metavar="BRANCH")
    push.add_argument("--token", help="a Hub token with write access (default: $HF_TOKEN or the saved login)")
    push.set_defaults(handler=_push)
    return parser


def _add_option(group, name, default):
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=default)
    elif default is None:
        group.add_argument(flag, dest=name, default=None)
    else:
        group.add_argument(flag, dest=name, type=type(default), default=default)


def _train(args, argv):
    from tqdm import tqdm

    from .train import TrainConfig, run

    model_names = [n for n in inspect.signature(PixelRNN.__init__).parameters if n != "self"]
    model_config = {n: getattr(args, n) for n in model_names}
    train_values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "command"}
    config = TrainConfig(**train_values, command="python -m pixelrnn " + shlex.join(argv))
    rank = int(os.environ.get("RANK", "0"))
    bar = None
    last = None
    for progress in run(config, model_config):
        if bar is None:
            bar = tqdm(total=progress.total_steps, initial=progress.step - 1, disable=rank != 0, unit="step", dynamic_ncols=True)
        bar.update(progress.step - bar.n)
        bar.set_postfix(epoch=progress.epoch, loss=f"{progress.loss:.2f}", lr=f"{progress.lr:.1e}",
                        best=f"{progress.best_valid_nll:.2f}")  # fmt: skip
        if progress.valid and rank == 0:
            bar.write(f"epoch {progress.epoch}: valid NLL {progress.valid['nll_nats']:.3f} nats, "
                      f"{progress.valid['bits_per_dim']:.4f} bits/dim")  # fmt: skip
        last = progress
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

    model = PixelRNN.from_pretrained(args.checkpoint, revision=args.revision)
    *_, last = generate(model, n=args.n, temperature=args.temperature, seed=args.seed, greedy=args.greedy)
    to_pil(last.image, model, scale=args.scale).save(args.out)
    print(f"wrote {args.n} samples to {args.out}")


def _eval(args, argv):
    from .datasets import load_splits
    from .evaluate import evaluate

    model = PixelRNN.from_pretrained(args.checkpoint, revision=args.revision)
    splits = load_splits(args.data, model.config, folder=args.data_dir)
    images = getattr(splits, args.split)
    if images is None:
        raise PixelRNNError(f"the data source {args.data!r} has no {args.split} split")
    if args.max_images:
        images = images[: args.max_images]
    figures = {"checkpoint": str(args.checkpoint), "data": args.data, "split": args.split, **evaluate(model, images, args.batch_size)}
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.6g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(json.dumps(figures))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(figures, file, indent=2)


def _push(args, argv):
    from .publish import push

    print(push(args.folder, args.repo_id, private=args.private, revision=args.revision, token=args.token or os.environ.get("HF_TOKEN")))
