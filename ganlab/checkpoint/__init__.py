"""Checkpoints: the format of ``checkpoint["ganlab"]`` and the search for the newest intact
checkpoint (``format.py``), atomic writes (``io.py``), a checkpoint's generator outside training
(``generator.py``), and what callbacks ask of the checkpoint callback (``saver.py``)."""
