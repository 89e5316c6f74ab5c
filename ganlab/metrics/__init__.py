"""FID / KID / IS through torchmetrics, with an offline feature network and cached real statistics."""

from ganlab.metrics.features import FIDFeatures, load_feature_net, to_uint8
from ganlab.metrics.gan_metrics import GANMetrics, metric_suffix

__all__ = ["FIDFeatures", "GANMetrics", "load_feature_net", "metric_suffix", "to_uint8"]
