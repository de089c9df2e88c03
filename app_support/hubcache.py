"""The app's own cache of visitors' Hub downloads, bounded on disk: after each load, the least recently used
repos go until the rest fit (a loaded model is in memory; a dropped one is fetched again)."""
import contextlib
import os
import shutil
import threading
from pathlib import Path


class HubCache:
    def __init__(self, folder: Path, max_bytes: int):
        self.folder, self.max_bytes = Path(folder), max_bytes
        self._active = {}  # repo folder name -> loads in progress
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def using(self, repo_id: str):
        """A load of `repo_id` into the cache: its files are kept while it runs, then the cache is pruned."""
        name = _repo_folder(repo_id)
        with self._lock:
            self._active[name] = self._active.get(name, 0) + 1
        with contextlib.suppress(OSError):
            os.utime(self.folder / name)  # most recently used
        try:
            yield
        finally:
            with self._lock:
                self._active[name] -= 1
                if not self._active[name]:
                    del self._active[name]
            self.prune()

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file() and not p.is_symlink())

    def prune(self) -> None:
        with self._lock:
            repos = sorted((p for p in self.folder.glob("models--*") if p.name not in self._active), key=_mtime)
            total = self.size()
            for repo in repos:
                if total <= self.max_bytes:
                    break
                total -= sum(p.stat().st_size for p in repo.rglob("*") if p.is_file() and not p.is_symlink())
                shutil.rmtree(repo, ignore_errors=True)
                shutil.rmtree(self.folder / ".locks" / repo.name, ignore_errors=True)


def _repo_folder(repo_id: str) -> str:
    return "models--" + repo_id.replace("/", "--")  # huggingface_hub's cache layout


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
