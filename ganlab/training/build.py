"""``model.*`` settings -> a ``GANModule`` and its parts: what ``conf/model/*.yaml`` instantiates
(``_target_: ganlab.training.build.gan_module``), so the settings users type stay flat (``model.nz``,
``model.ema_half_life_kimg``, ...) while the module receives one object per technique."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ganlab.augment import Augment
from ganlab.losses.base import GANLoss
from ganlab.models.stylegan2 import load_network_pkl
from ganlab.speed.fast_paths import Speed
from ganlab.training.ema import EMA
from ganlab.training.latent import FixedNoise, LatentPrior
from ganlab.training.module import GANModule, Schedule
from ganlab.training.optim import GANOptimizers


def gan_module(
    generator: nn.Module,
    discriminator: nn.Module,
    loss: GANLoss,
    optimizer: GANOptimizers,
    nz: int = 100,
    latent: str = "normal",
    d_steps_per_g: int = 1,
    d_every: int = 1,
    g_every: int = 1,
    d_skip_accuracy: float | None = None,
    n_fixed: int = 64,
    seed: int = 0,
    ema_half_life_kimg: float | None = None,
    ema_rampup: float | None = 0.05,
    d_augment: Sequence[Augment] = (),
    channels_last: bool = False,
    compile: bool = False,
    cuda_graph: bool = False,
    num_classes: int = 0,
    class_names: Sequence[str] | None = None,
    init: str | None = None,
) -> GANModule:
    """See ``GANModule``, ``Schedule``, ``LatentPrior``, ``FixedNoise``, ``EMA`` and ``Speed`` for
    what each setting does; ``num_classes``/``class_names`` are set by ``ganlab.train`` from the
    data of a conditional run (``data.conditional=true``). ``init``: an official StyleGAN2-ADA
    network pickle whose G, D and G_ema weights the networks start from (transfer learning; the
    run's configuration already holds their architecture, ``ganlab.train.run_config``)."""
    names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for model.num_classes={num_classes}")
    start = load_network_pkl(init, key="model.init") if init else {}
    for net, name in ((generator, "G"), (discriminator, "D")):
        if name in start or (name == "G" and "G_ema" in start):
            net.load_state_dict(start.get(name, start.get("G_ema")).state_dict())
    module = GANModule(
        generator,
        discriminator,
        loss,
        optimizer,
        schedule=Schedule(int(d_steps_per_g), int(d_every), int(g_every), d_skip_accuracy),
        prior=LatentPrior(nz, latent),
        fixed_noise=FixedNoise(n_fixed, seed),
        ema=EMA(ema_half_life_kimg, ema_rampup) if ema_half_life_kimg else None,
        d_augment=d_augment,
        speed=Speed(channels_last, compile, cuda_graph),
        class_names=names or None,
    )
    if module.G_ema is not None and "G_ema" in start:
        module.G_ema.load_state_dict(start["G_ema"].state_dict())
    return module
