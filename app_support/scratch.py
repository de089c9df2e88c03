"""Folders of this process under the system's temporary folder: named after the process, removed when it ends,
and removed at start-up when the process that made them is gone (killed with kill -9, or the machine stopped).
"""
import atexit
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

PREFIX = "pixelrnn-app-"


def folder(kind: str, root: str | None = None) -> Path:
    """A new folder for `kind` ("runs", "hub"), after removing the ones that dead processes left."""
    sweep(kind, root)
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{_identity(os.getpid())}-", dir=root))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def sweep(kind: str, root: str | None = None) -> list[Path]:
    """Remove the `kind` folders whose process is gone; return them."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}{kind}-*"):
        match = re.match(rf"{re.escape(PREFIX + kind)}-(\d+)\.(\d+)-", path.name)
        if match and _identity(int(match.group(1))) != f"{match.group(1)}.{match.group(2)}":
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _identity(pid: int) -> str:
    """pid.start-time: a pid alone may be reused by the next process (the app restarted in the same container)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            started = file.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "gone"
        except OSError:
            pass
        started = "0"
    return f"{pid}.{started}"


def exit_on_terminate() -> None:
    """Let a plain stop (SIGTERM) run the atexit clean-up, as Ctrl+C does."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(0))
