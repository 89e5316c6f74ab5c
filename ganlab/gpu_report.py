"""``python -m ganlab.gpu_report``: the GPU benchmark's command (``ganlab.bench.gpu``)."""

from ganlab.bench.gpu import main

if __name__ == "__main__":
    main()
