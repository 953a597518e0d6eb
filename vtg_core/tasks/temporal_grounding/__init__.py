"""Temporal grounding: given a video and a sentence, answer when it happens (start, end seconds).

Modules: ``schema`` (annotation rows -> samples), ``prompts`` (conversations and SFT targets),
``parser`` (the one reader of model answers), ``metrics`` (R1@k, mIoU), ``temporal_tokens``
(``<0>``..``<N-1>`` vocabulary tokens), ``task`` (the :class:`TemporalGroundingTask` object).
Nothing here imports torch at module level.
"""
