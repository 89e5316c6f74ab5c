"""The training doctor: names common GAN failures while they happen, with the evidence, the
likely cause and the overrides to type (``callbacks.doctor``; README, "Training doctor").

probe.py       device-side signals measured inside the training step (no host sync)
base.py        what a condition is and declares (ticks, references, action), its hysteresis
conditions.py  the six failures: tests, evidence, cause, fix, the autopilot's action
fixes.py       what the fixes are made of: the run's configuration, overrides as typed
record.py      doctor.jsonl read back: episodes, the diagnosis table of ganlab-report

The Lightning callback that reads the signals from the run's history at log ticks and reports is
``ganlab.callbacks.doctor.Doctor``; the conditions and their thresholds are listed in
``conf/callbacks/default.yaml``.
"""

from ganlab.doctor.base import Ago, Condition, Tracker, WarmupMedian
from ganlab.doctor.probe import Probe

__all__ = ["Ago", "Condition", "Probe", "Tracker", "WarmupMedian"]
