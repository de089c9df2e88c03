"""What each design choice costs: the same training budget for each variant, validation NLL.

    python bench/designs.py [--set row-heads|capacity] [--epochs 3] [--hidden 256] [--out runs/designs]
    python bench/designs.py --set cores --minutes 10 [--data binarized-mnist|cifar10] [--max-valid 1000]

`cores`: today's vector state (one hidden vector per row) against the spatial state (core="spatial", a state
per column), each trained for the same wall-clock minutes on the same data, scored on the first
`--max-valid` validation images from last/; with each one's training speed (images per second) and the
time to draw 16 samples.

`row-heads`: the autoregressive row head (exact, MADE inside each row) or the original design's independent
row head, each read many-to-many (carried state) or many-to-one (a window of 8 rows).
`capacity`: the autoregressive many-to-many model without and with regularization (dropout on the RNN's
output and between layers, AdamW weight decay), a deeper row head, two RNN layers, an LSTM.
Every variant gets the same optimizer, schedule, epochs and width (the regularized ones add weight decay);
models are selected and compared on `valid` only (the test split is reported once, for the shipped checkpoint).
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pixelrnn.datasets import load_splits  # noqa: E402
from pixelrnn.evaluate import evaluate  # noqa: E402
from pixelrnn.model import PixelRNN, count_parameters  # noqa: E402
from pixelrnn.sample import generate, last  # noqa: E402
from pixelrnn.train import TrainConfig, run  # noqa: E402

REGULARIZED = dict(dropout=0.2, weight_decay=0.05)
SETS = {
    "row-heads": {
        "autoregressive, many-to-many": dict(row_head="autoregressive", mode="many-to-many"),
        "independent, many-to-many": dict(row_head="independent", mode="many-to-many"),
        "autoregressive, many-to-one (window 8)": dict(row_head="autoregressive", mode="many-to-one", window=8),
        "independent, many-to-one (window 8)": dict(row_head="independent", mode="many-to-one", window=8),
    },
    "cores": {  # per data set: the width of each core is the shipped models' order of size
        "binarized-mnist": {
            "vector: LSTM 512, MADE 512": dict(cell="lstm", hidden_size=512, head_size=512),
            "spatial: LSTM 64 per column, causal row head 64 x 4": dict(core="spatial", batch_norm=False, cell="lstm", hidden_size=64,
                                                                        head_size=64, head_layers=4),
        },
        "cifar10": {
            "vector: GRU 512, MADE 512": dict(hidden_size=512, head_size=512),
            "spatial: LSTM 96 per column, causal row head 96 x 4": dict(core="spatial", batch_norm=False, cell="lstm", hidden_size=96,
                                                                        head_size=96, head_layers=4, mixtures=10),
        },
    },
    "capacity": {
        "GRU, head 1 layer": dict(),
        "GRU, regularized (dropout 0.2, weight decay 0.05)": dict(REGULARIZED),
        "GRU, regularized, head 2 layers": dict(REGULARIZED, head_layers=2),
        "GRU 2 layers, regularized": dict(REGULARIZED, num_layers=2),
        "LSTM, regularized": dict(REGULARIZED, cell="lstm"),
    },
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=SETS, default="row-heads", help="which variants to compare")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="runs/designs")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--max-valid", type=int, default=0, help="score on the first N validation images (0: all 10,000)")
    parser.add_argument("--minutes", type=float, default=10, help="--set cores: the training budget of each variant")
    parser.add_argument("--data", choices=("binarized-mnist", "cifar10"), default="binarized-mnist", help="--set cores: the data")
    parser.add_argument("--batch-size", type=int, default=16, help="--set cores: images per step")
    args = parser.parse_args()
    if args.set == "cores":
        return compare_cores(args)
    splits = load_splits("binarized-mnist", PixelRNN().config, folder=args.data_dir)
    results = {}
    for name, variant in SETS[args.set].items():  # binarized MNIST
        variant = dict(variant)
        weight_decay = variant.pop("weight_decay", 0.0)  # a training setting, not a model option
        model_config = dict(hidden_size=args.hidden, head_size=args.hidden, **variant)
        out = Path(args.out) / "".join(c if c.isalnum() or c in ".-" else "-" for c in name)
        # overwrite: the bench's own runs, redone each time it is run
        config = TrainConfig(data="binarized-mnist", out=str(out), epochs=args.epochs, threads=args.threads, lr=2e-3,
                             warmup_steps=300, max_valid=args.max_valid, weight_decay=weight_decay, overwrite=True)  # fmt: skip
        start = time.perf_counter()
        best = min(p.valid["nll_nats"] for p in run(config, model_config, splits=splits) if p.valid)
        results[name] = {"valid_nll_nats": best, "minutes": (time.perf_counter() - start) / 60, "params": count_parameters(PixelRNN(**model_config))}
        print(f"{name:<42} valid NLL {best:7.2f} nats   {results[name]['minutes']:5.1f} min   {results[name]['params']:,} params", flush=True)
    print(json.dumps(results))


def compare_cores(args):
    shape = dict(height=32, width=32, channels=3, values="8bit") if args.data == "cifar10" else {}
    splits = load_splits(args.data, PixelRNN(**shape).config, folder=args.data_dir)
    valid = splits.valid[: args.max_valid or None]
    results = {}
    for name, variant in SETS["cores"][args.data].items():
        model_config = {**shape, **variant}
        out = Path(args.out) / args.data / "".join(c if c.isalnum() or c in ".-" else "-" for c in name.split(":")[0])
        config = TrainConfig(data=args.data, data_dir=args.data_dir, out=str(out), epochs=100, batch_size=args.batch_size, lr=2e-3,
                             warmup_steps=200, threads=args.threads, save_every=10**9, overwrite=True)  # fmt: skip
        steps, start = run(config, model_config, splits=splits), time.perf_counter()
        for progress in steps:  # the same wall-clock budget for every variant
            if time.perf_counter() - start > 60 * args.minutes:
                break
        steps.close()  # saves last/
        seconds = time.perf_counter() - start
        model = PixelRNN.from_pretrained(out / "last")
        figures = evaluate(model, valid)
        began = time.perf_counter()
        last(generate(model, 16, seed=0))
        results[name] = {"valid_nll_nats": figures["nll_nats"], "valid_bits_per_dim": figures["bits_per_dim"], "steps": progress.step,
                         "images_per_second": progress.step * args.batch_size / seconds, "sample_16_seconds": time.perf_counter() - began,
                         "params": count_parameters(model)}  # fmt: skip
        r = results[name]
        print(f"{name:<56} valid {r['valid_nll_nats']:9.2f} nats {r['valid_bits_per_dim']:7.4f} bits/dim  {r['steps']:6d} steps "
              f"{r['images_per_second']:6.1f} img/s  16 samples {r['sample_16_seconds']:5.2f} s  {r['params']:,} params", flush=True)  # fmt: skip
    print(json.dumps({"data": args.data, "minutes": args.minutes, "valid_images": len(valid), "results": results}))


if __name__ == "__main__":
    main()
