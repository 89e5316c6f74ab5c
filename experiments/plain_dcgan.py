"""The plain PyTorch DCGAN training script (pytorch/examples' dcgan/main.py: torchvision transforms
per sample, a DataLoader with workers, BCE, Adam 2e-4 (0.5, 0.999), ``vutils.save_image`` of the
samples), written for the same data and networks as ``experiment=quickstart_cpu``: Fashion-MNIST
32 px from the same IDX file, DCGAN G and D at ngf = ndf = 32 (ganlab's own network classes, which
import neither Lightning nor Hydra), batch 64, 2 loader workers. No config system, loggers,
checkpoints or callbacks: what ``experiments/startup.py`` compares ganlab's start-up and memory with.

    python experiments/plain_dcgan.py --iterations 600 --stamp /tmp/first_iteration
"""

from __future__ import annotations

import argparse
import gzip
import resource
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.utils.data
import torchvision.transforms as transforms
import torchvision.utils as vutils
from PIL import Image

from ganlab.models.dcgan import DCGANDiscriminator, DCGANGenerator


def read_images(root: Path) -> np.ndarray:
    """An IDX file (train-images-idx3-ubyte[.gz] -> uint8 (N, 1, 28, 28)) or a folder of PNGs
    (-> uint8 (N, 3, H, W), transparency on white)."""
    idx = [p for p in (root / "train-images-idx3-ubyte.gz", root / "train-images-idx3-ubyte") if p.is_file()]
    if idx:
        data = (gzip.open if idx[0].suffix == ".gz" else open)(idx[0], "rb").read()
        n, h, w = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, h, w)

    def rgb(path: Path) -> np.ndarray:
        img = Image.open(path).convert("RGBA")
        return np.asarray(Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB"))

    return np.stack([rgb(p) for p in sorted(root.rglob("*.png"))]).transpose(0, 3, 1, 2)


class Images(torch.utils.data.Dataset):
    """uint8 images through the example's transforms: Resize, ToTensor, Normalize(0.5, 0.5)."""

    def __init__(self, images: np.ndarray, size: int) -> None:
        c = images.shape[1]
        self.images = images
        self.transform = transforms.Compose(
            [transforms.Resize(size), transforms.ToTensor(), transforms.Normalize((0.5,) * c, (0.5,) * c)]
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        a = self.images[i].transpose(1, 2, 0)
        return self.transform(Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/fashion-mnist")
    p.add_argument("--iterations", type=int, default=600)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--stamp", help="write time.time() here when the first iteration starts")
    p.add_argument("--samples", help="write a grid of samples here at the end")
    args = p.parse_args()
    torch.manual_seed(42)
    dataset = Images(read_images(Path(args.data)), args.image_size)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                         num_workers=args.workers, drop_last=True)  # fmt: skip
    G = DCGANGenerator(args.image_size, args.channels, nz=100, ngf=args.width)
    D = DCGANDiscriminator(args.image_size, args.channels, ndf=args.width)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    it = 0
    while it < args.iterations:
        for real in loader:
            if it == 0 and args.stamp:
                Path(args.stamp).write_text(repr(time.time()))
            ones, zeros = torch.ones(real.shape[0]), torch.zeros(real.shape[0])
            fake = G(torch.randn(real.shape[0], 100))
            d_loss = bce(D(real), ones) + bce(D(fake.detach()), zeros)
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = bce(D(fake), ones)
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            it += 1
            if it == args.iterations:
                break
    if args.samples:
        with torch.no_grad():
            vutils.save_image(G(torch.randn(64, 100)), args.samples, normalize=True)
    print(f"peak_rss_mib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")


if __name__ == "__main__":
    main()
