"""Frame-index selection and token estimates: pure functions, no decoding."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vtg_core.data.video import (
    VideoInfo,
    estimate_sample_tokens,
    estimate_visual_tokens,
    output_size,
    sample_indices,
)
from vtg_core.data.video import sampling as sampling_mod
from vtg_core.data.video.sampling import planned_num_frames
from vtg_core.data.video.tokens import qwen_frame_size
from vtg_core.errors import VideoError

# 10 s at 10 fps: frame i starts at i / 10.
TS = [i / 10 for i in range(100)]


def test_uniform_takes_the_middle_of_equal_runs():
    assert sample_indices(TS, max_frames=10) == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]


def test_native_fps_takes_every_frame_up_to_max_frames():
    assert sample_indices(TS, max_frames=None) == list(range(100))
    assert len(sample_indices(TS, max_frames=32)) == 32
    assert sample_indices(TS[:5], max_frames=32, duration=0.5) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("fps", "max_frames", "expected"), [
    (1.0, 32, 10), (2.0, 32, 20), (2.0, 8, 8), (0.25, 32, 3), (50.0, None, 100), (0.01, 32, 1),
])
def test_fps_is_a_target_rate_capped_by_max_frames(fps, max_frames, expected):
    assert len(sample_indices(TS, fps=fps, max_frames=max_frames)) == expected


def test_fps_one_lands_on_each_second():
    idx = sample_indices(TS, fps=1.0)
    assert [TS[i] for i in idx] == pytest.approx([0.5 + k for k in range(10)])


def test_trim_window_keeps_frames_inside_it():
    idx = sample_indices(TS, start=2.0, end=5.0, max_frames=None)
    assert idx == list(range(20, 50))
    idx = sample_indices(TS, start=2.0, end=5.0, fps=2.0)
    assert len(idx) == 6 and all(2.0 <= TS[i] < 5.0 for i in idx)


def test_window_narrower_than_a_frame_gives_the_frame_on_screen():
    assert sample_indices(TS, start=2.01, end=2.05) == [20]


def test_random_is_deterministic_per_seed_and_one_per_run():
    a = sample_indices(TS, strategy="random", max_frames=10, seed=1)
    assert a == sample_indices(TS, strategy="random", max_frames=10, seed=1)
    assert a != sample_indices(TS, strategy="random", max_frames=10, seed=2)
    assert all(10 * k <= i < 10 * (k + 1) for k, i in enumerate(a))


def test_keyframe_prefers_key_frames_inside_each_run():
    keys = [0, 12, 24, 36, 48, 60, 72, 84, 96]
    idx = sample_indices(TS, strategy="keyframe", max_frames=5, key_indices=keys)
    # runs of 20 frames: [0,20) holds 0 and 12, and 12 is nearer its middle (10); [20,40) holds
    # 24 and 36, equally near 30: the earlier wins
    assert idx == [12, 24, 48, 72, 84]
    # a run without a key frame takes its middle frame
    assert sample_indices(TS, strategy="keyframe", max_frames=2, key_indices=[0]) == [0, 75]


def test_keyframe_picks_never_repeat_when_runs_are_uneven():
    # 10 frames in 8 runs: runs are 1 or 2 frames long; a run without a key frame takes its own
    # middle frame, never the next run's key frame (regression: h265_video.mp4)
    ts = [i / 10 for i in range(10)]
    idx = sample_indices(ts, strategy="keyframe", max_frames=8, key_indices=[0, 2, 4, 6, 8])
    assert idx == sorted(set(idx)) and len(idx) == 8


def test_keyframe_without_key_info_falls_back_to_uniform_with_a_note(caplog, monkeypatch):
    monkeypatch.setattr(sampling_mod, "_noted_keyframe_fallback", False)
    with caplog.at_level(logging.INFO, logger=sampling_mod.__name__):
        idx = sample_indices(TS, strategy="keyframe", max_frames=10)
    assert idx == sample_indices(TS, max_frames=10)
    assert "uniform" in caplog.text


def test_accepts_video_info():
    info = VideoInfo(path="x.mp4", num_frames=100, fps=10.0, duration=10.0, width=64, height=64,
                     decoder="pyav", timestamps=tuple(TS), key_indices=(0, 50))
    assert sample_indices(info, strategy="keyframe", max_frames=2) == [0, 50]


def test_end_past_the_decoded_length_is_too_short_with_both_numbers():
    with pytest.raises(VideoError) as err:
        sample_indices(TS, end=12.5)
    assert err.value.reason == "too_short"
    assert "12.500" in str(err.value) and "10.000" in str(err.value)
    # within one frame plus the tolerance is rounding, not an error
    assert sample_indices(TS, end=10.1, max_frames=None)[-1] == 99
    with pytest.raises(VideoError) as err:
        sample_indices(TS, start=10.0)
    assert err.value.reason == "too_short"


@pytest.mark.parametrize(("start", "end"), [(5.0, 3.0), (-1.0, 2.0), (2.0, 2.0), (float("nan"), None)])
def test_inverted_or_negative_window_is_bad_window(start, end):
    with pytest.raises(VideoError) as err:
        sample_indices(TS, start=start, end=end)
    assert err.value.reason == "bad_window"


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="strategy"):
        sample_indices(TS, strategy="dense")
    with pytest.raises(ValueError, match="fps"):
        sample_indices(TS, fps=-1)
    with pytest.raises(ValueError, match="max_frames"):
        sample_indices(TS, max_frames=0)
    with pytest.raises(ValueError, match="ascending"):
        sample_indices([0.0, 0.2, 0.1])


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 400), rate=st.sampled_from([8.0, 25.0, 29.97, 60.0]),
       strategy=st.sampled_from(["uniform", "random", "keyframe"]),
       max_frames=st.one_of(st.none(), st.integers(1, 64)), fps=st.sampled_from([0.0, 0.5, 2.0, 100.0]),
       trim=st.tuples(st.floats(0, 1), st.floats(0, 1)), seed=st.integers(0, 5),
       key_step=st.integers(1, 12))
def test_indices_are_sorted_unique_inside_the_window(n, rate, strategy, max_frames, fps, trim, seed,
                                                     key_step):
    ts = [i / rate for i in range(n)]
    duration = n / rate
    a, b = sorted(trim)
    start, end = a * duration, max(b * duration, a * duration + 1e-3)
    if start >= duration:
        return
    keys = list(range(0, n, key_step))
    idx = sample_indices(ts, strategy=strategy, max_frames=max_frames, fps=fps, start=start,
                         end=end, seed=seed, duration=duration, key_indices=keys)
    assert idx == sorted(set(idx)) and idx
    inside = [i for i in range(n) if start - 1e-5 <= ts[i] < end - 1e-5]
    if inside:
        assert set(idx) <= set(inside)
        assert len(idx) == planned_num_frames(end - start, max_frames=max_frames, fps=fps,
                                              available=len(inside))
    else:
        assert len(idx) == 1


def test_output_size_resolution_wins_and_max_pixels_keeps_aspect():
    assert output_size(270, 480, resolution=(384, 384)) == (384, 384)
    assert output_size(270, 480, max_pixels=270 * 480 // 4) == (135, 240)
    assert output_size(64, 64, max_pixels=10_000) == (64, 64)  # never scales up


def test_visual_tokens_follow_qwen_rounding():
    assert estimate_visual_tokens(32, 384, 384) == 16 * 12 * 12
    assert estimate_visual_tokens(3, 384, 384) == 2 * 12 * 12  # last group padded
    assert estimate_visual_tokens(0, 384, 384) == 0
    # 270 -> 256 (8 x 32), 480 -> 480 (15 x 32)
    assert estimate_visual_tokens(2, 270, 480) == 8 * 15
    # Qwen2.5-VL: patch 14, factor 28; 448 -> 16 patches after merge
    assert estimate_visual_tokens(4, 448, 448, patch_size=14) == 2 * 16 * 16
    # over the pixel bound: scaled down, then floored to multiples of 28
    assert qwen_frame_size(1080, 1920, factor=28, max_pixels=1280 * 28 * 28) == (728, 1316)
    assert qwen_frame_size(10, 10, factor=32) == (32, 32)


def test_sample_tokens_plan_from_metadata():
    # 10 s at 2 fps = 20 frames = 10 groups; 270x480 halved by max_pixels -> 135x240, which the
    # processor rounds to 128x256 (240 / 32 = 7.5 rounds half to even, to 8)
    tokens = estimate_sample_tokens(10.0, max_frames=32, fps=2.0, height=270, width=480,
                                    max_pixels=270 * 480 // 4)
    assert tokens == 10 * (128 // 32) * (256 // 32)
    # native rate: capped by max_frames, or by the clip's frames when native_fps is known
    assert estimate_sample_tokens(10.0, max_frames=32, height=64, width=64) == 16 * 2 * 2
    assert estimate_sample_tokens(1.0, max_frames=32, height=64, width=64, native_fps=8) == 4 * 2 * 2
    # trimming shortens the window
    assert estimate_sample_tokens(10.0, fps=1.0, start=2.0, end=6.0, height=64, width=64) == 2 * 4
