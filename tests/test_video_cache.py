"""The decoded-frame cache: hits, keys, invalidation, LRU bound, thread safety, read-only frames."""

from __future__ import annotations

import os
import pickle
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from vtg_core.data.synthetic import COLORS, Event, make_clip
from vtg_core.data.video import FrameCache, load_frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("cache")
    red = make_clip(d / "red.mp4", duration=3.0, fps=8, events=[Event(color="red", start=0.0, end=3.0)])
    blue = make_clip(d / "blue.mp4", duration=3.0, fps=8,
                     events=[Event(color="blue", start=0.0, end=3.0)])
    return red, blue


def test_hit_returns_the_same_frames_and_counts(clips):
    cache = FrameCache(max_bytes=10**8)
    a = load_frames(clips[0], max_frames=4, cache=cache)
    b = load_frames(clips[0], max_frames=4, cache=cache)
    assert b is a
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)
    assert cache.nbytes == a.array.nbytes
    assert cache.stats()["entries"] == 1


@pytest.mark.parametrize("change", [
    {"max_frames": 5}, {"fps": 2.0}, {"strategy": "keyframe"}, {"strategy": "random", "seed": 1},
    {"start": 1.0}, {"end": 2.0}, {"resolution": (32, 32)}, {"max_pixels": 1024},
    {"decoder": "pyav"},
])
def test_every_sampling_parameter_is_part_of_the_key(clips, change):
    cache = FrameCache()
    base = load_frames(clips[0], max_frames=4, cache=cache)
    other = load_frames(clips[0], **{"max_frames": 4, **change}, cache=cache)
    assert other is not base
    assert (cache.hits, cache.misses) == (0, 2)


def test_random_without_seed_bypasses_the_cache(clips):
    cache = FrameCache()
    load_frames(clips[0], strategy="random", cache=cache)
    load_frames(clips[0], strategy="random", cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 0, 0)


def test_mtime_change_invalidates(clips, tmp_path):
    path = tmp_path / "c.mp4"
    shutil.copy2(clips[0], path)
    cache = FrameCache()
    first = load_frames(path, max_frames=2, cache=cache)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    second = load_frames(path, max_frames=2, cache=cache)
    assert second is not first and cache.misses == 2


def test_replaced_file_never_serves_the_old_frames(clips, tmp_path):
    path = tmp_path / "c.mp4"
    shutil.copy2(clips[0], path)
    cache = FrameCache()
    red = load_frames(path, max_frames=2, cache=cache)
    st = os.stat(path)
    tmp = tmp_path / "new.mp4"
    shutil.copy(clips[1], tmp)
    os.replace(tmp, path)
    # even with the old mtime put back, size/inode give the new content away
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    blue = load_frames(path, max_frames=2, cache=cache)
    assert blue is not red
    centre = blue.array[0, 32, 32].astype(int)
    assert np.abs(centre - np.asarray(COLORS["blue"])).max() < 40


def test_same_file_through_another_path_hits_and_reports_the_path_asked(clips, tmp_path):
    link = tmp_path / "link.mp4"
    link.symlink_to(clips[0])
    cache = FrameCache()
    a = load_frames(clips[0], max_frames=2, cache=cache)
    b = load_frames(link, max_frames=2, cache=cache)
    assert cache.hits == 1 and b.array is a.array and b.path == str(link)


def test_lru_eviction_by_bytes(clips):
    one = load_frames(clips[0], max_frames=2).array.nbytes
    cache = FrameCache(max_bytes=2 * one)
    load_frames(clips[0], max_frames=2, cache=cache)
    load_frames(clips[1], max_frames=2, cache=cache)
    load_frames(clips[0], max_frames=2, cache=cache)            # touch red: blue is now oldest
    load_frames(clips[0], max_frames=2, start=1.0, cache=cache)  # evicts blue
    assert len(cache) == 2 and cache.nbytes <= cache.max_bytes
    misses = cache.misses
    load_frames(clips[0], max_frames=2, cache=cache)
    assert cache.misses == misses  # red survived
    load_frames(clips[1], max_frames=2, cache=cache)
    assert cache.misses == misses + 1  # blue was evicted
    small = FrameCache(max_bytes=one // 2)
    load_frames(clips[0], max_frames=2, cache=small)
    assert len(small) == 0  # larger than the whole cache: not kept


def test_cached_frames_cannot_be_corrupted_by_a_caller(clips):
    cache = FrameCache()
    frames = load_frames(clips[0], max_frames=2, cache=cache)
    with pytest.raises(ValueError):
        frames.array[:] = 0
    with pytest.raises(ValueError):
        frames.array.flags.writeable = True
    with pytest.raises((AttributeError, TypeError)):
        frames.timestamps.append(9.0)
    copy = np.array(frames.array)
    copy[:] = 0
    again = load_frames(clips[0], max_frames=2, cache=cache)
    assert again.array.max() > 0


def test_thread_safe_under_concurrent_use(clips):
    cache = FrameCache(max_bytes=10**8)
    jobs = [(clips[k % 2], 2 + k % 3) for k in range(48)]

    def work(job):
        path, n = job
        return load_frames(path, max_frames=n, cache=cache)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, jobs))
    assert cache.hits + cache.misses == len(jobs)
    assert len(cache) == 6
    for (path, n), frames in zip(jobs, results, strict=True):
        assert len(frames.indices) == n and frames.path == str(path)


def test_pickles_as_an_empty_cache_with_the_same_limit(clips):
    cache = FrameCache(max_bytes=12345)
    load_frames(clips[0], max_frames=1, cache=cache)
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.max_bytes == 12345 and len(clone) == 0 and clone.hits == 0
    load_frames(clips[0], max_frames=1, cache=clone)
    assert clone.misses == 1
