"""An in-memory LRU cache of decoded frames, shared by the threads of one process.

Epochs of training decode the same clips with the same sampling again and again;
``load_frames(..., cache=FrameCache(...))`` keeps the decoded :class:`Frames` and hands back the
same read-only record on a hit.

A key is the file's identity (real path, size, mtime in ns, inode and device, so a clip replaced
in place is never served from the old entry) plus every parameter that changes the frames
(strategy, max_frames, fps, resolution, max_pixels, trim window, seed, decoder).

Each DataLoader worker process has its own cache (pickling one gives an empty cache with the
same limit): the cache pays off across epochs inside a worker, not across workers.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .decode import Frames

DEFAULT_MAX_BYTES = 512 * 1024 * 1024


def file_identity(path: str, st: os.stat_result | None = None) -> tuple:
    """What makes two reads of ``path`` the same file content, as far as stat can tell."""
    st = st if st is not None else os.stat(path)
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


class FrameCache:
    """Least-recently-used cache of :class:`Frames`, bounded by the bytes of their arrays.

    Thread-safe. ``hits`` / ``misses`` count lookups. An entry larger than ``max_bytes`` is not
    kept. Two threads missing the same key at once both decode; the second store wins.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[Hashable, Frames] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def make_key(path: str, st: os.stat_result | None, params: tuple) -> tuple:
        """Cache key of ``path`` (with its stat result, to avoid a second stat) and parameters."""
        return (file_identity(path, st), params)

    def get(self, key: Hashable) -> Frames | None:
        with self._lock:
            frames = self._entries.get(key)
            if frames is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return frames

    def put(self, key: Hashable, frames: Frames) -> None:
        size = int(frames.array.nbytes)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._nbytes -= int(old.array.nbytes)
            if size > self.max_bytes:
                return
            self._entries[key] = frames
            self._nbytes += size
            while self._nbytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._nbytes -= int(evicted.array.nbytes)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._nbytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes of frame data held now."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._entries), "nbytes": self._nbytes,
                    "max_bytes": self.max_bytes, "hits": self.hits, "misses": self.misses}

    def __repr__(self) -> str:
        s = self.stats()
        return (f"FrameCache(entries={s['entries']}, nbytes={s['nbytes']}, "
                f"max_bytes={s['max_bytes']}, hits={s['hits']}, misses={s['misses']})")

    # A lock cannot be pickled; DataLoader workers started with "spawn" pickle their dataset.
    def __getstate__(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_bytes"])
