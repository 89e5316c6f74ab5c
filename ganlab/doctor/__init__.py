"""The training doctor: names common GAN failures while they happen, with the evidence, the
likely cause and the overrides to type (``callbacks.doctor``; README, "Training doctor").

probe.py       device-side signals measured inside the training step (no host sync)
conditions.py  the failures: start/end tests with hysteresis, evidence, cause, fix
record.py      doctor.jsonl read back: episodes, the diagnosis table of ganlab-report

The Lightning callback that reads the signals at log ticks and reports is
``ganlab.callbacks.doctor.Doctor``.
"""
