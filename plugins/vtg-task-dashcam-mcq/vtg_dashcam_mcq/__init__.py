"""vtg-task-dashcam-mcq: dashcam multiple-choice video QA (Road Buddy, seed 003) for vtg.

Registers (see :mod:`.plugin`): the ``dashcam_mcq`` task and the rewards ``mcq_accuracy`` and
``mcq_format``. Importing this package imports nothing heavy; decoders and torch load on use.
"""

__version__ = "0.1.0"
