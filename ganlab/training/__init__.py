"""The GAN iteration and its techniques: the LightningModule that schedules the updates
(``module.py``), what runs when and for how long (``schedule.py``), the module built from
``model.*`` (``build.py``), optimizers and their schedules (``optim.py``), the EMA generator
(``ema.py``), the latent prior (``latent.py``), the on-device statistics (``step_stats.py``),
the counters in GAN units (``counters.py``) and the per-rank random streams (``rng.py``)."""
