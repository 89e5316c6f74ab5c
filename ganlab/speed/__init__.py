"""How the iteration runs fast: channels_last, ``torch.compile`` and direct updates
(``fast_paths.py``), one CUDA graph per iteration (``cuda_graph.py``), G and D as separate DDP
modules (``ddp.py``), a profiler that costs nothing when off (``profiler.py``), and the CPU
check that the iteration never syncs the host (``host_sync.py``)."""
