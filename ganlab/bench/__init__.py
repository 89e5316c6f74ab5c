"""The benchmarks: ``python -m ganlab.bench`` (``ganlab-bench``, ``make bench``; ``training.py``):
ganlab's training path against the plain PyTorch step, on any device; ``python -m
ganlab.gpu_report`` (``gpu.py``, its cases in ``gpu_cases.py``): the GPU figures, DCGAN and
StyleGAN2, in one table."""

from ganlab.bench.training import ReferenceStep, Throughput, bench, main

__all__ = ["ReferenceStep", "Throughput", "bench", "main"]
