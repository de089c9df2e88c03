"""The app as a client sees it: start-up time, and the time from the click to the first streamed row and to
the full image, through gradio_client, for the 28x28 binarized model and an RGB model.

    python bench/app.py                    # the figures in the README
    python bench/app.py --samples 16 --runs 5

The app runs in its own process (`python app.py`) on 127.0.0.1. It serves the checkpoints of --weights when
they are there (binarized-mnist, and the first RGB one); in their place it uses untrained models of the same
shapes, which cost the same to sample. The client reads the streamed messages and, like a browser, fetches
each row's PNG over one kept-alive connection as it arrives; the times are to the first and the last PNG in
hand. (gradio_client's own downloads, download_files=True, add some 35 ms of client-side set-up per file.)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pixelrnn  # noqa: E402

FALLBACKS = {  # the shapes of the shipped checkpoints, untrained
    "binarized-mnist": dict(height=28, width=28, hidden_size=512, head_size=512),
    "rgb": dict(height=32, width=32, channels=3, values="8bit", hidden_size=256, head_size=256),
}


def checkpoints(weights: Path, folder: Path) -> dict:
    """name -> description; links the real checkpoints into `folder` or saves stand-ins there."""
    found = {p.name: json.loads((p / "config.json").read_text()) for p in sorted(weights.glob("*")) if (p / "model.safetensors").is_file()}
    rgb = next((name for name, config in found.items() if config.get("channels") == 3), None)
    chosen = {}
    for name, real in (("binarized-mnist", "binarized-mnist" if "binarized-mnist" in found else None), ("rgb", rgb)):
        if real:
            (folder / name).symlink_to((weights / real).resolve(), target_is_directory=True)
            chosen[name] = f"weights/{real}"
        else:
            pixelrnn.PixelRNN(**FALLBACKS[name]).save_pretrained(folder / name)
            chosen[name] = "untrained stand-in"
        config = pixelrnn.PixelRNN.from_pretrained(folder / name).config
        chosen[name] += f" ({config['height']}x{config['width']}x{config['channels']} {config['values']}, hidden {config['hidden_size']})"
    return chosen


def start_app(folder: Path, port: int):
    """Start `python app.py`; return the process and the seconds until it answers HTTP."""
    env = dict(os.environ, PIXELRNN_WEIGHTS=str(folder), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=1)
            return server, time.perf_counter() - start
        except OSError:
            if server.poll() is not None:
                raise SystemExit("the app exited during start-up")
            time.sleep(0.05)


def time_generation(client, fetch, samples: int) -> tuple[float, float, int]:
    """(seconds to the first row's PNG, seconds to the full image's PNG, rows received) for one click."""
    start = time.perf_counter()
    job = client.submit(samples, 1.0, 0, False, api_name="/generate")
    first = None
    rows = 0
    for picture, _ in job:
        fetch.get(picture["url"]).raise_for_status()
        rows += 1
        if first is None:
            first = time.perf_counter() - start
    return first, time.perf_counter() - start, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(ROOT / "weights"))
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=7877)
    args = parser.parse_args()
    import httpx
    from gradio_client import Client

    with tempfile.TemporaryDirectory() as folder:
        models = checkpoints(Path(args.weights), Path(folder))
        server, startup = start_app(Path(folder), args.port)
        try:
            print(f"app start-up (process start to HTTP answer): {startup:.2f} s")
            print(f"{args.samples} samples per click; median of {args.runs} clicks after one warm-up")
            for name, description in models.items():
                client = Client(f"http://127.0.0.1:{args.port}/", verbose=False, download_files=False)
                client.predict(f"local:{name}", api_name="/choose_model")
                with httpx.Client() as fetch:
                    time_generation(client, fetch, args.samples)
                    runs = [time_generation(client, fetch, args.samples) for _ in range(args.runs)]
                first = statistics.median(r[0] for r in runs)
                full = statistics.median(r[1] for r in runs)
                print(f"{name}: {description}: first row {first:.3f} s, full image {full:.3f} s ({runs[0][2]} rows streamed)")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
