"""The generated data set's columns and prompts, exactly as seed 004 names them.

Every row holds every column (``None`` where a column belongs to the other sample type): a data
set built from mixed rows then never loses a column to schema inference from the first row,
which is the bug seed 004's troubleshooting section describes.
"""

from __future__ import annotations

from typing import Any

PREFERENCE = "preference"
PROGRESS = "progress"
SIMILARITY = "similarity"
SAMPLE_TYPES = (PREFERENCE, PROGRESS, SIMILARITY)  # the three slots of sample_type_ratio

REWIND = "rewind"
FORWARD_PROGRESS = "forward_progress"
QUALITY_LABEL = "quality_label"
PREFERENCE_STRATEGIES = (REWIND, FORWARD_PROGRESS, QUALITY_LABEL)
PROGRESS_STRATEGIES = (FORWARD_PROGRESS, REWIND)

PREFERENCE_PROMPT = ("Given these two robot videos, which one makes the most progress towards solving the task, "
                     "Video 1 or 2? Format your answer as: ANS: 1/2\n\nTask: {task}")
PROGRESS_PROMPT = ("Given the task, assign an integer-valued progress score from 0 to 100 for the robot in the "
                   "video, where 0 means the task has not started and 100 means it is complete. Format your "
                   "answer as: ANS: <score>\n\nTask: {task}")

COMMON_FIELDS = ("sample_type", "prompt", "answer", "task", "data_source", "data_gen_strategy", "resample_attempts")
PREFERENCE_FIELDS = ("first_npz_path", "second_npz_path", "first_frame_indices", "second_frame_indices",
                     "first_frames_shape", "second_frames_shape", "chosen_is_first")
PROGRESS_FIELDS = ("npz_path", "frame_indices", "frames_shape", "target_progress")
ALL_FIELDS = COMMON_FIELDS + PREFERENCE_FIELDS + PROGRESS_FIELDS


def features() -> Any:
    """The ``datasets.Features`` of a generated data set (fixed, never inferred)."""
    from datasets import Features, Sequence, Value

    ints = Sequence(Value("int64"))
    return Features({
        "sample_type": Value("string"), "prompt": Value("string"), "answer": Value("string"),
        "task": Value("string"), "data_source": Value("string"), "data_gen_strategy": Value("string"),
        "resample_attempts": Value("int64"),
        "first_npz_path": Value("string"), "second_npz_path": Value("string"),
        "first_frame_indices": ints, "second_frame_indices": ints,
        "first_frames_shape": ints, "second_frames_shape": ints, "chosen_is_first": Value("bool"),
        "npz_path": Value("string"), "frame_indices": ints, "frames_shape": ints,
        "target_progress": Sequence(Value("float64")),
    })


def empty_row() -> dict[str, Any]:
    return dict.fromkeys(ALL_FIELDS)
