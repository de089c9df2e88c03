"""The app as a client sees it, next to the library doing the same work in the same run.

    python bench/app.py                          # the figures in the README
    python bench/app.py --runs 5 --threads 1,2 --clients 1,4

For each endpoint (/reconstruct restoring and completing the example digit, /generate of 1 and 16 images)
it prints the median time from the click to the last streamed picture in hand, the library's own time for
the same call (in this process, with the app's thread count), and the round trip of a trivial endpoint
(/stop_training). The bar: app <= 2 x library + trivial round trip. Then the thread table: /generate of 16
images with 1 and 4 clients at once, for each thread count of the app (PIXELRNN_THREADS).

The app runs in its own process (`python app.py`) on 127.0.0.1 on the checkpoints of --weights (in their place,
untrained models of the same shapes, which cost the same to sample). The client reads the streamed messages
and, like a browser, fetches each picture over one kept-alive connection as it arrives; the example image is
uploaded once, as a browser uploads it when it is chosen, not with every click. Start-up is the time
from process start to the first HTTP answer of the page.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pixelrnn  # noqa: E402
from app_support.labels import COMPLETE, RESTORE  # noqa: E402 - the page's own words

EXAMPLE = ROOT / "examples" / "digit-7-on-paper.png"
FALLBACK = dict(height=28, width=28, cell="lstm", hidden_size=512, head_size=512, head_layers=2)  # the shipped binarized model's shape


def checkpoint(weights: Path, folder: Path) -> str:
    """Links weights/binarized-mnist into `folder` (or saves an untrained stand-in); returns what it is."""
    real = weights / "binarized-mnist"
    if (real / "model.safetensors").is_file():
        (folder / "binarized-mnist").symlink_to(real.resolve(), target_is_directory=True)
        return "weights/binarized-mnist"
    pixelrnn.PixelRNN(**FALLBACK).save_pretrained(folder / "binarized-mnist")
    return "untrained stand-in of binarized-mnist's shape"


def start_app(folder: Path, port: int, threads: int):
    """Start `python app.py`; return the process and the seconds until it answers HTTP."""
    env = dict(os.environ, PIXELRNN_WEIGHTS=str(folder), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               PIXELRNN_THREADS=str(threads))  # fmt: skip
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return server, time.perf_counter() - start
        except OSError:
            if server.poll() is not None:
                raise SystemExit("the app exited during start-up")
            time.sleep(0.05)


def click(client, fetch, api_name, *args) -> tuple[float, int]:
    """Seconds from the click to the last streamed picture in hand, and the number of messages streamed."""
    start = time.perf_counter()
    messages = 0
    for output in client.submit(*args, api_name=api_name):
        messages += 1
        for value in output if isinstance(output, (tuple, list)) else [output]:
            if isinstance(value, dict) and value.get("url"):
                fetch.get(value["url"]).raise_for_status()
    return time.perf_counter() - start, messages


def library_time(call, runs: int) -> float:
    times = []
    for _ in range(runs + 1):  # one warm-up
        start = time.perf_counter()
        for _ in call():
            pass
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def uploaded_once(client, path: Path) -> dict:
    """The image uploaded once, as a browser does when it is chosen: each click then only names the server's copy.

    (gradio_client would upload it again with every click, over a new connection.) Without the file "meta"
    marker the client passes the reference through as it is.
    """
    import httpx

    with path.open("rb") as file:
        answer = httpx.post(client.upload_url, files=[("files", (path.name, file))], headers=client.headers)
    answer.raise_for_status()
    return {"path": answer.json()[0], "orig_name": path.name}


def endpoint_table(url: str, model, runs: int) -> None:
    import httpx
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    client.predict("local:binarized-mnist", api_name="/choose_model")
    original = pixelrnn.load_image(EXAMPLE, model, invert="auto")
    uploaded = uploaded_once(client, EXAMPLE)
    cases = {
        "/reconstruct restore": (("/reconstruct", uploaded, True, RESTORE, 14, "sample", 1.0, 0),
                                 lambda: pixelrnn.reconstruct(model, original)),
        "/reconstruct complete": (("/reconstruct", uploaded, True, COMPLETE, 14, "sample", 1.0, 0),
                                  lambda: pixelrnn.complete(model, original, keep_rows=14, seed=0)),
        "/generate 1 image": (("/generate", 1, 1.0, 0, False), lambda: pixelrnn.generate(model, n=1, seed=0)),
        "/generate 16 images": (("/generate", 16, 1.0, 0, False), lambda: pixelrnn.generate(model, n=16, seed=0)),
    }  # fmt: skip
    with httpx.Client() as fetch:
        click(client, fetch, "/stop_training")
        trivial = statistics.median(click(client, fetch, "/stop_training")[0] for _ in range(runs))
        print(f"trivial endpoint (/stop_training) round trip: {trivial:.3f} s")
        print(f"{'endpoint':<24}{'app':>8}{'library':>9}{'bar':>8}  messages  holds")
        for name, ((api_name, *args), call) in cases.items():
            click(client, fetch, api_name, *args)  # warm-up
            timed = [click(client, fetch, api_name, *args) for _ in range(runs)]
            app_seconds = statistics.median(t for t, _ in timed)
            library = library_time(call, runs)
            bar = 2 * library + trivial
            print(f"{name:<24}{app_seconds:>7.3f}s{library:>8.3f}s{bar:>7.3f}s  {timed[0][1]:>8}  {'yes' if app_seconds <= bar else 'NO'}")


def thread_table(url: str, clients: int, runs: int) -> float:
    """Median seconds per /generate of 16 images when `clients` click at once."""
    import httpx
    from gradio_client import Client

    def one(_):
        client = Client(url, verbose=False, download_files=False)
        with httpx.Client() as fetch:
            return click(client, fetch, "/generate", 16, 1.0, 0, False)[0]

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))  # warm-up
        return statistics.median(t for _ in range(runs) for t in pool.map(one, range(clients)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(ROOT / "weights"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", default="1,2", help="thread counts of the app to compare")
    parser.add_argument("--clients", default="1,4", help="clients clicking at once, for the thread table")
    parser.add_argument("--port", type=int, default=7877)
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        print(f"model: {checkpoint(Path(args.weights), Path(folder))}; median of {args.runs} clicks after one warm-up")
        table = {}
        for index, threads in enumerate(thread_counts):
            torch.set_num_threads(threads)
            model = pixelrnn.PixelRNN.from_pretrained(Path(folder) / "binarized-mnist")
            server, startup = start_app(Path(folder), args.port + index, threads)
            url = f"http://127.0.0.1:{args.port + index}/"
            try:
                print(f"\n== app with {threads} thread(s): start-up (process start to the page answering) {startup:.2f} s")
                endpoint_table(url, model, args.runs)
                table[threads] = {clients: thread_table(url, clients, max(1, args.runs // 2)) for clients in map(int, args.clients.split(","))}
            finally:
                server.terminate()
                server.wait(timeout=30)
        print("\n/generate of 16 images, seconds per click (median), by app threads and clients at once:")
        print("threads " + "".join(f"{c:>4} client(s)" for c in next(iter(table.values()))))
        for threads, row in table.items():
            print(f"{threads:>7} " + "".join(f"{seconds:>14.3f}" for seconds in row.values()))
        print(json.dumps({str(k): v for k, v in table.items()}))


if __name__ == "__main__":
    main()
