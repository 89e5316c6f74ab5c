"""Loss objects own both GAN objectives: ``d_loss(D, real, fake)`` and ``g_loss(D, real, fake)``.

A new loss is a new file here plus a ``conf/loss/*.yaml``; the training module never changes.
"""

from ganlab.losses.base import GANLoss, LabelNoise
from ganlab.losses.hinge import HingeLoss
from ganlab.losses.least_squares import LeastSquaresLoss
from ganlab.losses.relativistic import RaSGANLoss, RSGANLoss
from ganlab.losses.siamese import SiameseLoss
from ganlab.losses.standard import MinimaxLoss, NonSaturatingLoss

__all__ = [
    "GANLoss",
    "HingeLoss",
    "LabelNoise",
    "LeastSquaresLoss",
    "MinimaxLoss",
    "NonSaturatingLoss",
    "RSGANLoss",
    "RaSGANLoss",
    "SiameseLoss",
]
