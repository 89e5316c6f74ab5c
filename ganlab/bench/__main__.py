"""``python -m ganlab.bench [overrides]``: the training path's throughput (``training.py``)."""

from ganlab.bench.training import main

main()
