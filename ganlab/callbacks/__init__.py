"""The Lightning callbacks, one file per key of ``conf/callbacks`` (``callbacks.<key>``): guard,
run_length, checkpoint, samples, evaluation, progress, preemption, doctor, report; and
``run_state``, which ``ganlab.train`` always adds (it writes ``checkpoint["ganlab"]``).

The classes are importable from here too: ``_target_: ganlab.callbacks.GANCheckpoint`` (0.1's
paths) keeps working.
"""

from ganlab.callbacks.checkpoint import GANCheckpoint
from ganlab.callbacks.evaluation import FIDEvaluation
from ganlab.callbacks.report import RunReport
from ganlab.callbacks.samples import SampleGrid

__all__ = ["FIDEvaluation", "GANCheckpoint", "RunReport", "SampleGrid"]
