"""Decode video frames: decord first, PyAV as the fallback, timestamps from the decoder.

:func:`probe` reads what a clip holds (frame count, per-frame timestamps, size) and
:func:`load_frames` decodes the frames a sampling strategy picks, as a :class:`Frames` record.

Choices worth knowing (tests pin each one):

- **Timestamps come from the decoder's packet index** (decord's ``get_frame_timestamp``, PyAV's
  ``pts * time_base``), relative to the stream's start time as players show them. Container
  headers are not trusted: ``nasa_13013.mp4`` holds two video streams and the first one's header
  says 325 frames at 25 fps, while the stream decord picks has 390 frames at 29.97 fps. Both
  decoders here pick the same stream (ffmpeg's "best" stream: highest bit rate), so they agree.
  decord reports key frames by their position in decode order, PyAV (here) in presentation
  order; they differ only for streams with reordered key frames.
  ``fps`` is ``frames / duration`` over the decoded timestamps, ``duration`` is where the last
  frame ends.
- **Rotation**: frames come out as displayed. decord 0.6 applies the display-matrix rotation
  itself (``video_90.mov``: stored 568x320, returned 568 high x 320 wide); PyAV returns the stored
  picture and ``frame.rotation``, which the PyAV path applies with ``np.rot90``. For some sizes
  decord's rotated output is broken (4 channels, then ``get_batch`` raises); that is caught and
  PyAV takes over.
- **Which decoder** (``decoder="auto"``): decord, unless it would hand back wrong frames
  *without raising*, which decord 0.6 does (measured here, frames a few positions off) for
  MPEG-TS / MPEG-PS, AVI with B-frames, and open-GOP streams (x265's default, MPEG-2 and
  MPEG-4 Part 2 with B-frames, x264 ``open-gop``). Those go to PyAV, which identifies frames
  by pts (or, for AVI, by decoder output order) and checks where its seeks land. Open GOPs are
  spotted with one PyAV demux pass the first time a file is loaded (cached per file identity,
  see :func:`decord_seeks_exactly`). Anything decord raises (cannot open: AV1, no decoder;
  cannot decode: damaged data; wrong output shape) also sends the file to PyAV.
  ``decoder="decord"`` or ``"pyav"`` uses only that one.
- **Partial decodes raise**: when fewer frames decode than were requested (a file damaged half
  way), :func:`load_frames` raises ``VideoError(reason="corrupt")`` saying how many decoded,
  rather than returning a short or padded clip. A trim window that stays inside the intact part
  still loads. A file cut exactly between two packets cannot be told from a shorter clip: both
  decoders report the shorter duration (compare an annotation's ``duration`` with
  ``probe(path).duration`` to catch it; an explicit ``end`` past it raises ``too_short``).
- **Arrays are read-only** (``writeable=False``, also through the cache), so no caller can
  corrupt frames another caller shares; copy with ``np.array(frames.array)`` to edit.
- Errors a user can cause raise :class:`~vtg_core.errors.VideoError` naming file and sample id,
  with ``reason`` one of ``missing``, ``empty``, ``unsupported``, ``corrupt``, ``too_short``,
  ``bad_window`` (inverted or negative trim window), ``timeout`` (``timeout=`` seconds passed).

decord and PyAV are imported inside functions: importing this module stays light.
"""

from __future__ import annotations

import logging
import os
import re
import stat as stat_mod
import threading
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from ...errors import VideoError
from .cache import file_identity
from .sampling import check_params, output_size, select_frames

logger = logging.getLogger(__name__)

DECODERS = ("auto", "decord", "pyav")

# Decimal places kept of timestamps, in seconds: microseconds absorb decord's float32 rounding
# so that both decoders report the same numbers for the same file.
_TS_DIGITS = 6

# sws interpolation used when we resize after decoding: AREA averages pixels when shrinking,
# which keeps thin lines and small shapes that bilinear subsampling drops.
_INTERPOLATION = "AREA"


@attrs.frozen
class VideoInfo:
    """What a decoder found in a clip, without decoding its frames.

    ``timestamps`` are the frames' start times in seconds (presentation order); ``duration`` is
    where the last frame ends; ``fps`` is ``num_frames / duration``; ``width``/``height`` are the
    displayed size (after rotation); ``key_indices`` the key frames when the decoder reports them.
    """

    path: str
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    decoder: str
    codec: str | None = None
    timestamps: tuple[float, ...] = attrs.field(default=(), repr=False)
    key_indices: tuple[int, ...] | None = attrs.field(default=None, repr=False)


@attrs.frozen(eq=False)
class Frames:
    """Decoded frames of one clip (or of its trim window).

    - ``array``: uint8, T x H x W x 3 (RGB), read-only.
    - ``timestamps``: seconds from the trim start (what a prompt should say);
      ``source_timestamps``: seconds in the file. Both are frame start times.
    - ``indices``: frame indices in the file; ``native_fps``: the clip's rate;
      ``sampled_fps``: frames taken per second of the window.
    - ``duration``: length of the window in seconds (the whole clip when not trimmed);
      ``start``/``end``: the window in file seconds.
    - ``decoder``: ``"decord"`` or ``"pyav"``, the one that produced the frames.
    """

    array: np.ndarray = attrs.field(repr=False)
    timestamps: tuple[float, ...]
    source_timestamps: tuple[float, ...]
    indices: tuple[int, ...]
    native_fps: float
    sampled_fps: float
    decoder: str
    path: str
    duration: float
    start: float = 0.0
    end: float = 0.0

    @property
    def num_frames(self) -> int:
        return int(self.array.shape[0])

    @property
    def height(self) -> int:
        return int(self.array.shape[1])

    @property
    def width(self) -> int:
        return int(self.array.shape[2])


@attrs.frozen
class _Request:
    strategy: str
    max_frames: int | None
    fps: float
    resolution: tuple[int, int] | None
    max_pixels: int | None
    start: float | None
    end: float | None
    seed: Any


class _DecoderFailed(Exception):
    """One decoder could not do the job; ``reason`` is the VideoError reason it points to."""

    def __init__(self, decoder: str, reason: str, detail: str):
        super().__init__(f"{decoder}: {detail}")
        self.decoder = decoder
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- helpers


def _where(path: str, sample_id: str | None) -> str:
    return f"{path} (sample {sample_id})" if sample_id is not None else path


def check_file(path: str, sample_id: str | None = None) -> os.stat_result:
    """Stat ``path``; raise VideoError ``missing`` / ``empty`` / ``unsupported`` (not a file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoError(f"video file not found: {_where(path, sample_id)}; check `video` and "
                         f"`video_dir` in the annotation/config", path=path, sample_id=sample_id,
                         reason="missing") from None
    except OSError as exc:
        raise VideoError(f"cannot read video file {_where(path, sample_id)}: {exc}", path=path,
                         sample_id=sample_id, reason="missing") from None
    if not stat_mod.S_ISREG(st.st_mode):
        raise VideoError(f"not a regular file: {_where(path, sample_id)}", path=path,
                         sample_id=sample_id, reason="unsupported")
    if st.st_size == 0:
        raise VideoError(f"video file is empty (0 bytes): {_where(path, sample_id)}; the download "
                         f"or export probably failed", path=path, sample_id=sample_id,
                         reason="empty")
    return st


def container_family(path: str) -> str | None:
    """The container a file's first bytes announce (``isobmff``, ``matroska``, ``avi``,
    ``mpegts``, ``mpegps``, ``flv``, ``ogg``), or None when they announce no video container."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(189)
    except OSError:
        return None
    if len(head) < 12:
        return None
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return "isobmff"  # mp4, mov, m4v, 3gp
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"  # mkv, webm
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpegps"
    if len(head) == 189 and head[0] == head[188] == 0x47:  # a sync byte every 188 bytes
        return "mpegts"
    return None


#: Containers decord may decode under ``decoder="auto"``. In MPEG-TS / MPEG-PS and in AVI with
#: B-frames, decord 0.6 seeks to the wrong frame and returns it without an error; PyAV decodes
#: those (tests/test_video_decode.py shows both).
DECORD_CONTAINERS = frozenset({"isobmff", "matroska", "flv"})

# file identity -> whether decord's frame-accurate seek is exact for that file (see
# decord_seeks_exactly). Bounded: cleared when it grows past _SEEK_VERDICTS_MAX entries.
_seek_verdicts: dict[tuple, bool] = {}
_SEEK_VERDICTS_MAX = 200_000
_seek_lock = threading.Lock()


def _open_failure_reason(path: str) -> str:
    return "corrupt" if container_family(path) else "unsupported"


def _freeze(arr: np.ndarray) -> np.ndarray:
    """Read-only view of a read-only base: ``flags.writeable = True`` on it then fails."""
    arr = np.ascontiguousarray(arr)
    arr.flags.writeable = False
    view = arr.view()
    view.flags.writeable = False
    return view


def _resize_batch(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize T x H x W x 3 uint8 frames to ``size`` (h, w) with libswscale (through PyAV)."""
    h, w = size
    if arr.shape[1:3] == (h, w):
        return arr
    import av
    from av.video.reformatter import VideoReformatter

    # One reformatter for the batch: it keeps its sws context, which costs milliseconds to build.
    reformatter = VideoReformatter()
    out = np.empty((arr.shape[0], h, w, 3), dtype=np.uint8)
    for i, frame in enumerate(arr):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        out[i] = reformatter.reformat(vf, format="rgb24", width=w, height=h,
                                      interpolation=_INTERPOLATION).to_ndarray()
    return out


def _round_ts(values) -> tuple[float, ...]:
    return tuple(round(float(v), _TS_DIGITS) for v in values)


def _make_frames(arr: np.ndarray, starts: np.ndarray, duration: float, indices: list[int],
                 w0: float, w1: float, decoder: str, path: str) -> Frames:
    src = _round_ts(starts[indices])
    rel = tuple(max(0.0, round(t - w0, _TS_DIGITS)) for t in src)
    window = max(w1 - w0, 1e-9)
    return Frames(array=_freeze(arr), timestamps=rel, source_timestamps=src,
                  indices=tuple(int(i) for i in indices),
                  native_fps=len(starts) / duration if duration > 0 else 0.0,
                  sampled_fps=len(indices) / window, decoder=decoder, path=path,
                  duration=round(w1 - w0, _TS_DIGITS), start=round(w0, _TS_DIGITS),
                  end=round(w1, _TS_DIGITS))


# --------------------------------------------------------------------------- decord

_decord_module: Any = None


def _import_decord():
    """decord, or None where it is not installed (then PyAV does everything)."""
    global _decord_module
    if _decord_module is None:
        try:
            import decord
        except ImportError:  # optional extra: vtg-core[decord]
            _decord_module = False
        else:
            _decord_module = decord
    return _decord_module or None


def _decord_message(exc: BaseException) -> str:
    """decord's error text without its "[time] /build/path.cc:123:" prefixes."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", text)
    return text.rstrip(". ")


def _decord_reason(path: str, message: str) -> str:
    if "cannot find video stream" in message:
        return "unsupported"  # no video stream, or no decoder for its codec
    return _open_failure_reason(path)


def _decord_open(path: str, size: tuple[int, int] | None = None):
    decord = _import_decord()
    kwargs = {"height": size[0], "width": size[1]} if size else {}
    try:
        vr = decord.VideoReader(path, num_threads=0, **kwargs)
        stamps = np.asarray(vr.get_frame_timestamp(range(len(vr))), dtype=np.float64)
    except Exception as exc:  # decord raises RuntimeError, DECORDError, AssertionError
        msg = _decord_message(exc)
        raise _DecoderFailed("decord", _decord_reason(path, msg), f"cannot open: {msg}") from exc
    if stamps.ndim != 2 or len(stamps) == 0:
        raise _DecoderFailed("decord", "corrupt", "no frames indexed")
    return vr, np.round(stamps[:, 0], _TS_DIGITS), round(float(stamps[-1, 1]), _TS_DIGITS)


def _to_numpy(batch) -> np.ndarray:
    # decord's bridge may have been switched to torch by other code in the process.
    if hasattr(batch, "asnumpy"):
        return batch.asnumpy()
    if hasattr(batch, "numpy"):
        return batch.numpy()
    return np.asarray(batch)


def _decord_batch(vr, indices: list[int]) -> np.ndarray:
    try:
        arr = _to_numpy(vr.get_batch(np.asarray(indices, dtype=np.int64)))
    except Exception as exc:
        raise _DecoderFailed("decord", "corrupt", f"decoding failed: {_decord_message(exc)}") from exc
    if arr.ndim != 4 or arr.shape[0] != len(indices) or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        # Seen with some rotated clips: decord hands back 4 "channels" of a mis-strided picture.
        raise _DecoderFailed("decord", "corrupt", f"decoded batch has shape {arr.shape}")
    return arr


def _decord_load(path: str, req: _Request, sample_id: str | None) -> Frames:
    # A fixed resolution is scaled inside decord's decoder (no full-size copy); max_pixels needs
    # the native size first, so those frames are resized after decoding.
    vr, starts, duration = _decord_open(path, req.resolution)
    keys = vr.get_key_indices() if req.strategy == "keyframe" else None
    indices, w0, w1 = select_frames(starts, duration, key_indices=keys, strategy=req.strategy,
                                    max_frames=req.max_frames, fps=req.fps, start=req.start,
                                    end=req.end, seed=req.seed, path=path, sample_id=sample_id)
    try:
        arr = _decord_batch(vr, indices)
    except _DecoderFailed as exc:
        if req.resolution is None:
            raise
        # decord's scaler mis-sizes some output widths (16, 24, 48, 72, ...) and raises:
        # decode at the native size and scale here instead.
        logger.debug("decord could not scale %s to %s (%s); resizing after decoding", path,
                     req.resolution, exc.detail)
        vr, _, _ = _decord_open(path)
        arr = _resize_batch(_decord_batch(vr, indices), req.resolution)
    if req.resolution is None and req.max_pixels is not None:
        arr = _resize_batch(arr, output_size(arr.shape[1], arr.shape[2], max_pixels=req.max_pixels))
    return _make_frames(arr, starts, duration, indices, w0, w1, "decord", path)


def _decord_probe(path: str) -> VideoInfo:
    vr, starts, duration = _decord_open(path)
    try:
        first = _to_numpy(vr.next())
    except Exception as exc:
        raise _DecoderFailed("decord", "corrupt",
                             f"cannot decode the first frame: {_decord_message(exc)}") from exc
    if first.ndim != 3 or first.shape[-1] != 3:
        raise _DecoderFailed("decord", "corrupt", f"first frame has shape {first.shape}")
    n = len(starts)
    return VideoInfo(path=path, num_frames=n, fps=n / duration if duration > 0 else 0.0,
                     duration=duration, width=int(first.shape[1]), height=int(first.shape[0]),
                     decoder="decord", codec=None, timestamps=tuple(float(t) for t in starts),
                     key_indices=tuple(int(k) for k in vr.get_key_indices()))


# --------------------------------------------------------------------------- PyAV


def _pyav_open(path: str):
    import av

    try:
        return av.open(path)
    except Exception as exc:
        raise _DecoderFailed("pyav", _open_failure_reason(path), f"cannot open: {exc}") from exc


def _best_video_stream(container):
    """The video stream ffmpeg's av_find_best_stream (hence decord) picks, in the usual cases.

    Cover art (attached pictures) and streams for impaired viewers are skipped; among the rest
    the highest bit rate wins, then the most frames, then the first.
    """
    from av.stream import Disposition

    skip = Disposition.attached_pic | Disposition.hearing_impaired | Disposition.visual_impaired
    best, best_key = None, None
    for stream in container.streams.video:
        if stream.disposition & skip:
            continue
        key = (stream.codec_context.bit_rate or 0, stream.frames or 0)
        if best is None or key > best_key:
            best, best_key = stream, key
    if best is None:
        raise _DecoderFailed("pyav", "unsupported", "the file has no video stream")
    return best


@attrs.frozen
class _PyAVIndex:
    pts: list[int]              # presentation order (decode order when by_output_order)
    starts: np.ndarray          # seconds from stream start
    duration: float
    key_indices: tuple[int, ...]
    # True where packets carry no trustworthy pts (AVI stores none; ffmpeg's guesses are wrong
    # with B-frames): frames are then identified by their position in the decoder's output,
    # which is presentation order, decoding from the start of the file.
    by_output_order: bool = False


def _pyav_index(container, stream) -> _PyAVIndex:
    """Demux (no decoding) the stream's packets: per-frame pts, key frames, end of last frame."""
    by_output_order = "avi" in container.format.name.split(",")
    rows = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the flush packet at end of stream
            ts = packet.dts if by_output_order else packet.pts
            rows.append((ts if ts is not None else packet.dts, packet.duration or 0,
                         bool(packet.is_keyframe)))
    except Exception as exc:
        if not rows:
            raise _DecoderFailed("pyav", "corrupt", f"cannot read packets: {exc}") from exc
        # A truncated tail: index what was read; decoding will report missing frames.
        logger.debug("demuxing stopped early: %s", exc)
    if not rows:
        raise _DecoderFailed("pyav", "corrupt", "the video stream holds no frames")
    if any(r[0] is None for r in rows):
        # No timestamps at all (raw streams): number frames at the nominal rate.
        by_output_order = True
        step = max(1, round(1 / (float(stream.time_base) * float(stream.average_rate or 25))))
        rows = [(i * step, step, key) for i, (_, _, key) in enumerate(rows)]
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])
    pts = [rows[i][0] for i in order]
    tb = float(stream.time_base)
    origin = pts[0] if by_output_order or stream.start_time is None else stream.start_time
    starts = np.round((np.asarray(pts, dtype=np.float64) - origin) * tb, _TS_DIGITS)
    last = rows[order[-1]]
    last_dur = last[1]
    if not last_dur and len(pts) > 1:
        last_dur = int(np.median(np.diff(pts)))
    duration = round((pts[-1] + last_dur - origin) * tb, _TS_DIGITS)
    keys = tuple(pos for pos, i in enumerate(order) if rows[i][2])
    return _PyAVIndex(pts=pts, starts=starts, duration=duration, key_indices=keys,
                      by_output_order=by_output_order)


def _rotation_turns(frame) -> int:
    """Quarter turns (np.rot90 k) that show ``frame`` upright, from its display matrix."""
    rotation = getattr(frame, "rotation", 0) or 0
    return round(rotation / 90) % 4


def _frame_to_rgb(frame, size: tuple[int, int] | None, max_pixels: int | None,
                  reformatter) -> np.ndarray:
    """RGB array of ``frame`` as displayed, at the requested size.

    ``reformatter`` (an ``av.video.reformatter.VideoReformatter``) is shared across a clip's
    frames: ``frame.to_ndarray(format=...)`` builds a new sws context per frame, 10-20x slower.
    """
    turns = _rotation_turns(frame)
    shown_h, shown_w = (frame.width, frame.height) if turns % 2 else (frame.height, frame.width)
    out_h, out_w = output_size(shown_h, shown_w, resolution=size, max_pixels=max_pixels)
    if (out_h, out_w) == (shown_h, shown_w):
        rgb = reformatter.reformat(frame, format="rgb24")
    else:
        # Scale in the stored orientation, in the same sws pass as the colour conversion.
        coded_h, coded_w = (out_w, out_h) if turns % 2 else (out_h, out_w)
        rgb = reformatter.reformat(frame, format="rgb24", width=coded_w, height=coded_h,
                                   interpolation=_INTERPOLATION)
    arr = rgb.to_ndarray()
    return np.rot90(arr, turns) if turns else arr


def _pyav_decode(container, stream, index: _PyAVIndex, indices: list[int],
                 req: _Request | None) -> tuple[list[np.ndarray | None], str | None]:
    """Decode the frames at ``indices``; returns them (None where missing) and the error, if any."""
    from av.video.reformatter import VideoReformatter

    out: list[np.ndarray | None] = [None] * len(indices)
    size = req.resolution if req else None
    max_pixels = req.max_pixels if req else None
    reformatter = VideoReformatter()
    if index.by_output_order:
        return _pyav_decode_in_order(container, stream, indices, out,
                                     lambda f: _frame_to_rgb(f, size, max_pixels, reformatter))
    wanted = {index.pts[i]: slot for slot, i in enumerate(indices)}
    known = set(index.pts)
    last_pts = index.pts[max(indices)]
    first = min(indices)
    # Start from the key frame at or before the first wanted frame rather than the file start.
    seek_key = max((k for k in index.key_indices if k <= first), default=0)
    error = None
    found = 0
    for attempt in ("seek", "from_start"):
        try:
            if attempt == "seek":
                container.seek(index.pts[seek_key], stream=stream, backward=True, any_frame=False)
            else:
                # Timestamp seeks are approximate in some containers (MPEG-TS lands seconds
                # late); the start of the file is a place every demuxer can return to.
                container.seek(0)
        except Exception as exc:  # unseekable input: decode from where we are
            logger.debug("seek failed: %s", exc)
        overshot = False
        started = False
        try:
            for frame in container.decode(stream):
                pts = frame.pts
                if pts is None:
                    continue
                if not started:
                    started = True
                    if attempt == "seek" and (pts > index.pts[first] or pts not in known):
                        # The seek landed past our first frame, or the demuxer re-derived
                        # timestamps that match no indexed frame (MPEG-PS does): start over.
                        overshot = True
                        break
                slot = wanted.get(pts)
                if slot is not None and out[slot] is None:
                    out[slot] = _frame_to_rgb(frame, size, max_pixels, reformatter)
                    found += 1
                    if found == len(indices):
                        return out, None
                if pts > last_pts:
                    break
        except Exception as exc:  # av.error.InvalidDataError and friends: damaged data
            error = str(exc)
        # Frames missing without any decode error mean the seek misled us: decode from the start.
        if not (overshot or (error is None and attempt == "seek")):
            break
        if not overshot:
            logger.debug("%d wanted frames not seen after seeking; decoding from the start",
                         len(indices) - found)
        out, found = [None] * len(indices), 0
    return out, error


def _pyav_decode_in_order(container, stream, indices: list[int], out: list,
                          convert: Callable) -> tuple[list[np.ndarray | None], str | None]:
    """Decode from the start; the k-th frame out of the decoder is frame k."""
    wanted = {i: slot for slot, i in enumerate(indices)}
    last = max(indices)
    try:
        container.seek(0)
    except Exception as exc:
        logger.debug("seek failed: %s", exc)
    try:
        for k, frame in enumerate(container.decode(stream)):
            slot = wanted.get(k)
            if slot is not None:
                out[slot] = convert(frame)
            if k >= last:
                break
    except Exception as exc:
        return out, str(exc)
    return out, None


def _pyav_load(path: str, req: _Request, sample_id: str | None) -> Frames:
    container = _pyav_open(path)
    try:
        stream = _best_video_stream(container)
        stream.thread_type = "AUTO"
        index = _pyav_index(container, stream)
        indices, w0, w1 = select_frames(index.starts, index.duration, key_indices=index.key_indices,
                                        strategy=req.strategy, max_frames=req.max_frames,
                                        fps=req.fps, start=req.start, end=req.end, seed=req.seed,
                                        path=path, sample_id=sample_id)
        frames, error = _pyav_decode(container, stream, index, indices, req)
    finally:
        container.close()
    missing = [indices[i] for i, f in enumerate(frames) if f is None]
    if missing:
        got = len(indices) - len(missing)
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        detail = (f"decoded only {got} of {len(indices)} requested frames; frame {missing[0]} "
                  f"(t={index.starts[missing[0]]:.3f}s){more} did not decode")
        if error:
            detail += f": {error}"
        raise _DecoderFailed("pyav", "corrupt", detail)
    return _make_frames(np.stack(frames), index.starts, index.duration, indices, w0, w1, "pyav",
                        path)


def _pyav_probe(path: str) -> VideoInfo:
    container = _pyav_open(path)
    try:
        stream = _best_video_stream(container)
        codec = stream.codec_context.name
        index = _pyav_index(container, stream)
        frames, error = _pyav_decode(container, stream, index, [0], None)
    finally:
        container.close()
    if frames[0] is None:
        raise _DecoderFailed("pyav", "corrupt", f"cannot decode the first frame: {error}")
    n = len(index.pts)
    h, w = frames[0].shape[:2]
    return VideoInfo(path=path, num_frames=n, fps=n / index.duration if index.duration > 0 else 0.0,
                     duration=index.duration, width=int(w), height=int(h), decoder="pyav",
                     codec=codec, timestamps=tuple(float(t) for t in index.starts),
                     key_indices=index.key_indices)


# --------------------------------------------------------------------------- dispatch


def _keyframes_in_place(path: str) -> bool:
    """True when every key frame's position in decode order equals its position on screen.

    decord 0.6 counts key frames in decode order but seeks as if those counts were positions
    in presentation order. With open GOPs (x265's default, MPEG-2, MPEG-4 Part 2 B-frames,
    x264 ``open-gop``) the two differ, and decord hands back frames a few positions off,
    without any error. One demux pass (packet headers, no decoding) tells.
    """
    import av

    try:
        with av.open(path) as container:
            stream = _best_video_stream(container)
            rows = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
    except Exception:  # PyAV cannot read it either: let decord try, its errors are handled
        return True
    if any(pts is None for pts, _ in rows):
        return False
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])
    return all(pos == i for pos, i in enumerate(order) if rows[i][1])


def decord_seeks_exactly(path: str, st: os.stat_result | None = None) -> bool:
    """Whether decord returns the right frames for ``path`` (cached per file identity).

    The first call per file costs one PyAV demux pass; later calls in the process are free.
    """
    key = file_identity(path, st)
    verdict = _seek_verdicts.get(key)
    if verdict is None:
        verdict = _keyframes_in_place(path)
        with _seek_lock:
            if len(_seek_verdicts) >= _SEEK_VERDICTS_MAX:
                _seek_verdicts.clear()
            _seek_verdicts[key] = verdict
    return verdict


def _decoder_order(decoder: str, path: str | None = None, *, seeking: bool = False,
                   st: os.stat_result | None = None) -> list[str]:
    """Decoders to try, in order. ``seeking``: the job decodes frames past the first one."""
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
    if decoder != "auto":
        return [decoder]
    if path is None:
        return ["decord", "pyav"] if _import_decord() else ["pyav"]
    if (_import_decord() and container_family(path) in DECORD_CONTAINERS
            and (not seeking or decord_seeks_exactly(path, st))):
        return ["decord", "pyav"]
    return ["pyav"]


def _run(path: str, sample_id: str | None, decoders: list[str],
         jobs: dict[str, Callable[[], Any]], what: str) -> Any:
    """Try the decoders in order; the first success wins, failures become one VideoError."""
    failures: list[_DecoderFailed] = []
    for name in decoders:
        if name == "decord" and not _import_decord():
            raise VideoError(f"decoder='decord' but decord is not installed (pip install "
                             f"'vtg-core[decord]'), needed for {_where(path, sample_id)}",
                             path=path, sample_id=sample_id, reason="unsupported")
        try:
            return jobs[name]()
        except _DecoderFailed as exc:
            failures.append(exc)
            logger.info("%s could not %s %s: %s", name, what, _where(path, sample_id), exc.detail)
    # The last decoder tried (PyAV under "auto") classifies best: it tells "no decoder for this
    # codec" from "damaged data", where decord's open errors do not.
    reason = failures[-1].reason
    details = "; ".join(str(f).rstrip(". ") for f in failures)
    advice = ("the file is damaged: re-download or re-encode it, or drop the sample"
              if reason == "corrupt" else "it is not a video vtg can decode (check the file type)")
    raise VideoError(f"cannot {what} {_where(path, sample_id)} [{reason}]: {details}. {advice}",
                     path=path, sample_id=sample_id, reason=reason)


class _DecodeThreads:
    """Long-lived decode threads for :func:`_within`.

    Threads are reused, never made per call: PyAV (FFmpeg) keeps per-thread state, and decoding each
    clip on a fresh thread grew resident memory by about 65 KiB per clip (2,000 clips: +108%,
    benchmarks/bench_resilience.py). A thread stuck past its timeout cannot be stopped; the pool it
    belongs to is retired (its idle threads end) and later jobs go to a fresh pool.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: Any = None

    def submit(self, job: Callable[[], Any]) -> Any:
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1),
                                                thread_name_prefix="vtg-decode")
            return self._pool, self._pool.submit(job)

    def retire(self, pool: Any) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=False)


    def forget(self) -> None:
        """After ``fork`` (DataLoader workers): the parent's threads do not exist in the child."""
        self._lock = threading.Lock()
        self._pool = None


_threads = _DecodeThreads()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_threads.forget)


def _within(timeout: float | None, path: str, sample_id: str | None, what: str, job: Callable[[], Any]) -> Any:
    """``job()``, or VideoError ``timeout`` once it has run ``timeout`` seconds (None or 0: no limit).

    The job runs on a decode thread (:class:`_DecodeThreads`): neither decord nor FFmpeg can be
    interrupted, so a decoder stuck for good keeps its thread, but the caller gets its answer in
    time and goes on.
    """
    if not timeout:
        return job()
    from concurrent.futures import TimeoutError as FutureTimeout

    pool, future = _threads.submit(job)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        future.cancel()  # still queued: never runs; running: abandoned with its pool
        _threads.retire(pool)
        raise VideoError(f"cannot {what} {_where(path, sample_id)} [timeout]: no result after {timeout:g} s "
                         f"(video.decode_timeout); the file may sit on a stalled disk or be pathological",
                         path=path, sample_id=sample_id, reason="timeout") from None


def probe(path: str | os.PathLike, *, sample_id: str | None = None,
          decoder: str = "auto", timeout: float | None = None) -> VideoInfo:
    """Frame count, per-frame timestamps, duration, fps and displayed size of a clip.

    Reads the packet index and decodes only the first frame (for the displayed size).
    Raises :class:`VideoError` as :func:`load_frames` does (``timeout`` likewise).
    """
    path = os.fspath(path)
    check_file(path, sample_id)
    # Probing decodes only the first frame, with no seek: decord is exact there.
    return _within(timeout, path, sample_id, "probe", lambda: _run(
        path, sample_id, _decoder_order(decoder, path),
        {"decord": lambda: _decord_probe(path), "pyav": lambda: _pyav_probe(path)}, "probe"))


def load_frames(path: str | os.PathLike, *, strategy: str = "uniform", max_frames: int | None = 32,
                fps: float = 0.0, resolution: tuple[int, int] | None = None,
                max_pixels: int | None = None, start: float | None = None,
                end: float | None = None, seed: Any = None, sample_id: str | None = None,
                decoder: str = "auto", cache: Any = None, timeout: float | None = None) -> Frames:
    """Decode the frames ``strategy`` picks from ``path`` (see :mod:`.sampling`).

    ``resolution`` (h, w) resizes every frame to exactly that size; otherwise ``max_pixels``
    scales frames down to fit, keeping the aspect ratio. ``start``/``end`` trim the clip
    (seconds in the file). ``cache`` is a :class:`~vtg_core.data.video.cache.FrameCache`; a
    ``random`` strategy without ``seed`` bypasses it (each call should draw anew).

    Raises :class:`VideoError`: ``missing``, ``empty``, ``unsupported``, ``corrupt`` (both
    decoders failed, or fewer frames decoded than requested), ``too_short`` (``end`` past the
    decoded length), ``bad_window``, ``timeout`` (no result within ``timeout`` seconds, both
    decoders together; None or 0: no limit). ValueError for arguments no config can mean.
    """
    path = os.fspath(path)
    check_params(strategy, max_frames, fps)
    _decoder_order(decoder)
    if resolution is not None:
        resolution = (int(resolution[0]), int(resolution[1]))
        if min(resolution) < 1:
            raise ValueError(f"resolution must be positive (height, width), got {resolution}")
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    st = check_file(path, sample_id)
    req = _Request(strategy=strategy, max_frames=max_frames, fps=float(fps), resolution=resolution,
                   max_pixels=max_pixels, start=start, end=end, seed=seed)
    key = None
    if cache is not None and not (strategy == "random" and seed is None):
        key = cache.make_key(path, st, attrs.astuple(req) + (decoder,))
        hit = cache.get(key)
        if hit is not None:
            return hit if hit.path == path else attrs.evolve(hit, path=path)
    frames = _within(timeout, path, sample_id, "decode", lambda: _run(
        path, sample_id, _decoder_order(decoder, path, seeking=True, st=st),
        {"decord": lambda: _decord_load(path, req, sample_id), "pyav": lambda: _pyav_load(path, req, sample_id)},
        "decode"))
    if key is not None:
        cache.put(key, frames)
    return frames
