"""An independent judge for Fashion-MNIST GANs: a small CNN classifier trained on the real training
set (no GAN ever trains against it), exported as a TorchScript feature network that ganlab's own
evaluation reads (``ganlab-evaluate feature=experiments/fashion_judge.pt``):

- "cFID": Fréchet distance in the classifier's penultimate features (128-d), the classifier-based
  FID of the GAN literature on MNIST-like data, where the ImageNet InceptionV3 sees little;
  ``experiments/quality_curve.py`` checks that it ranks checkpoints as InceptionV3's FID does;
- class fidelity: the share of a conditional generator's images classified as the class asked for.

    python experiments/fashion_judge.py [--epochs 3] [--out experiments/fashion_judge.pt]
    python experiments/fashion_judge.py --references   # cFID of real images: the scale to read

Input: ganlab's FID protocol (uint8 images, grey replicated to RGB, resized to ``input_size``,
``(x - 128) / 128``); output (features (B, 128), logits (B, 10)).
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]


def read_idx(path: Path) -> np.ndarray:
    data = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(root: Path, split: str) -> tuple[Tensor, Tensor]:
    """uint8 images resized to 32 (N, 1, 32, 32) as ganlab's data module makes them, and labels."""
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(next(root.glob(f"{prefix}-images-idx3-ubyte*")))
    labels = read_idx(next(root.glob(f"{prefix}-labels-idx1-ubyte*")))
    x = torch.from_numpy(images.copy()).float()[:, None]
    x = F.interpolate(x, size=32, mode="bicubic", antialias=True, align_corners=False).clamp(0, 255).round()
    return x.to(torch.uint8), torch.from_numpy(labels.astype(np.int64))


class Judge(nn.Module):
    """(B, 3, 32, 32) scaled to [-1, 1] -> (features (B, 128), logits (B, 10))."""

    def __init__(self) -> None:
        super().__init__()
        # read by ganlab's feature loader (kept as attributes of the TorchScript module)
        self.num_features, self.num_logits, self.input_size = 128, 10, 32

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.MaxPool2d(2))  # fmt: skip

        self.body = nn.Sequential(
            block(1, 32), block(32, 64), block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.features = nn.Sequential(nn.Linear(128, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features(self.body(x.mean(dim=1, keepdim=True)))  # grey: the RGB copies averaged
        return f, self.head(f)


def scale(images: Tensor) -> Tensor:
    return (images.float() - 128) / 128


def references(judge: Path, data: Path, n: int = 2000) -> dict[str, float]:
    """cFID of real images against the training set's statistics (10k images), through ganlab's
    own metrics: what the numbers of a generator are read against (for real test images also
    precision and recall, k = 3 as ``ganlab-evaluate``). ``n`` test images as they
    are; blurred (3x3 box, about 1 px); with half the classes (0-4) missing."""
    from ganlab.metrics import GANMetrics, load_feature_net

    metrics = GANMetrics(load_feature_net(str(judge)), inception_score=False, precision_recall=True)
    x, _ = load(data, "train")
    metrics.set_real(metrics.real_stats_from(x[:10_000].expand(-1, 3, -1, -1).split(500), 10_000))
    xt, yt = load(data, "test")
    blurred = (
        F.avg_pool2d(xt.float(), 3, stride=1, padding=1, count_include_pad=False).round().to(torch.uint8)
    )
    sets = {"real (test) vs train": xt[:n], "real blurred ~1 px": blurred[:n],
            "real, classes 5-9 only": xt[yt >= 5][:n]}  # fmt: skip
    result = {}
    for name, images in sets.items():
        metrics.reset_fake()
        metrics.add_fake(images.expand(-1, 3, -1, -1))
        r = metrics.compute()
        result[name] = round(r["fid"], 2)
        if name.startswith("real (test)"):  # real images' own level, which a generator's are read against
            result["real (test) vs train: precision"] = round(r["precision"], 3)
            result["real (test) vs train: recall"] = round(r["recall"], 3)
    return result


CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
           "ankle-boot"]  # fmt: skip


def test_accuracy_per_class(judge: Path, data: Path) -> dict[str, float]:
    """The judge's own accuracy on each class of the 10k real test images: the ceiling a
    generator's class accuracy is read against (real shirts pass as shirts 0.68 of the time)."""
    net = torch.jit.load(str(judge)).eval()
    x, y = load(data, "test")
    with torch.no_grad():
        pred = torch.cat([net(scale(b).expand(-1, 3, -1, -1))[1].argmax(1) for b in x.split(1000)])
    return {name: round((pred[y == c] == c).float().mean().item(), 3) for c, name in enumerate(CLASSES)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "data" / "fashion-mnist"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "experiments" / "fashion_judge.pt"))
    ap.add_argument(
        "--references", action="store_true", help="only the real images: reference cFIDs, per-class accuracy"
    )
    args = ap.parse_args()
    if args.references:
        report_file = Path(args.out).with_suffix(".json")
        report = json.loads(report_file.read_text())
        report["references_n2000"] = references(Path(args.out), Path(args.data))
        report["test_accuracy_per_class"] = test_accuracy_per_class(Path(args.out), Path(args.data))
        report_file.write_text(json.dumps(report, indent=2))
        print(json.dumps({k: report[k] for k in ("references_n2000", "test_accuracy_per_class")}))
        return
    torch.manual_seed(0)
    x, y = load(Path(args.data), "train")
    xt, yt = load(Path(args.data), "test")
    net = Judge()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    t0 = time.time()
    for epoch in range(args.epochs):
        net.train()
        for idx in torch.randperm(len(x)).split(128):
            batch = scale(x[idx])
            flip = torch.rand(len(idx)) < 0.5  # horizontal flips: garments are left-right symmetric
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
            loss = F.cross_entropy(net(batch.expand(-1, 3, -1, -1))[1], y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(scale(b).expand(-1, 3, -1, -1))[1].argmax(1) for b in xt.split(1000)])
        acc = (pred == yt).float().mean().item()
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f} ({time.time() - t0:.0f} s)", flush=True)
    scripted = torch.jit.script(net.eval())
    scripted.save(args.out)
    report = {"test_accuracy": acc, "epochs": args.epochs, "seconds": round(time.time() - t0)}
    Path(args.out).with_suffix(".json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
