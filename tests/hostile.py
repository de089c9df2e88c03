"""A hostile Hub and the app served against it, for the security tests (test_security.py, test_browser_security.py).

HostileHub is the local stand-in of hub_server.py that can also lie about a file's size (X-Linked-Size, as the Hub
reports large files) and drip a file's body one byte at a time. `serve_app` starts app.py in its own process
pointed at such a Hub (HF_ENDPOINT, HF_HOME and a dummy HF_TOKEN set before huggingface_hub is imported there).
"""
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pixelrnn
from conftest import free_port
from hub_server import FakeHub, _Handler

ROOT = Path(__file__).resolve().parents[1]
EVIL = "https://evil.example"


class _HostileHandler(_Handler):
    def _file(self):
        parts = unquote(urlsplit(self.path).path).split("/resolve/")
        return (parts[0].strip("/"), parts[1].split("/", 1)[1]) if len(parts) == 2 and "/" in parts[1] else None

    def end_headers(self):
        reported = self.hub.sizes.get(self._file())
        if reported is not None:
            self.send_header("X-Linked-Size", str(reported))
        super().end_headers()

    def do_GET(self):
        if self._file() in self.hub.drips:
            self.hub.requests.append(("GET", urlsplit(self.path).path))
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.send_header("X-Repo-Commit", "0" * 40)
            self.send_header("ETag", '"drip"')
            super().end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(self.hub.drip_seconds)
            except OSError:
                pass
            return
        super().do_GET()


class HostileHub(FakeHub):
    def __init__(self):
        super().__init__()
        self.sizes = {}  # (repo id, file name) -> the size the Hub reports for it
        self.drips = set()  # (repo id, file name): its GET answers one byte every drip_seconds
        self.drip_seconds = 0.5

    def start(self):
        from http.server import ThreadingHTTPServer

        handler = type("Handler", (_HostileHandler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def gets(self, repo_id: str, filename: str) -> int:
        return sum(1 for method, path in self.requests if method == "GET" and path.endswith(f"{repo_id}/resolve/main/{filename}"))


def checkpoint_files(folder: Path, card: str | None = None, **config) -> dict:
    options = dict(height=6, width=6, hidden_size=8, head_size=8)
    options.update(config)
    pixelrnn.PixelRNN(**options).save_pretrained(folder)
    files = {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors", "README.md")}
    if card is not None:
        files["README.md"] = card.encode()
    return files


def serve_app(hub: FakeHub, home: Path, **env):
    """app.py in a process of its own on a free port, against `hub`: (the process, its URL)."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    environment.update(PIXELRNN_WEIGHTS=str(home / "no-weights"), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
                       HF_ENDPOINT=hub.endpoint, HF_HOME=str(home / "hf"), HF_TOKEN="hf_alice_write_token",
                       HF_HUB_DISABLE_TELEMETRY="1", TMPDIR=str(home))  # fmt: skip
    environment.update(env)
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    for line in server.stdout:
        if f":{port}" in line:
            break
    threading.Thread(target=server.stdout.read, daemon=True).start()  # a full pipe would stall the app
    url = f"http://127.0.0.1:{port}/"
    urllib.request.urlopen(url + "config", timeout=60).read()
    return server, url


def stop(server) -> None:
    server.terminate()
    server.wait(timeout=30)
