"""Timeline pictures: a PNG of sensible size that is not blank, thumbnails where the events are,
every prediction form accepted, and a clean fallback without a decodable video."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from vtg_core.data.synthetic import Event, make_clip  # noqa: E402
from vtg_core.visualize import plot_iou_histogram, visualize_temporal_grounding  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    # A red square on screen from 1.0 s to 2.5 s of a 4 s clip.
    path = tmp_path_factory.mktemp("viz") / "clip.mp4"
    return str(make_clip(path, duration=4.0, fps=8, size=(48, 64), events=[Event(start=1.0, end=2.5, size=0.5)]))


def _png(path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(str(path))


def test_timeline_png_with_rollouts_rewards_and_failures(clip, tmp_path):
    out = tmp_path / "timeline.png"
    rollouts = [
        {"start_time": 1.0, "end_time": 2.5, "rewards": {"temporal_iou": 1.0, "segment_overlap": 1.0},
         "label": "rollout 1"},
        {"start_time": 0.5, "end_time": 2.0, "rewards": {"temporal_iou": 0.5}},
        (3.0, 1.0),                                                  # reversed: IoU 0, hatched
        {"start_time": None, "end_time": None, "raw": "dunno", "parsed": False, "error": "no pair"},
    ]
    written = visualize_temporal_grounding(clip, predictions=rollouts, ground_truths=[(1.0, 2.5)], output_path=out,
                                           query="when does the red square appear?", title="rollouts")
    assert written == str(out) and out.is_file()
    img = _png(out)
    h, w = img.shape[:2]
    assert 300 <= h <= 2000 and 900 <= w <= 2400, img.shape
    rgb = img[..., :3]
    assert rgb.std() > 0.05 and len(np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50
    # The thumbnails carry the clip's red square: strongly red pixels exist.
    red = (rgb[..., 0] > 0.75) & (rgb[..., 1] < 0.3) & (rgb[..., 2] < 0.3)
    assert red.sum() > 50
    assert not list(tmp_path.glob(".*"))  # written atomically, no temporary left


def test_title_reports_iou_and_thumbnails_line_up_with_time(clip):
    fig = visualize_temporal_grounding(clip, predictions=[{"start_time": 1.0, "end_time": 2.0}],
                                       ground_truths=(1.0, 2.5), query="q")
    assert "IoU 0.67" in fig._suptitle.get_text()  # 1.0 of 1.5 seconds
    axes = {a.get_label(): a for a in fig.axes}
    strip, bars = axes["frames"], axes["segments"]
    assert strip.get_xlim() == bars.get_xlim() == (0.0, 4.0)
    images = strip.get_images()
    assert len(images) == 8
    # Each thumbnail sits in its eighth of the clip, and its frame's time label lies inside that eighth.
    labels = sorted(float(t.get_text().rstrip("s")) for t in strip.texts)
    for i, (image, t) in enumerate(zip(sorted(images, key=lambda im: im.get_extent()[0]), labels, strict=True)):
        left, right = image.get_extent()[:2]
        assert left == pytest.approx(i * 0.5) and right == pytest.approx((i + 1) * 0.5)
        assert left <= t < right


def test_several_predictions_summarised_and_bad_input_refused(clip):
    fig = visualize_temporal_grounding(clip, [(1.0, 2.5), (0.0, 1.0)], [(1.0, 2.5)])
    assert "best 1.00, mean 0.50 (2 predictions)" in fig._suptitle.get_text()
    with pytest.raises(TypeError, match="prediction 0"):
        visualize_temporal_grounding(clip, ["not a segment"], [(1.0, 2.0)])


def test_missing_video_draws_without_thumbnails(tmp_path):
    out = visualize_temporal_grounding(tmp_path / "gone.mp4", [(1.0, 2.0)], [(1.5, 3.0)], tmp_path / "t.png",
                                       duration=5.0)
    assert _png(out).shape[0] > 100
    from vtg_core.errors import VideoError

    with pytest.raises(VideoError):  # without a duration there is nothing to draw against
        visualize_temporal_grounding(tmp_path / "gone.mp4", [(1.0, 2.0)], [(1.5, 3.0)], tmp_path / "u.png")


def test_iou_histogram(tmp_path):
    out = plot_iou_histogram([0.0, 0.1, 0.4, 0.55, 0.9, 1.0], tmp_path / "h.png",
                             failed=[True, False, False, False, False, False])
    img = _png(out)
    assert img.shape[0] > 300 and img[..., :3].std() > 0.05
