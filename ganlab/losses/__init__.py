"""Loss objects own both GAN objectives: ``d_loss(D, real, fake)`` and ``g_loss(D, real, fake)``.

A new loss is a new file here (``ganlab/losses/<name>.py`` with ``<Name>Loss``) plus
``conf/loss/<name>.yaml`` whose ``_target_`` names it by its module path; the training module,
this file and the tests never change. The names below are re-exported for scripts.
"""

from ganlab.losses.base import GANLoss, LabelNoise
from ganlab.losses.bce import BCELoss, NonSaturatingLoss
from ganlab.losses.hinge import HingeLoss
from ganlab.losses.lsgan import LeastSquaresLoss, LSGANLoss
from ganlab.losses.minimax import MinimaxLoss
from ganlab.losses.rasgan import RaSGANLoss
from ganlab.losses.rsgan import RSGANLoss
from ganlab.losses.siamese import SiameseLoss

__all__ = [
    "BCELoss",
    "GANLoss",
    "HingeLoss",
    "LSGANLoss",
    "LabelNoise",
    "LeastSquaresLoss",
    "MinimaxLoss",
    "NonSaturatingLoss",
    "RSGANLoss",
    "RaSGANLoss",
    "SiameseLoss",
]
