"""The ``robot_vqa`` task: train and evaluate on a data set written by ``vtg robot-vqa generate``.

A sample's frames are loaded lazily (:meth:`RobotVQATask.load_frames`, called by the core's one
frame path for SFT, GRPO and evaluation) from its ``.npz`` files at the stored frame indices. The
conversation shows each clip as a video (default) or, with ``use_multi_image``, every frame as
an image; the target is the bare answer (``"1"``, ``"2"`` or ``"75"``), so SFT learns only the
answer tokens (the core's encoder masks everything before them).

Options (``task_options``): ``use_multi_image`` (False), ``fps`` (2.0: the rate the frames are
presented at, for the timestamps Qwen3-VL prints), ``npz_root`` (where relative npz paths resolve;
default: the ``npz_root`` in the data set's ``generation_config.json``, else the data set folder),
``system_prompt`` (None), ``cache_size`` (8 npz arrays kept per process).
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from vtg_core.data.annotations import InvalidPolicy, LoadReport, PolicyMode, RowReader, collect, load_rows
from vtg_core.data.sample import Location, Sample
from vtg_core.errors import ConfigError, DataError
from vtg_core.tasks.base import ParseResult, RowProblem

from . import metrics as _metrics
from .parser import parse_answer
from .schema import PREFERENCE, PROGRESS
from .trajectories import is_dataset_dir, npz_array_name

# ASCII digits only, at most three: str.isdigit() admits '²' and 5,000-digit strings, which int() refuses.
_PROGRESS_ANSWER = re.compile(r"[0-9]{1,3}")

_DEFAULTS: dict[str, Any] = {"use_multi_image": False, "fps": 2.0, "npz_root": None, "system_prompt": None,
                             "cache_size": 8}


class RobotVQATask:
    """Preference ("which video makes more progress?") and progress ("score 0-100") questions on robot clips."""

    name = "robot_vqa"
    default_rewards = ({"name": "robot_preference", "weight": 1.0}, {"name": "robot_progress", "weight": 1.0})
    metric_names = _metrics.METRIC_NAMES
    default_max_new_tokens = 8  # "ANS: 100" at most

    def __init__(self, **options: Any):
        unknown = sorted(set(options) - set(_DEFAULTS))
        if unknown:
            raise ConfigError(f"robot_vqa: unknown option(s) {unknown}; known: {sorted(_DEFAULTS)}")
        opts = {**_DEFAULTS, **options}
        if not isinstance(opts["use_multi_image"], bool):
            raise ConfigError(f"robot_vqa option 'use_multi_image' must be true or false, got {opts['use_multi_image']!r}")
        fps = opts["fps"]
        if isinstance(fps, bool) or not isinstance(fps, int | float) or not fps > 0:
            raise ConfigError(f"robot_vqa option 'fps' must be a number > 0, got {fps!r}")
        size = opts["cache_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ConfigError(f"robot_vqa option 'cache_size' must be an integer >= 0, got {size!r}")
        self.use_multi_image = opts["use_multi_image"]
        self.fps = float(fps)
        self.npz_root = opts["npz_root"]
        self.system_prompt = opts["system_prompt"]
        self.cache_size = size
        self._arrays: OrderedDict[str, np.ndarray] = OrderedDict()

    def __repr__(self) -> str:
        return f"RobotVQATask(use_multi_image={self.use_multi_image}, fps={self.fps})"

    # -- data ---------------------------------------------------------------------------------
    def _root_for(self, path: str, video_dir: str | None) -> str:
        """Where relative npz paths resolve: the ``npz_root`` option, the data set's recorded root,
        ``video_dir`` (``--video-dir``), else the data set's folder."""
        if self.npz_root:
            return os.fspath(self.npz_root)
        folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        config = os.path.join(folder, "generation_config.json")
        if os.path.isfile(config):
            with open(config, encoding="utf-8") as fh:
                root = json.load(fh).get("npz_root")
            if root:
                return root
        return os.fspath(video_dir) if video_dir else folder

    def validate_row(self, where: Location, row: dict[str, Any], *, root: str,
                     found: set[str] | None = None) -> Sample | list[RowProblem]:
        """One generated row -> sample, or every problem of the row (field by field).

        ``found`` remembers npz files already seen to exist (a data set refers to each many times).
        """
        r = RowReader(row, where)
        kind = r.text("sample_type")
        prompt = r.text("prompt")
        answer = r.text("answer")
        if kind is not None and kind not in (PREFERENCE, PROGRESS):
            r.problem("sample_type", f"must be 'preference' or 'progress', got {kind!r}", "out_of_range")
            kind = None
        clips = []
        names = ([("first_npz_path", "first_frame_indices", "first_frames_shape"),
                  ("second_npz_path", "second_frame_indices", "second_frames_shape")] if kind == PREFERENCE
                 else [("npz_path", "frame_indices", "frames_shape")] if kind == PROGRESS else [])
        for path_key, idx_key, shape_key in names:
            npz = r.text(path_key)
            indices = r.get(idx_key, list)
            shape = r.get(shape_key, list)
            if indices is not None and (not indices or not all(isinstance(i, int) and not isinstance(i, bool)
                                                               for i in indices)):
                r.problem(idx_key, "must be a non-empty list of integers", "wrong_type")
                indices = None
            if shape is not None and (len(shape) != 4 or shape[-1] != 3):
                r.problem(shape_key, f"must be [T, H, W, 3], got {shape}", "wrong_type")
                shape = None
            if indices is not None and shape is not None and not all(0 <= i < shape[0] for i in indices):
                r.problem(idx_key, f"indices must be within 0..{shape[0] - 1} (frames_shape {shape})", "out_of_range")
            if npz is not None:
                resolved = npz if os.path.isabs(npz) else os.path.join(root, npz)
                if found is not None and resolved in found:
                    pass
                elif not os.path.isfile(resolved):
                    r.problem(path_key, f"npz file not found: {resolved}", "missing_file")
                elif found is not None:
                    found.add(resolved)
                clips.append({"npz": resolved, "indices": indices, "shape": shape})
        if answer is not None and kind == PREFERENCE and answer not in ("1", "2"):
            r.problem("answer", f"a preference answer must be '1' or '2', got {answer!r}", "out_of_range")
        if answer is not None and kind == PROGRESS and not (_PROGRESS_ANSWER.fullmatch(answer) and int(answer) <= 100):
            r.problem("answer", f"a progress answer must be an integer 0-100, got {answer!r}", "out_of_range")
        if r.problems:
            return r.problems
        ident = f"{where.index if where.index is not None else where.line}"
        metadata = {k: row.get(k) for k in ("sample_type", "data_gen_strategy", "task", "data_source")}
        if kind == PROGRESS:
            metadata["target_progress"] = row.get("target_progress")
        return Sample(id=ident, video=clips[0]["npz"], duration=None, query=prompt, answer=answer,
                      inputs={"sample_type": kind, "clips": clips}, metadata=metadata, source=where)

    def load_with_report(self, path: str | os.PathLike[str], *, video_dir: str | None = None,
                         policy: InvalidPolicy | PolicyMode | None = "skip",
                         max_invalid_fraction: float | None = None) -> tuple[list[Sample], LoadReport]:
        """Read a generated data set folder (or a JSONL of the same rows) and apply the invalid-row policy."""
        path = os.fspath(path)
        root = self._root_for(path, video_dir)
        if os.path.isdir(path):
            if not is_dataset_dir(path):
                raise DataError(f"{path} is a folder but not a data set written by `vtg robot-vqa generate` "
                                "(no state.json)")
            from datasets import load_from_disk

            dataset = load_from_disk(path)
            rows = ((Location(path, index=i), row) for i, row in enumerate(dataset))
        else:
            rows = load_rows(path)
        found: set[str] = set()
        return collect(rows, lambda where, row: self.validate_row(where, row, root=root, found=found), policy,
                       path=path, max_invalid_fraction=max_invalid_fraction)

    def load(self, path: str | os.PathLike[str], *, video_dir: str | None = None,
             policy: InvalidPolicy | PolicyMode | None = "skip",
             max_invalid_fraction: float | None = None) -> tuple[list[Sample], list[RowProblem]]:
        samples, report = self.load_with_report(path, video_dir=video_dir, policy=policy,
                                                max_invalid_fraction=max_invalid_fraction)
        return samples, report.problems

    def make_demo_data(self, directory: str | os.PathLike[str], *, seed: int) -> dict[str, Any]:
        """``vtg train --task robot_vqa`` with no data: synthetic pushes, then a train and a val data set."""
        from .demo import make_demo_data

        return make_demo_data(directory, seed=seed)

    # -- frames -------------------------------------------------------------------------------
    def _array(self, path: str) -> np.ndarray:
        cached = self._arrays.get(path)
        if cached is not None:
            self._arrays.move_to_end(path)
            return cached
        try:
            with np.load(path) as npz:
                array = npz[npz_array_name(path)]
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read frames from {path}: {exc}") from exc
        if self.cache_size:
            self._arrays[path] = array
            while len(self._arrays) > self.cache_size:
                self._arrays.popitem(last=False)
        return array

    def load_frames(self, sample: Sample, video_cfg: Any = None, *, cache: Any = None, seed: int | None = None
                    ) -> list[Any]:
        """The sample's frames: one ``Frames`` per clip (video mode) or one HWC frame per image part."""
        from vtg_core.data.video import Frames

        out: list[Any] = []
        for clip in sample.inputs["clips"]:
            array = self._array(clip["npz"])
            indices = clip["indices"]
            if array.ndim != 4 or max(indices) >= len(array):
                raise DataError(f"sample {sample.id} ({sample.source}): {clip['npz']} has shape {array.shape}, "
                                f"but the sample asks for frames {indices}")
            frames = _resize(array[indices], video_cfg)
            if self.use_multi_image:
                out.extend(frames)
                continue
            times = tuple(i / self.fps for i in range(len(indices)))
            out.append(Frames(array=frames, timestamps=times, source_timestamps=times, indices=tuple(indices),
                              native_fps=self.fps, sampled_fps=self.fps, decoder="npz", path=clip["npz"],
                              duration=len(indices) / self.fps, start=0.0, end=len(indices) / self.fps))
        return out

    # -- prompting ----------------------------------------------------------------------------
    def build_messages(self, sample: Sample, *, rng: random.Random | None = None) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        clips = sample.inputs["clips"]
        for n, clip in enumerate(clips, start=1):
            if len(clips) > 1:
                content.append({"type": "text", "text": f"Video {n}:"})
            if self.use_multi_image:
                content.extend({"type": "image"} for _ in clip["indices"])
            else:
                content.append({"type": "video"})
        content.append({"type": "text", "text": sample.query})
        messages = [{"role": "user", "content": content}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": self.system_prompt}]})
        return messages

    def target(self, sample: Sample) -> str:
        if sample.answer is None:
            raise DataError(f"sample {sample.id} ({sample.source}) has no answer to train on")
        return str(sample.answer)

    # -- reading answers and scoring ------------------------------------------------------------
    def parse(self, text: str, sample: Sample) -> ParseResult:
        return parse_answer(text, sample.inputs["sample_type"])

    def score(self, parsed: ParseResult, sample: Sample) -> dict[str, float]:
        return _metrics.sample_scores(parsed, sample.inputs["sample_type"], sample.answer)

    def aggregate(self, scores: Sequence[dict[str, float]], parsed: Iterable[ParseResult]) -> dict[str, float]:
        return _metrics.aggregate(scores, parsed)

    def reward_columns(self, sample: Sample) -> dict[str, Any]:
        """What the GRPO rewards read: the sample type and the ground-truth answer."""
        return {"sample_type": sample.inputs["sample_type"], "answer": sample.answer}


def _resize(frames: np.ndarray, video_cfg: Any) -> np.ndarray:
    """Frames at the config's ``video.resolution`` when one is set (and no pixel budget), else as stored."""
    res = getattr(video_cfg, "resolution", None)
    if res is None or getattr(video_cfg, "max_pixels", None):
        return frames
    size = (int(res.height), int(res.width))
    if frames.shape[1:3] == size:
        return frames
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((size[1], size[0]), Image.BILINEAR)) for f in frames])
