"""Frames around the support times, topped up with uniform ones; timestamps from the decoder."""

from __future__ import annotations

import attrs
import pytest

from vtg_core.data.sample import Sample


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 4 s clip at 8 fps (frame k starts at k/8 s)."""
    from vtg_core.data.synthetic import Event, make_clip

    return str(make_clip(tmp_path_factory.mktemp("clip") / "c.mp4", duration=4.0, fps=8, size=(32, 32),
                         events=[Event(start=1.0, end=2.0)]))


def _sample(clip, support):
    return Sample(id="s", video=clip, duration=None, query="q", answer="A",
                  inputs={"letters": ["A", "B"], "choices": ["x", "y"], "support_frames": support})


def _video_cfg():
    from vtg_core.config import default_config

    return default_config("sft", ["video.resolution={height: 32, width: 32}"]).video


def _frames(clip, support, **options):
    from vtg_dashcam_mcq.task import DashcamMCQTask

    return DashcamMCQTask(**options).load_frames(_sample(clip, support), _video_cfg())


def test_one_support_time_gives_three_frames_around_it_and_one_uniform(clip):
    f = _frames(clip, [2.0])
    assert f.num_frames == 4 and f.array.shape == (4, 32, 32, 3)
    near = [t for t in f.timestamps if 1.5 <= t <= 2.5]
    assert len(near) == 3  # the +/-0.5 s window
    assert len(set(f.indices)) == 4 and list(f.timestamps) == sorted(f.timestamps)
    far = [t for t in f.timestamps if t not in near]
    assert far and (far[0] < 1.0 or far[0] > 3.0)  # the top-up is far from the window
    assert f.timestamps == tuple(k / 8 for k in f.indices)  # the decoder's times, in clip seconds
    assert not f.array.flags.writeable


def test_the_count_adapts_between_min_and_max(clip):
    assert _frames(clip, [1.0, 3.0]).num_frames == 6  # 3 per support time, no top-up
    assert _frames(clip, [0.5, 1.5, 2.5, 3.5]).num_frames == 4  # one each, already min_frames
    many = _frames(clip, [0.25 * k for k in range(1, 16)])
    assert many.num_frames == 6  # capped, support times spread over the clip
    assert _frames(clip, [2.0], max_frames=8, min_frames=8).num_frames == 8


def test_no_support_times_or_switched_off_means_uniform_frames(clip):
    from vtg_core.data.video import load_frames

    uniform = load_frames(clip, max_frames=6, resolution=(32, 32))
    for f in (_frames(clip, []), _frames(clip, [2.0], use_support_frames=False), _frames(clip, [9.0])):
        assert f.indices == uniform.indices and f.timestamps == uniform.timestamps


def test_window_frames_match_a_direct_decode_pixel_for_pixel(clip):
    import numpy as np

    from vtg_core.data.video import load_frames

    f = _frames(clip, [2.0], support_window=0.0, min_frames=1, max_frames=1)
    direct = load_frames(clip, max_frames=1, start=2.0, end=2.001, resolution=(32, 32))
    assert f.indices == direct.indices == (16,) and np.array_equal(f.array, direct.array)


def test_a_missing_video_fails_with_the_sample(clip):
    from vtg_core.errors import VideoError

    sample = attrs.evolve(_sample(clip, [1.0]), video=clip + ".gone")
    from vtg_dashcam_mcq.task import DashcamMCQTask

    with pytest.raises(VideoError, match="sample s"):
        DashcamMCQTask().load_frames(sample, _video_cfg())
