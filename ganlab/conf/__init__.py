"""Hydra configs of ganlab (a package, so that Hydra finds them as ``pkg://ganlab.conf`` once installed)."""
