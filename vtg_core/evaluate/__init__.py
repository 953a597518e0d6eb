"""Evaluation: generate answers for a data set, read them with the task's parser, score them.

- :mod:`.runner`: batched greedy generation and scoring (shared with ``vtg train``'s held-out eval);
- :mod:`.pipeline`: ``vtg eval`` from start to finish (:func:`~.pipeline.run_evaluation`);
- :mod:`.manifest`: everything that decides the numbers, written as ``manifest.json``;
- :mod:`.distributed`: strided shards per rank, merged in order on rank 0;
- :mod:`.predictions`: ``predictions.jsonl``, and scoring stored ``pred`` fields without a model;
- :mod:`.breakdown`: metrics per metadata group, quantile bins for numeric fields;
- :mod:`.loading`: a checkpoint's saved config, task and model.

Importing this package imports nothing heavy.
"""
