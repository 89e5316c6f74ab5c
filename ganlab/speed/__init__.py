"""How the iteration runs fast: channels_last, ``torch.compile`` and direct updates
(``fast_paths.py``), one CUDA graph per iteration (``cuda_graph.py``) and a profiler that costs
nothing when off (``profiler.py``). (G and D as separate DDP modules: ``ganlab.training.ddp``;
the check that the iteration never syncs the host: ``tests/host_sync.py``.)"""
