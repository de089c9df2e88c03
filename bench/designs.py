"""What each design choice costs: the same training budget for each variant, validation NLL on binarized MNIST.

    python bench/designs.py [--set row-heads|capacity] [--epochs 3] [--hidden 256] [--out runs/designs]

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
from pixelrnn.model import PixelRNN, count_parameters  # noqa: E402
from pixelrnn.train import TrainConfig, run  # noqa: E402

REGULARIZED = dict(dropout=0.2, weight_decay=0.05)
SETS = {
    "row-heads": {
        "autoregressive, many-to-many": dict(row_head="autoregressive", mode="many-to-many"),
        "independent, many-to-many": dict(row_head="independent", mode="many-to-many"),
        "autoregressive, many-to-one (window 8)": dict(row_head="autoregressive", mode="many-to-one", window=8),
        "independent, many-to-one (window 8)": dict(row_head="independent", mode="many-to-one", window=8),
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
    args = parser.parse_args()
    splits = load_splits("binarized-mnist", PixelRNN().config, folder=args.data_dir)
    results = {}
    for name, variant in SETS[args.set].items():
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


if __name__ == "__main__":
    main()
