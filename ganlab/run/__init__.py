"""A run as a whole, around the training: its settings checked (``checks.py``) and resolved
(``resolvers.py``), its directory and lock (``directory.py``, ``hydra_callbacks.py``), the
resume's comparison of configurations (``resume.py``), SLURM (``slurm.py``), what it prints
first (``console.py``) and the report of a finished run (``report.py``)."""
