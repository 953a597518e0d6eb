"""Timeline pictures of temporal grounding: thumbnails along the clip, segments as bars beneath.

:func:`visualize_temporal_grounding` (seed 002's name and call) draws, on one time axis:

- a strip of frame thumbnails decoded with vtg's own :func:`~vtg_core.data.video.load_frames`
  (uniform sampling: each thumbnail is the middle frame of its equal share of the clip, drawn in
  that share; a tick and label give its exact time);
- each ground-truth segment as a green bar, with dashed lines at its edges through the strip;
- each prediction as a bar (several: e.g. the N GRPO rollouts of one prompt), labelled on the right
  with its times, its IoU and any rewards it carries;
- the IoU (best / mean over several predictions) in the title, the query beneath it.

:func:`plot_iou_histogram` and :func:`eval_plots` draw what ``vtg eval --plots`` writes.

matplotlib is used through its object API with the Agg canvas (no pyplot, no global backend
switch), so drawing works headless, in threads, and inside a notebook without touching its
backend. IoU comes from the task's metric code, never a second implementation.
"""

from __future__ import annotations

import logging
import math
import os
import re
import textwrap
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import VideoError, VtgError
from ..tasks.temporal_grounding.metrics import THRESHOLDS, clip_segment, segment_iou

log = logging.getLogger(__name__)

#: Thumbnail pixel budget: enough to recognise a scene at print size, cheap to decode.
THUMB_PIXELS = 200 * 120
GT_COLOR = "#2ca02c"
PRED_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#d62728", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
FIG_WIDTH = 11.0  # inches; the strip's height follows from the frames' aspect ratio
# Characters of a bar's label text: longer text (a garbled answer's parse error) would stretch the
# saved picture sideways until the timeline itself is unreadably small.
_DETAIL_CHARS = 90

Segment = tuple[float, float]


@attrs.define
class _Bar:
    segment: Segment | None
    label: str
    detail: str


def _require_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise VtgError("drawing timelines needs matplotlib: pip install 'vtg-core[viz]'") from exc
    return Figure


def _pair(value: Any) -> Segment | None:
    if isinstance(value, list | tuple) and len(value) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return float(value[0]), float(value[1])
    return None


def _fmt_rewards(rewards: Any) -> str:
    if isinstance(rewards, Mapping):
        return "  ".join(f"{k}={v:.2f}" if isinstance(v, int | float) else f"{k}={v}" for k, v in rewards.items())
    if isinstance(rewards, int | float):
        return f"reward={rewards:.2f}"
    if isinstance(rewards, Sequence) and not isinstance(rewards, str):
        return "rewards=" + ", ".join(f"{v:.2f}" for v in rewards)
    return ""


def _segment_of(item: Mapping[str, Any]) -> Segment | None:
    for a, b in (("start_time", "end_time"), ("start", "end")):
        if a in item or b in item:
            s, e = item.get(a), item.get(b)
            return None if s is None or e is None else (float(s), float(e))
    for key in ("segment", "pred", "parsed", "timestamp", "answer"):
        seg = _pair(item.get(key))
        if seg is not None:
            return seg
    return None


def normalise_predictions(predictions: Any) -> list[_Bar]:
    """Bars from what callers have: ``predict()`` results, ``(start, end)`` pairs, or dicts.

    A dict may give its segment as ``start_time``/``end_time``, ``start``/``end`` or one of
    ``segment`` / ``pred`` / ``parsed`` / ``timestamp`` (so ``predictions.jsonl`` rows work as
    they are), a ``label``, and ``rewards`` (a mapping name -> value, a list, or one number).
    A result without a segment (a parse failure) gets a row saying so and no bar.
    """
    if predictions is None:
        return []
    if _pair(predictions) is not None or isinstance(predictions, Mapping):
        predictions = [predictions]
    bars = []
    many = len(predictions) > 1
    for i, item in enumerate(predictions):
        default_label = f"pred {i + 1}" if many else "prediction"
        if isinstance(item, Mapping):
            seg = _segment_of(item)
            label = str(item.get("label") or default_label)
            detail = _fmt_rewards(item.get("rewards", item.get("reward")))
            if seg is None:
                err = item.get("error") or item.get("parse_error") or "no segment"
                detail = f"no answer ({err})" + (f" | {detail}" if detail else "")
            bars.append(_Bar(seg, label, detail))
        else:
            seg = _pair(item)
            if seg is None:
                raise TypeError(f"prediction {i} is {item!r}; expected (start, end), a predict() result, or a dict "
                                "with start_time/end_time (optionally label and rewards)")
            bars.append(_Bar(seg, default_label, ""))
    return bars


def _ground_truths(ground_truths: Any) -> list[Segment]:
    if ground_truths is None:
        return []
    single = _pair(ground_truths)
    if single is not None:
        return [single]
    out = []
    for gt in ground_truths:
        seg = _pair(gt) or (_segment_of(gt) if isinstance(gt, Mapping) else None)
        if seg is None:
            raise TypeError(f"ground truth {gt!r} is not a (start, end) pair")
        out.append(seg)
    return out


def _iou(pred: Segment, gts: Sequence[Segment], duration: float) -> float | None:
    if not gts:
        return None
    if pred[0] > pred[1]:
        return 0.0  # a reversed answer scores 0, as in the metrics
    clipped = clip_segment(pred, duration)
    return max(segment_iou(clipped, gt) for gt in gts)


def _duration(video_path: Any, duration: float | None, video_start: float | None,
              video_end: float | None) -> float:
    if duration is not None:
        return float(duration)
    if video_end is not None:
        return float(video_end) - float(video_start or 0.0)
    from ..data.video import probe

    return probe(video_path).duration - float(video_start or 0.0)


def _thumbnails(video_path: Any, n: int, video_start: float | None, video_end: float | None) -> Any:
    from ..data.video import load_frames

    return load_frames(video_path, strategy="uniform", max_frames=n, fps=0.0, max_pixels=THUMB_PIXELS,
                       start=video_start, end=video_end)


def _seconds(t: float) -> str:
    return f"{t:.2f}".rstrip("0").rstrip(".") + "s"


def _save(fig: Any, output_path: str | os.PathLike[str], dpi: int) -> str:
    path = Path(output_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix or '.png'}")
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", pad_inches=0.15, facecolor="white")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return str(path)


def visualize_temporal_grounding(
    video_path: str | os.PathLike[str] | None,
    predictions: Any = None,
    ground_truths: Any = None,
    output_path: str | os.PathLike[str] | None = None,
    query: str | None = None,
    title: str | None = None,
    *,
    duration: float | None = None,
    video_start: float | None = None,
    video_end: float | None = None,
    num_thumbnails: int = 8,
    dpi: int = 120,
) -> Any:
    """Draw a timeline (see the module docstring); save it as PNG when ``output_path`` is given.

    ``duration`` defaults to the clip's (probed; ``video_end - video_start`` for a trimmed
    sample); times are seconds from the clip's (or trim window's) start. When the video cannot
    be decoded and ``duration`` is given, the timeline is drawn without thumbnails. Returns the
    path written, or the matplotlib ``Figure`` when ``output_path`` is None.
    """
    Figure = _require_matplotlib()
    bars = normalise_predictions(predictions)
    gts = _ground_truths(ground_truths)
    frames, note = None, None
    if video_path is not None:
        try:
            dur = _duration(video_path, duration, video_start, video_end)
            frames = _thumbnails(video_path, num_thumbnails, video_start, video_end)
        except VideoError as exc:
            if duration is None:
                raise
            dur, note = float(duration), f"no thumbnails: {exc}"
            log.warning("timeline without thumbnails: %s", exc)
    else:
        if duration is None:
            raise ValueError("visualize_temporal_grounding needs video_path or duration")
        dur, note = float(duration), "no video given"
    if not (math.isfinite(dur) and dur > 0):
        raise ValueError(f"the clip's duration must be positive, got {dur}")

    n = frames.num_frames if frames is not None else num_thumbnails
    aspect = (frames.height / frames.width) if frames is not None else 0.5625
    # Laid out in inches, so a thumbnail cell has exactly its frame's aspect ratio.
    left, axis_w = FIG_WIDTH * 0.14, FIG_WIDTH * 0.62  # the bar labels on the right take the rest
    strip_h = min(axis_w / n * aspect, 2.2)
    rows = len(gts) + len(bars)
    bars_h = 0.42 * max(rows, 1) + 0.1
    head_h = 0.8 if query else 0.5
    label_h, gap_h, bottom_h = 0.25, 0.2, 0.55  # time labels above the strip, markers under it, x label
    height = head_h + label_h + strip_h + gap_h + bars_h + bottom_h
    fig = Figure(figsize=(FIG_WIDTH, height))
    ax = fig.add_axes((left / FIG_WIDTH, bottom_h / height, axis_w / FIG_WIDTH, bars_h / height))
    ax_strip = fig.add_axes((left / FIG_WIDTH, (bottom_h + bars_h + gap_h) / height, axis_w / FIG_WIDTH,
                             strip_h / height), sharex=ax)
    ax.set_label("segments")  # names to find the axes by in a returned Figure
    ax_strip.set_label("frames")

    # -- thumbnail strip: one cell per thumbnail, the cell being that frame's share of the clip --
    cell = dur / n
    ax_strip.set_xlim(0, dur)
    ax_strip.set_ylim(0, 1)
    ax_strip.set_yticks([])
    ax_strip.tick_params(axis="x", labelbottom=False, length=0)
    for side in ("top", "right", "left"):
        ax_strip.spines[side].set_visible(False)
    if frames is not None:
        for i in range(n):
            ax_strip.imshow(frames.array[i], extent=(i * cell, (i + 1) * cell, 0.0, 1.0), aspect="auto",
                            interpolation="bilinear", zorder=1)
            t = float(frames.timestamps[i])
            ax_strip.plot([t], [0.0], marker="^", color="black", markersize=5, clip_on=False, zorder=3)
            ax_strip.text(t, 1.02, _seconds(t), ha="center", va="bottom", fontsize=7, color="#333333")
            if i:  # a thin gap between cells, so similar frames do not melt into one picture
                ax_strip.axvline(i * cell, color="white", linewidth=1.2, zorder=2)
        ax_strip.set_ylabel("frames", rotation=0, ha="right", va="center", fontsize=9)
    else:
        ax_strip.set_facecolor("#f2f2f2")
        ax_strip.text(dur / 2, 0.5, textwrap.shorten(note or "", 110), ha="center", va="center", fontsize=8,
                      color="#555555")

    # -- segments ------------------------------------------------------------------------------
    labels, y = [], 0
    for j, gt in enumerate(gts):
        ax.barh(y, gt[1] - gt[0], left=gt[0], height=0.62, color=GT_COLOR, alpha=0.85, zorder=2)
        labels.append("ground truth" if len(gts) == 1 else f"ground truth {j + 1}")
        ax.text(1.01, y, f"{gt[0]:.2f} - {gt[1]:.2f} s", transform=ax.get_yaxis_transform(), va="center",
                fontsize=8.5, color=GT_COLOR)
        y += 1
    ious = []
    for k, bar in enumerate(bars):
        color = PRED_COLORS[k % len(PRED_COLORS)]
        text = bar.detail
        if bar.segment is None and gts:
            ious.append(0.0)  # no answer scores 0, as parse failures do in the metrics
        if bar.segment is not None:
            s, e = bar.segment
            lo, hi = min(s, e), max(s, e)
            reversed_ = s > e
            ax.barh(y, max(hi - lo, dur * 0.002), left=lo, height=0.62, color="white" if reversed_ else color,
                    edgecolor=color, hatch="//" if reversed_ else None, alpha=0.9, zorder=2)
            iou = _iou(bar.segment, gts, dur)
            parts = [f"{s:.2f} - {e:.2f} s" + (" (reversed)" if reversed_ else "")]
            if iou is not None:
                ious.append(iou)
                parts.append(f"IoU {iou:.2f}")
            if text:
                parts.append(text)
            text = " | ".join(parts)
        ax.text(1.01, y, textwrap.shorten(text, _DETAIL_CHARS, placeholder=" ..."), transform=ax.get_yaxis_transform(),
                va="center", fontsize=8.5, color=color)
        labels.append(textwrap.shorten(bar.label, 24, placeholder="..."))
        y += 1
    for gt in gts:
        for edge in gt:
            for a in (ax, ax_strip):
                a.axvline(edge, color=GT_COLOR, linestyle="--", linewidth=1.0, alpha=0.8, zorder=4)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=9)
    ax.set_ylim(len(labels) - 0.5 if labels else 0.5, -0.5)
    ax.set_xlim(0, dur)
    ax.set_xlabel("time (s)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6, zorder=0)
    for i in range(1, n):
        ax.axvline(i * cell, color="#eeeeee", linewidth=0.6, zorder=0)

    # -- title -------------------------------------------------------------------------------------
    heading = title or "Temporal grounding"
    unanswered = sum(1 for b in bars if b.segment is None)
    if len(ious) == 1:
        heading += f"  |  IoU {ious[0]:.2f}" + (" (no answer)" if unanswered else "")
    elif ious:
        heading += (f"  |  IoU best {max(ious):.2f}, mean {sum(ious) / len(ious):.2f} ({len(ious)} predictions"
                    + (f", {unanswered} without an answer)" if unanswered else ")"))
    fig.suptitle(heading, x=0.14, ha="left", y=1 - 0.12 / height, va="top", fontsize=11, fontweight="bold")
    if query:
        fig.text(0.14, 1 - 0.5 / height, textwrap.shorten(f"query: \u201c{query}\u201d", 150),
                 ha="left", va="top", fontsize=9.5, style="italic")
    if output_path is None:
        return fig
    return _save(fig, output_path, dpi)


def plot_iou_histogram(ious: Sequence[float], output_path: str | os.PathLike[str], *,
                       failed: Sequence[bool] | None = None, title: str | None = None, dpi: int = 120) -> str:
    """Histogram of per-sample IoU (parse failures stacked in grey) with the R1@k thresholds."""
    Figure = _require_matplotlib()
    ious = [float(v) for v in ious]
    failed = list(failed) if failed is not None else [False] * len(ious)
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    edges = [i / 20 for i in range(21)]
    ok = [v for v, f in zip(ious, failed, strict=True) if not f]
    bad = [v for v, f in zip(ious, failed, strict=True) if f]
    ax.hist([ok, bad], bins=edges, stacked=True, color=["#1f77b4", "#aaaaaa"],
            label=["parsed", "parse failure (IoU 0)"], edgecolor="white", linewidth=0.5)
    n = max(len(ious), 1)
    summary = []
    for k, t in enumerate(THRESHOLDS):
        # One legend entry for all thresholds: labels drawn at the lines collide with the mean's.
        ax.axvline(t, color="#d62728", linestyle="--", linewidth=1,
                   label="R1@k thresholds " + ", ".join(map(str, THRESHOLDS)) if k == 0 else None)
        summary.append(f"R1@{t} {100.0 * sum(1 for v in ious if v >= t) / n:.1f}%")
    mean = sum(ious) / n
    ax.axvline(mean, color="black", linewidth=1.2, label="mean IoU")
    summary.append(f"mIoU {100 * mean:.1f}%")
    if any(failed):
        summary.append(f"parse failures {100.0 * sum(failed) / n:.1f}%")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of samples
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU with the ground truth")
    ax.set_ylabel("samples")
    ax.set_title((title or f"IoU over {len(ious)} samples") + "\n" + "   ".join(summary), fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, output_path, dpi)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "sample"


def eval_plots(samples: Sequence[Any], result: Any, plots_dir: str | os.PathLike[str], *,
               num_thumbnails: int = 8) -> list[str]:
    """What ``vtg eval --plots`` draws: timelines of the best, median and worst samples by IoU, and
    the IoU histogram. Returns the files written."""
    out_dir = Path(plots_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ious = [p.scores.get("iou", 0.0) for p in result.predictions]
    written = [plot_iou_histogram(ious, out_dir / "iou_histogram.png", failed=[not p.parsed.ok
                                                                             for p in result.predictions])]
    order = sorted(range(len(ious)), key=lambda i: (ious[i], i))
    picks: dict[int, str] = {}
    if order:
        for tag, i in (("best", order[-1]), ("median", order[len(order) // 2]), ("worst", order[0])):
            picks.setdefault(i, tag)
    for i, tag in picks.items():
        sample, pred = samples[i], result.predictions[i]
        value = pred.parsed.value if pred.parsed.ok else None
        item = {"segment": list(value) if isinstance(value, tuple | list) else None, "label": "model",
                "error": pred.parsed.error}
        try:
            written.append(visualize_temporal_grounding(
                sample.video, [item], [sample.answer] if sample.answer is not None else None,
                out_dir / f"timeline_{tag}_{_safe(sample.id)}.png", query=sample.query,
                title=f"{tag} IoU: sample {sample.id}", duration=sample.duration, video_start=sample.video_start,
                video_end=sample.video_end, num_thumbnails=num_thumbnails))
        except VtgError as exc:  # a plot must not sink an evaluation whose numbers are already written
            log.warning("could not draw the timeline of sample %s: %s", sample.id, exc)
    return written
