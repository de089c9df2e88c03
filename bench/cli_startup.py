"""Start-up time of the command line: `--help`, a typo'd flag and a real `sample`, each a fresh process.

Each command runs `--repeats` times in a new interpreter from an empty temporary folder (not the project),
offline (HF_HUB_OFFLINE=1: nothing can reach the network), and the median wall time is printed next to
two yardsticks measured in the same run: a bare `python -c pass` and `python -c "import torch"`. On a
loaded machine the seconds move; the ratios to the yardsticks hold better. The targets (issue 24): `--help`
and an argument error answer in well under a second, a fraction of torch's import; `sample` pays for torch.

    python bench/cli_startup.py                      # this tree
    python bench/cli_startup.py --tree /tmp/old      # also another checkout (e.g. `git worktree add /tmp/old HEAD`), same venv
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands(tree: Path, folder: Path) -> dict:
    checkpoint = tree / "weights" / "binarized-mnist"  # a full path, so an older tree finds it too
    return {
        "--help": ["--help"],
        "train --hiden-size 64 (a typo)": ["train", "--hiden-size", "64"],
        "sample -n 1": ["sample", str(checkpoint), "-n", "1", "--out", str(folder / "s.png"), "--overwrite"],
    }


def timed(argv, env, cwd, repeats) -> list:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command; the median is shown")
    parser.add_argument("--tree", action="append", default=[], type=Path, help="another checkout to measure as well")
    args = parser.parse_args()
    trees = [ROOT, *[t.resolve() for t in args.tree]]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
        bare = statistics.median(timed([sys.executable, "-c", "pass"], env, folder, args.repeats))
        torch_alone = statistics.median(timed([sys.executable, "-c", "import torch"], env, folder, args.repeats))
        print(f"yardsticks (median of {args.repeats}): python -c pass {bare:.3f} s, python -c 'import torch' {torch_alone:.3f} s")
        print(f"{'tree':<24} {'command':<32} {'median s':>9} {'min s':>7} {'x bare':>7} {'x torch':>8}")
        for tree in trees:
            tree_env = {**env, "PYTHONPATH": str(tree)}
            # one untimed run first: it fills caches (the flag table, .pyc files) as any earlier use would have
            subprocess.run([sys.executable, "-m", "pixelrnn", "--help"], env=tree_env, cwd=folder, capture_output=True)
            subprocess.run([sys.executable, "-m", "pixelrnn", "train", "--help"], env=tree_env, cwd=folder, capture_output=True)
            for name, argv in commands(tree, folder).items():
                if tree != ROOT and "--overwrite" in argv:  # an older tree may not know the flag; overwriting is its default
                    argv = [a for a in argv if a != "--overwrite"]
                times = timed([sys.executable, "-m", "pixelrnn", *argv], tree_env, folder, args.repeats)
                median = statistics.median(times)
                print(f"{str(tree)[-24:]:<24} {name:<32} {median:>9.3f} {min(times):>7.3f} {median / bare:>7.1f} {median / torch_alone:>8.2f}")


if __name__ == "__main__":
    main()
