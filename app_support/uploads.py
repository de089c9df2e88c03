"""A bound on what clients store through Gradio's upload route, which any client may call without an event.

Each upload request is refused (HTTP 413) before its body is read when its declared size is over the request
limit, or would bring its client over the bytes it may have uploaded in the last KEEP_SECONDS (as long as
Gradio keeps an upload), or all clients together over theirs. A request without a declared size is refused (411).
"""
import collections
import os
import threading
import time

from . import clients

MB = 10**6
MAX_FILE_BYTES = int(float(os.environ.get("PIXELRNN_MAX_UPLOAD_MB", 50)) * MB)  # one file; the library reads 50 MB at most
MAX_FILES = 8  # files in one upload request: the Train tab takes at most 8
CLIENT_BYTES = int(float(os.environ.get("PIXELRNN_UPLOAD_MB_PER_CLIENT", 200)) * MB)
TOTAL_BYTES = int(float(os.environ.get("PIXELRNN_UPLOAD_MB_TOTAL", 2000)) * MB)
KEEP_SECONDS = 1800  # Gradio's delete_cache keeps a file 15 to 30 minutes
SLACK = 64 * 2**10  # multipart boundaries and headers around the files


class Ledger:
    """Bytes uploaded in the last KEEP_SECONDS, per client and in all."""

    def __init__(self):
        self._entries = collections.deque()  # (time, client, bytes)
        self._per_client = collections.Counter()
        self._total = 0
        self._lock = threading.Lock()

    def admit(self, client: str, size: int) -> str | None:
        """Count `size` bytes for `client`, or say why not."""
        with self._lock:
            now = time.monotonic()
            while self._entries and now - self._entries[0][0] > KEEP_SECONDS:
                _, old_client, old_size = self._entries.popleft()
                self._per_client[old_client] -= old_size
                self._total -= old_size
                if self._per_client[old_client] <= 0:
                    del self._per_client[old_client]
            if size > MAX_FILES * MAX_FILE_BYTES + SLACK:
                return f"an upload here is at most {MAX_FILES} files of {MAX_FILE_BYTES // MB} MB"
            if self._per_client[client] + size > CLIENT_BYTES:
                return f"you have uploaded {CLIENT_BYTES // MB} MB in the last {KEEP_SECONDS // 60} minutes, the most one visitor may: try again later"
            if self._total + size > TOTAL_BYTES:
                return "the server holds all the uploads it can right now: try again in a few minutes"
            self._entries.append((now, client, size))
            self._per_client[client] += size
            self._total += size
            return None


LEDGER = Ledger()


class UploadLimit:
    """ASGI middleware: the bounds above on POST .../upload."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/upload"):
            headers = scope.get("headers", [])
            length = next((value for name, value in headers if name.lower() == b"content-length"), None)
            peer = (scope.get("client") or (None,))[0]
            if length is None or not length.isdigit():
                return await _refuse(send, 411, "an upload must say its size (Content-Length)")
            problem = LEDGER.admit(clients.address(headers, peer), int(length))
            if problem:
                return await _refuse(send, 413, problem)
        await self.app(scope, receive, send)


async def _refuse(send, status: int, message: str) -> None:
    body = message.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
