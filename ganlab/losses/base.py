"""The loss interface and the label-noise options shared by the BCE-family losses.

Sign conventions: D outputs *logits* ``l``; ``l > 0`` means "real" and sigmoid(l) is D's
probability that its input is real. Every objective returned here is *minimised*.

Conditional GANs: the training module passes the minibatch's labels y (B,); D is called as
``D(x, y)`` for real and generated images alike (the fakes are generated for the same labels),
so every objective below is class-conditional unchanged. A D with an auxiliary classifier
returns (B, 1 + K): column 0 the adversarial logit, the rest class logits for ACGAN's term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.losses.step import LazyTerm, Step

Stats = dict[str, Tensor]


@dataclass
class LabelNoise:
    """Label smoothing and flips for D's targets (Salimans et al. 2016, "Improved Techniques for
    Training GANs", section 3.4; flips from Chintala et al.'s "ganhacks").

    ``real_smoothing`` e1: real target 1 - e1 (one-sided smoothing when ``fake_smoothing`` is 0).
    ``fake_smoothing`` e2: fake target e2 (two-sided smoothing; Salimans et al. advise against
    it, so it is off by default). ``flip_prob``: each sample's real/fake targets are swapped
    with this probability, in D's objective only.
    """

    real_smoothing: float = 0.0
    fake_smoothing: float = 0.0
    flip_prob: float = 0.0

    def __post_init__(self) -> None:
        for name in ("real_smoothing", "fake_smoothing", "flip_prob"):
            v = getattr(self, name)
            if not 0.0 <= v < 0.5:
                raise ValueError(f"loss.{name} must be in [0, 0.5), got {v}")

    @property
    def active(self) -> bool:
        return self.real_smoothing > 0 or self.fake_smoothing > 0 or self.flip_prob > 0

    def targets(self, n: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """Per-sample D targets (real_t, fake_t), each (n,), in ``like``'s dtype and device."""
        real_t = torch.full((n,), 1.0 - self.real_smoothing, dtype=like.dtype, device=like.device)
        fake_t = torch.full((n,), self.fake_smoothing, dtype=like.dtype, device=like.device)
        if self.flip_prob > 0:
            flip = torch.rand(n, device=like.device) < self.flip_prob
            real_t, fake_t = torch.where(flip, fake_t, real_t), torch.where(flip, real_t, fake_t)
        return real_t, fake_t


def bce(logits: Tensor, target: Tensor | float) -> Tensor:
    """Mean binary cross-entropy on logits: -[t log s(l) + (1-t) log(1-s(l))]. Autocast-safe."""
    if not isinstance(target, Tensor):
        target = torch.full_like(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def split_logits(out: Tensor) -> tuple[Tensor, Tensor | None]:
    """D's output -> (adversarial logits (B,), class logits (B, K) or None): (B, 1 + K) outputs
    come from a D with an ACGAN head (``ganlab.models.conditional``); (B, 1) is a plain D's
    logits in the official StyleGAN2 shape."""
    if out.dim() == 2:
        return out[:, 0], (out[:, 1:] if out.shape[1] > 1 else None)
    return out, None


def call_d(D: Callable[..., Tensor], x: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``D(x)``, or ``D(x, labels)`` in a conditional run, split into (logits, class logits)."""
    return split_logits(D(x) if labels is None else D(x, labels))


def logit_stats(real_logits: Tensor, fake_logits: Tensor) -> Stats:
    """Detached monitoring values: mean D(x), mean D(G(z)), D's accuracy on each side and its mean
    logit on each side (``d_logit_real``, ``d_logit_fake``: > 0 means judged real).
    Computed on the (2, B) stack [l_real, -l_fake], so that a handful of kernels serve all six:
    mean sigmoid(-l) = 1 - mean sigmoid(l), and "fake judged fake" is l_fake < 0, i.e. -l_fake > 0."""
    x = torch.stack([real_logits.detach().float().reshape(-1), -fake_logits.detach().float().reshape(-1)])
    prob = torch.sigmoid(x).mean(dim=1)  # (2,): D(x), 1 - D(G(z))
    acc = (x > 0).float().mean(dim=1)  # (2,): accuracy on real, on fake
    logit = x.mean(dim=1)  # (2,): mean l_real, -mean l_fake
    return {"d_real": prob[0], "d_fake": 1 - prob[1], "d_acc_real": acc[0], "d_acc_fake": acc[1],
            "d_logit_real": logit[0], "d_logit_fake": -logit[1]}  # fmt: skip


def same_label_mean(d: Tensor, labels: Tensor | None = None) -> Tensor:
    """The mean of a (B, B) matrix of pair distances (zero diagonal) over the distinct pairs: of
    the same label with ``labels`` (B,), all pairs when no two share one (a batch no larger than
    the number of classes) or without labels. A 0-d tensor, no host sync."""
    b = d.shape[0]
    overall = d.sum() / max(b * (b - 1), 1)
    if labels is None:
        return overall
    same = (labels[:, None] == labels[None, :]).to(d.dtype)  # (B, B), the diagonal included
    pairs = same.sum() - b
    return torch.where(pairs > 0, (d * same).sum() / pairs.clamp(min=1), overall)


def mode_seeking_term(fake: Tensor, z: Tensor, labels: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """MSGAN's mode-seeking term (Mao et al., "Mode Seeking Generative Adversarial Networks for
    Diverse Image Synthesis", CVPR 2019, eq. 3): 1 / (d_I / d_z + eps), with d_I the mean absolute
    pixel difference between two fakes (B, C, H, W) and d_z that of their latents (B, nz). G
    minimises it: two latents must not give the same image, the remedy for G ignoring z (mode
    collapse within a class). MSGAN compares two fakes of the same condition; here every pair of
    the batch with the same label (every pair when unconditional), so the fakes need no drawing
    of their own."""
    x, w = fake.float().flatten(1), z.float().flatten(1)
    d_img = same_label_mean(torch.cdist(x, x, p=1) / x.shape[1], labels)
    d_z = same_label_mean(torch.cdist(w, w, p=1) / w.shape[1], labels)
    return 1.0 / (d_img / d_z + eps)


class GANLoss:
    """Base class. Subclasses implement the two objectives on logits (``d_objective``,
    ``g_objective``), or override ``d_loss(D, step)`` / ``g_loss(D, step)`` whole.

    ``d_loss(D, step)``: D's objective on a ``Step`` whose ``fake`` is detached from G's graph.
    ``g_loss(D, step)``: G's objective; gradients reach G through ``step.fake``.
    Both return (scalar loss, stats); stats are detached tensors (no host sync).
    ``pairwise`` is True when D must be a pair discriminator ``D(a, b)``.
    ``separate_lazy``: the due lazy terms take an optimizer step of their own after the main
    one (stylegan2-ada's layout; the optimizers' rates and betas are corrected for the extra
    steps, ``GANOptimizers``), instead of joining the main objective.
    """

    pairwise = False
    separate_lazy = False

    def __init__(
        self,
        real_smoothing: float = 0.0,
        fake_smoothing: float = 0.0,
        flip_prob: float = 0.0,
        r1_gamma: float = 0.0,
        r1_every: int = 16,
        acgan_weight: float = 0.0,
        mode_seeking: float = 0.0,
    ):
        """``r1_gamma``: weight of the R1 penalty gamma/2 E||grad_x D(x)||^2 on real data
        (Mescheder et al., "Which Training Methods for GANs do actually Converge?", ICML 2018);
        ``r1_every``: lazy regularisation, computed every n-th D update and scaled by n
        (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020).
        ``acgan_weight``: weight of ACGAN's class term (Odena et al. 2017): cross-entropy of D's
        auxiliary classifier on real and generated images in D's objective, on generated images
        in G's; needs a D with ``aux_classifier`` and labelled data.
        ``mode_seeking``: weight of MSGAN's term in G's objective (``mode_seeking_term``)."""
        self.noise = LabelNoise(real_smoothing, fake_smoothing, flip_prob)
        if r1_gamma < 0 or r1_every < 1:
            raise ValueError(f"loss.r1_gamma must be >= 0 and loss.r1_every >= 1, got {r1_gamma}, {r1_every}")
        if acgan_weight < 0:
            raise ValueError(f"loss.acgan_weight must be >= 0, got {acgan_weight}")
        if mode_seeking < 0:
            raise ValueError(f"loss.mode_seeking must be >= 0, got {mode_seeking}")
        self.r1_gamma, self.r1_every, self.acgan_weight = r1_gamma, r1_every, acgan_weight
        self.mode_seeking = mode_seeking

    # -- objectives on logits (override) ------------------------------------------------------
    def d_objective(self, real_logits: Tensor, fake_logits: Tensor, real_t: Tensor, fake_t: Tensor) -> Tensor:
        raise NotImplementedError

    def g_objective(self, real_logits: Tensor | None, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    #: whether ``g_objective`` needs D(real) (relativistic losses); computed without grad.
    g_needs_real = False

    # -- what the schedule and the training module call ------------------------------------------
    def lazy_terms(self) -> tuple[LazyTerm, ...]:
        """The lazy regularisers this loss computes; the schedule's plan decides when each is due."""
        return (LazyTerm("r1", "d", self.r1_every),) if self.r1_gamma > 0 else ()

    def check_networks(self, G: Callable[..., Tensor], D: Callable[..., Tensor]) -> str | None:
        """What this loss needs of the networks and they lack, as a user-facing line (checked at
        build time, ``ganlab.run.checks.check_model``); None: nothing."""
        return None

    def generate(self, G: Callable[..., Tensor], z: Tensor, labels: Tensor | None) -> Tensor:
        """The fakes of an update: ``G(z)`` or ``G(z, labels)``. A loss that regularises through
        generation (StyleGAN2's style mixing) overrides it."""
        return G(z) if labels is None else G(z, labels)

    def d_loss(self, D: Callable[..., Tensor], step: Step) -> tuple[Tensor, Stats]:
        """The main objective (phase "main" or "both") and the due lazy terms ("reg" or "both")."""
        real, labels = step.real, step.labels
        do_r1 = step.due("r1")
        if do_r1:
            real = real.detach().requires_grad_(True)
        real_logits, real_cls = call_d(D, real, labels)
        loss, stats = real_logits.new_zeros((), dtype=torch.float32), {}
        if step.main:
            fake_logits, fake_cls = call_d(D, step.fake, labels)
            real_t, fake_t = self.noise.targets(real_logits.shape[0], real_logits)
            loss = self.d_objective(real_logits, fake_logits, real_t, fake_t)
            stats = logit_stats(real_logits, fake_logits)
            if self.acgan_weight > 0:
                aux = F.cross_entropy(real_cls.float(), labels) + F.cross_entropy(fake_cls.float(), labels)
                loss = loss + self.acgan_weight * aux
                stats["d_class_acc"] = (real_cls.detach().argmax(dim=1) == labels).float().mean()
        if do_r1:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)  # (B, C, H, W)
            r1 = grad.float().square().sum(dim=(1, 2, 3)).mean()
            loss = loss + (self.r1_gamma / 2) * r1 * self.r1_every
            stats["r1"] = r1.detach()
        return loss, stats

    def g_loss(self, D: Callable[..., Tensor], step: Step) -> tuple[Tensor, Stats]:
        """``step.z`` (B, nz): the latents ``step.fake`` was drawn from, for the mode-seeking term."""
        fake, labels = step.fake, step.labels
        real_logits = None
        if self.g_needs_real:
            with torch.no_grad():  # D(x) does not depend on G: no graph needed
                real_logits, _ = call_d(D, step.real, labels)
        fake_logits, fake_cls = call_d(D, fake, labels)
        loss = self.g_objective(real_logits, fake_logits)
        if self.acgan_weight > 0:  # G wants its images classified as the class asked for
            loss = loss + self.acgan_weight * F.cross_entropy(fake_cls.float(), labels)
        if self.mode_seeking > 0:
            if step.z is None:
                raise ValueError("loss.mode_seeking needs the latents: Step(..., z=z)")
            loss = loss + self.mode_seeking * mode_seeking_term(fake, step.z, labels)
        return loss, {}

    def state_dict(self) -> dict[str, Any]:
        """State a resume needs beside the networks' (running means of a regulariser); none here."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.noise})"
