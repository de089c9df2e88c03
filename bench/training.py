"""Training throughput on this machine: images per second and seconds per binarized-MNIST epoch (50k images).

    python bench/training.py [--steps 20] [--compile] [--only shipped,spatial] [--batch 16]

Every configuration is timed in the same run (best of the timed steps after a warm-up), so the ratios
between them hold on a shared, noisy machine. With --compile, each row is also timed under torch.compile.
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pixelrnn  # noqa: E402
from pixelrnn import distributions  # noqa: E402

CONFIGS = {
    "default (GRU 256, MADE 256)": dict(),
    "GRU 512, MADE 512 (the earlier binarized-mnist)": dict(hidden_size=512, head_size=512),
    "shipped binarized-mnist (LSTM 512, MADE 512 x 2 layers)": dict(cell="lstm", hidden_size=512, head_size=512, head_layers=2),
    "independent row head (GRU 512)": dict(hidden_size=512, head_size=512, row_head="independent"),
    "many-to-one, window 8 (GRU 512)": dict(hidden_size=512, head_size=512, mode="many-to-one"),
    "LSTM 512": dict(cell="lstm", hidden_size=512, head_size=512),
    "8-bit gray (GRU 256)": dict(values="8bit"),
    "pixel step (GRU 256, 784 steps)": dict(step="pixel"),
    "spatial (LSTM 64 per column, row head 64 x 4)": dict(core="spatial", batch_norm=False, cell="lstm", hidden_size=64, head_size=64,
                                                          head_layers=4),
    "spatial (LSTM 96 per column, row head 96 x 4)": dict(core="spatial", batch_norm=False, cell="lstm", hidden_size=96, head_size=96,
                                                          head_layers=4),
}


def time_steps(model, steps, batch, compiled):
    network = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    values = model.config["values"]
    top = 1 if values == "binary" else 255
    x = torch.randint(0, top + 1, (batch, 1, 28, 28)).float()
    times = []
    for step in range(steps + 2):
        start = time.perf_counter()
        params = network(x)
        loss = -distributions.log_prob(params, model.to_tokens(x), values).sum(dim=(1, 2)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 2:  # warm-up (and compilation) excluded
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]  # median


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--only", default="", help="time only the configurations whose name contains one of these (comma-separated)")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"batch {args.batch}, median of {args.steps} steps, torch {torch.__version__}, {torch.get_num_threads()} threads")
    header = f"{'configuration':<46}{'params':>11}{'img/s':>9}{'s/epoch':>9}"
    print(header + (f"{'compiled img/s':>16}{'speed-up':>10}" if args.compile else ""))
    for name, config in CONFIGS.items():
        if not any(part in name for part in args.only.split(",")):
            continue
        model = pixelrnn.PixelRNN(**config).train()
        seconds = time_steps(model, args.steps, args.batch, compiled=False)
        line = f"{name:<46}{pixelrnn.count_parameters(model):>11,}{args.batch / seconds:>9.0f}{50000 / args.batch * seconds:>9.0f}"
        if args.compile:
            compiled = time_steps(model, args.steps, args.batch, compiled=True)
            line += f"{args.batch / compiled:>16.0f}{seconds / compiled:>9.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
