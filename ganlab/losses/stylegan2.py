"""StyleGAN2's loss (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR
2020; the settings of StyleGAN2-ADA, Karras et al., NeurIPS 2020): the non-saturating logistic
loss, R1 on the reals and the path-length penalty, both lazy (sec. 3.1-3.2), and style mixing
(Karras et al., "A Style-Based Generator Architecture for GANs", CVPR 2019, sec. 3.1).

Sign conventions: D outputs logits ``l`` (B, 1), ``l > 0`` meaning "real"; every objective is
minimised. D: softplus(-l_real) + softplus(l_fake) (BCE on logits, ``BCELoss``); G, the
non-saturating form: softplus(-l_fake). R1 (D's lazy term): gamma/2 E||grad_x D(x)||^2 on the
reals. Path length (G's lazy term, eq. 4): E_{w, y} (||J_w^T y||_2 - a)^2 with y ~ N(0, I) / sqrt(H W)
an image-space direction, J_w = d G(w) / d w and ``a`` the running mean of the lengths
(``pl_mean``): G is pushed toward a mapping w -> image whose local stretch is the same
everywhere. Each lazy term is computed every n-th update of its network and scaled by n.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ganlab.losses.base import Stats
from ganlab.losses.bce import BCELoss
from ganlab.losses.step import LazyTerm, Step

#: the keyword arguments of ``StyleGAN2Generator.forward`` this loss uses, when a G takes them
STYLEGAN_KWARGS = ("style_mixing_prob", "return_ws")


def _unwrapped(G: Callable[..., Any]) -> Any:
    """The network behind a DDP wrapper (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    net = getattr(G, "module", G)
    return getattr(net, "_orig_mod", net)


class StyleGAN2Loss(BCELoss):
    """``loss=stylegan2``: BCE on logits with lazy R1 and the path-length penalty, as the official
    StyleGAN2Loss of NVlabs/stylegan2-ada-pytorch computes them.

    Each due lazy term takes an optimizer step of its own after the main one (``separate_lazy``;
    the official loop's Dreg/Greg phases; the rates and betas corrected by
    ``GANOptimizers.correct_for_lazy``). The path-length phase generates again, from the first
    B // ``pl_batch_shrink`` latents and labels of the G update (the official draws latents of its
    own for that phase; both are fresh N(0, I) draws). ``pl_mean`` is a 0-d float32 tensor on the
    device, updated in place (a CUDA graph that captured it keeps working) and checkpointed
    through ``state_dict``. Nothing here reads a device value on the host.
    """

    separate_lazy = True

    def __init__(
        self,
        real_smoothing: float = 0.0,
        fake_smoothing: float = 0.0,
        flip_prob: float = 0.0,
        r1_gamma: float = 10.0,
        r1_every: int = 16,
        acgan_weight: float = 0.0,
        mode_seeking: float = 0.0,
        pl_weight: float = 2.0,
        pl_every: int = 4,
        pl_decay: float = 0.01,
        pl_batch_shrink: int = 2,
        style_mixing_prob: float = 0.9,
    ):
        """The ``GANLoss`` options (R1 weight 10 every 16th D update by default), and:
        ``pl_weight``: weight of the path-length penalty (0: off); ``pl_every``: computed every
        n-th G update and scaled by n; ``pl_decay``: the running mean's step toward each batch's
        mean length; ``pl_batch_shrink``: the penalty's batch is B // this; ``style_mixing_prob``:
        chance that a batch's fakes take their later ws from a second latent (0: off)."""
        super().__init__(
            real_smoothing, fake_smoothing, flip_prob, r1_gamma, r1_every, acgan_weight, mode_seeking
        )
        if pl_weight < 0:
            raise ValueError(f"loss.pl_weight must be >= 0, got {pl_weight}")
        if int(pl_every) != pl_every or pl_every < 1:
            raise ValueError(f"loss.pl_every must be an integer >= 1, got {pl_every}")
        if not 0.0 <= pl_decay <= 1.0:
            raise ValueError(f"loss.pl_decay must be in [0, 1], got {pl_decay}")
        if int(pl_batch_shrink) != pl_batch_shrink or pl_batch_shrink < 1:
            raise ValueError(f"loss.pl_batch_shrink must be an integer >= 1, got {pl_batch_shrink}")
        if not 0.0 <= style_mixing_prob <= 1.0:
            raise ValueError(f"loss.style_mixing_prob must be in [0, 1], got {style_mixing_prob}")
        self.pl_weight, self.pl_every, self.pl_decay = float(pl_weight), int(pl_every), float(pl_decay)
        self.pl_batch_shrink, self.style_mixing_prob = int(pl_batch_shrink), float(style_mixing_prob)
        self.pl_mean: Tensor | None = None  # 0-d float32, created on G's device at the first penalty
        self._takes: dict[type, frozenset[str]] = {}  # per generator class: which STYLEGAN_KWARGS it takes

    # -- the schedule and generation ------------------------------------------------------------
    def lazy_terms(self) -> tuple[LazyTerm, ...]:
        """R1 on D (``r1_every``) when ``r1_gamma`` > 0, the path length on G (``pl_every``) when
        ``pl_weight`` > 0."""
        pl = (LazyTerm("pl", "g", self.pl_every),) if self.pl_weight > 0 else ()
        return (*super().lazy_terms(), *pl)

    def _accepts(self, G: Callable[..., Any]) -> frozenset[str]:
        """Which of ``STYLEGAN_KWARGS`` G's forward takes: read once per class from its signature
        (no call, no device work), through DDP's and torch.compile's wrappers."""
        cls = type(_unwrapped(G))
        if cls not in self._takes:
            forward = getattr(cls, "forward", None)
            params = inspect.signature(forward).parameters if forward is not None else {}
            self._takes[cls] = frozenset(k for k in STYLEGAN_KWARGS if k in params)
        return self._takes[cls]

    def _mixing(self, G: Callable[..., Any]) -> dict[str, float]:
        """G's style-mixing keyword, or none (mixing off, or a G without it)."""
        if self.style_mixing_prob > 0 and "style_mixing_prob" in self._accepts(G):
            return {"style_mixing_prob": self.style_mixing_prob}
        return {}

    def check_networks(self, G: Callable[..., Tensor], D: Callable[..., Tensor]) -> str | None:
        takes = self._accepts(G)
        if self.pl_weight > 0 and "return_ws" not in takes:
            return (
                f"the path-length penalty needs a style-based G that returns its ws, not "
                f"{type(_unwrapped(G)).__name__} (loss.pl_weight): use model=stylegan2, or set "
                "loss.pl_weight=0"
            )
        if self.style_mixing_prob > 0 and "style_mixing_prob" not in takes:
            return (
                f"style mixing needs a style-based G, not {type(_unwrapped(G)).__name__} "
                "(loss.style_mixing_prob): use model=stylegan2, or set loss.style_mixing_prob=0"
            )
        return None

    def generate(self, G: Callable[..., Tensor], z: Tensor, labels: Tensor | None) -> Tensor:
        """``G(z, labels, style_mixing_prob=p)`` for a StyleGAN2 generator (noise_mode random, as
        the official training), the base behaviour for any other G."""
        mixing = self._mixing(G)
        if not mixing:
            return super().generate(G, z, labels)
        return G(z, labels, **mixing)

    # -- G's objective ----------------------------------------------------------------------------
    def g_loss(self, D: Callable[..., Tensor], step: Step) -> tuple[Tensor, Stats]:
        """The non-saturating objective when ``step.main``; the path-length penalty when
        ``step.due("pl")`` (phase "reg": the penalty alone, D not called)."""
        loss, stats = None, {}
        if step.main:
            loss, stats = super().g_loss(D, step)
            stats = dict(stats)
        if step.due("pl"):
            penalty, pl_stats = self.path_length_penalty(step)
            loss = penalty if loss is None else loss + penalty
            stats.update(pl_stats)
        if loss is None:  # phase "reg" with nothing due: the module never asks for it
            loss = step.fake.new_zeros((), dtype=torch.float32)
        return loss, stats

    def _pl_mean_on(self, device: torch.device) -> Tensor:
        """The running mean on ``device``: created (0, the official start) at the first use, moved
        once after a checkpoint's CPU copy was loaded; otherwise the same tensor every time."""
        if self.pl_mean is None:
            self.pl_mean = torch.zeros((), dtype=torch.float32, device=device)
        elif self.pl_mean.device != device:
            self.pl_mean = self.pl_mean.to(device)
        return self.pl_mean

    def path_length_penalty(self, step: Step) -> tuple[Tensor, Stats]:
        """The lazy path-length term (Karras et al. 2020, sec. 3.2, eq. 4) as the official Greg phase
        computes it, scaled by ``pl_weight * pl_every``. Needs ``step.G`` that returns its ws."""
        G, z = step.G, step.z
        if G is None or z is None or "return_ws" not in self._accepts(G):
            raise ValueError(
                "loss.pl_weight > 0 needs a generator that returns its ws (model=stylegan2) and the "
                "step's G and z; set loss.pl_weight=0 for other generators"
            )
        n = max(z.shape[0] // self.pl_batch_shrink, 1)
        labels = step.labels[:n] if step.labels is not None else None
        img, ws = G(z[:n], labels, return_ws=True, **self._mixing(G))  # (n, C, H, W), (n, num_ws, w_dim)
        # y ~ N(0, I) / sqrt(H W): the lengths do not grow with the resolution
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)  # J_w^T y: like ws
        lengths = grads.float().square().sum(2).mean(1).sqrt()  # (n,): over w_dim, averaged over ws
        pl_mean = self._pl_mean_on(lengths.device)
        mean = pl_mean.lerp(lengths.mean(), self.pl_decay)  # a <- a + decay (E[length] - a)
        pl_mean.copy_(mean.detach())  # in place: no new tensor, no host read
        # As the official: the penalty is taken against the updated mean, with its graph.
        penalty = (lengths - mean).square().mean()
        # img[:, 0, 0, 0] * 0: every output of G in the graph (DDP waits for all of G's gradients)
        loss = penalty * (self.pl_weight * self.pl_every) + img[:, 0, 0, 0].float().sum() * 0
        stats = {
            "pl_penalty": penalty.detach(),
            "pl_length": lengths.detach().mean(),
            "pl_mean": mean.detach(),
        }
        return loss, stats

    # -- checkpoint --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``pl_mean``: a CPU copy (None before the first penalty); read at a checkpoint only."""
        return {"pl_mean": None if self.pl_mean is None else self.pl_mean.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``pl_mean``, in place when it already exists (a captured CUDA graph holds it);
        None is the official start, 0."""
        value = state.get("pl_mean")
        if self.pl_mean is None:
            if value is not None:
                self.pl_mean = torch.as_tensor(value, dtype=torch.float32).detach().clone().reshape(())
            return
        with torch.no_grad():
            self.pl_mean.copy_(torch.as_tensor(0.0 if value is None else value).reshape(()))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.noise}, r1_gamma={self.r1_gamma}, r1_every={self.r1_every}, "
            f"pl_weight={self.pl_weight}, pl_every={self.pl_every}, pl_decay={self.pl_decay}, "
            f"pl_batch_shrink={self.pl_batch_shrink}, style_mixing_prob={self.style_mixing_prob})"
        )
