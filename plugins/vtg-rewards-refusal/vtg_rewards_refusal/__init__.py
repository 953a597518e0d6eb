"""vtg-rewards-refusal: refusal-aware temporal grounding with query correction (RA-RFT) for vtg.

Registers (see :mod:`.plugin`): the ``refusal_grounding`` task, the rewards ``format``,
``refuse_iou`` and ``explain_correction``, and the ``refusal_curriculum`` sampler. Importing this
package imports nothing heavy; torch and sentence-transformers load when a component is used.
"""

__version__ = "0.1.0"
