"""Read an official StyleGAN2-ADA network pickle (a training snapshot, ``network-snapshot-*.pkl``,
or a published pretrained network) into ganlab's networks, without running any of its code.

Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
(NVlabs/stylegan2-ada-pytorch); Karras et al., "Analyzing and Improving the Image Quality of
StyleGAN", CVPR 2020. An independent reader: no official code is imported or executed.

An official pickle is ``dict(G=..., D=..., G_ema=..., augment_pipe=..., training_set_kwargs=...)``
whose networks are ``torch_utils.persistence`` objects: each carries the source code of its module
as text, and plain ``pickle.load`` imports and runs that text. Here the unpickler resolves only an
allowlist of globals, each mapped to a function of this module that builds data: a persistent
object becomes a ``PersistentRecord`` (its source kept as an inert string), a storage is read with
``torch.load(weights_only=True)``, a tensor is rebuilt from it. Any other global (``os.system``,
``builtins.eval``, a class of another module) refuses the file. The networks are then built from
the records' class names and stored constructor arguments (``_init_args``, ``_init_kwargs``), and
their tensors (the records' ``_parameters`` and ``_buffers``, nested by ``_modules``) loaded with
strict name checking.
"""

from __future__ import annotations

import collections
import inspect
import io
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganlab.models.stylegan2.networks import StyleGAN2Discriminator, StyleGAN2Generator
from ganlab.utils.errors import CheckpointError

HOW = (
    "pass an official StyleGAN2-ADA network pickle (a network-snapshot-*.pkl, or a published pretrained one)"
)
NETWORKS: dict[str, type[nn.Module]] = {
    "Generator": StyleGAN2Generator,
    "Discriminator": StyleGAN2Discriminator,
}
ENTRIES = {"G": "Generator", "D": "Discriminator", "G_ema": "Generator"}  # snapshot key -> official class


class _Refused(Exception):
    """What makes a pickle unusable; ``load_network_pkl`` adds the file, the setting and the fix."""


@dataclass(frozen=True)
class PersistentRecord:
    """A ``torch_utils.persistence`` object as plain data: ``module_src`` is text, never run."""

    type: str
    version: int
    module_src: str
    class_name: str
    state: dict

    def __setstate__(self, state: Any) -> None:
        raise _Refused("the pickle gives a persistent object extra state")


class _Kwargs(dict):
    """``dnnlib.util.EasyDict``, the official kwargs' dict subclass, as a dict."""

    def __setstate__(self, state: Any) -> None:
        if state:
            raise _Refused("the pickle gives a dnnlib.util.EasyDict extra state")


def _record(meta: Any) -> PersistentRecord:
    fields = {"type": str, "version": int, "module_src": str, "class_name": str, "state": dict}
    if not isinstance(meta, dict) or any(not isinstance(meta.get(k), t) for k, t in fields.items()):
        raise _Refused(
            "the pickle has a persistent object without its type, version, source, class name and state"
        )
    if meta["type"] != "class":
        raise _Refused(f"the pickle has a persistent object of type {meta['type']!r}, not 'class'")
    return PersistentRecord(**{k: meta[k] for k in fields})


def _storage(data: Any) -> Any:
    """A storage saved with ``torch.save`` inside the pickle, read as weights only."""
    if not isinstance(data, bytes):
        raise _Refused("the pickle has a storage that is not bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage's deprecation notice
        storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.TypedStorage):
        raise _Refused(f"the pickle has a storage that loads as a {type(storage).__name__}")
    return storage


def _tensor(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    shape_ok = all(isinstance(v, (tuple, list)) and all(type(i) is int for i in v) for v in (size, stride))
    if not isinstance(storage, torch.TypedStorage) or type(offset) is not int or not shape_ok:
        raise _Refused("the pickle has a tensor without a storage, offset, size and stride")
    if backward_hooks:
        raise _Refused("the pickle has a tensor with backward hooks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch._utils._rebuild_tensor_v2(
            storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict()
        )


def _parameter(
    data: Any, requires_grad: Any = False, backward_hooks: Any = None, state: Any = None
) -> torch.Tensor:
    """A parameter as its tensor: the values are what gets loaded."""
    if not isinstance(data, torch.Tensor) or backward_hooks:
        raise _Refused("the pickle has a parameter that is not a plain tensor")
    return data


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    dtype = np.dtype(spec) if isinstance(spec, str) and len(spec) <= 8 else None
    if dtype is None or dtype.kind not in "biufc":
        raise _Refused(f"the pickle has a numpy dtype {spec!r} that is not a number type")
    return dtype


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """A numpy number (the official layers keep some gains as numpy floats)."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or not isinstance(data, bytes):
        raise _Refused("the pickle has a numpy scalar that is not a number")
    if len(data) != dtype.itemsize:
        raise _Refused("the pickle has a numpy scalar of the wrong size")
    return np.frombuffer(data, dtype=dtype)[0]


# The globals of the official pickles (those of the oracle files, written by torch 2 and numpy 2)
# and their older spellings (numpy.core; protocols 2 and 3 write a set as set(list); official
# snapshots keep their kwargs as dnnlib.util.EasyDict), each mapped to a function here that
# makes data; nothing else resolves.
ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _record,
    ("torch.storage", "_load_from_bytes"): _storage,
    ("torch._utils", "_rebuild_tensor_v2"): _tensor,
    ("torch._utils", "_rebuild_parameter"): _parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): _Kwargs,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise _Refused(
                f"refused: the pickle asks for {ascii(f'{module}.{name}')[1:-1]}, which no StyleGAN2-ADA "
                "network pickle needs (unpickling it could run code)"
            )
        return ALLOWED[(module, name)]

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("the pickle uses persistent ids (a torch.save file, not a network pickle?)")


def _collect(record: Any, module: nn.Module, prefix: str, out: dict[str, torch.Tensor]) -> None:
    """``prefix + name -> tensor`` from a record and its nested records, each checked to be the
    official class of the module built for it."""
    official = {StyleGAN2Generator: "Generator", StyleGAN2Discriminator: "Discriminator"}
    expected = official.get(type(module), type(module).__name__)
    where = prefix.rstrip(".") or "the network"
    if not isinstance(record, PersistentRecord) or record.class_name != expected:
        found = record.class_name if isinstance(record, PersistentRecord) else type(record).__name__
        raise _Refused(f"{where} is of class {found}, where the stored arguments build a {expected}")
    skip = set(record.state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (record.state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise _Refused(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
            out[prefix + name] = value
    for name, child in (record.state.get("_modules") or {}).items():
        if child is None:
            continue
        if name not in module._modules or module._modules[name] is None:
            raise _Refused(f"{where} has a submodule {name!r} that the stored arguments do not build")
        _collect(child, module._modules[name], f"{prefix}{name}.", out)


def _build(record: Any, entry: str) -> nn.Module:
    """The ganlab network of one snapshot entry, with the record's tensors loaded."""
    if not isinstance(record, PersistentRecord):
        raise _Refused(f"{entry} is a {type(record).__name__} object, not a StyleGAN2-ADA network")
    if record.class_name != ENTRIES[entry]:
        raise _Refused(f"{entry} is of class {record.class_name}, not the official {ENTRIES[entry]}")
    args, kwargs = record.state.get("_init_args", ()), record.state.get("_init_kwargs", {})
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
        raise _Refused(f"{entry} has no stored constructor arguments")
    try:
        net = NETWORKS[record.class_name](*args, **kwargs)
    except Exception as e:  # whatever the stored values make the constructor raise
        raise _Refused(
            f"{entry}'s stored arguments do not build a network ({type(e).__name__}: {e})"
        ) from None
    # The architecture as constructor keywords: what a ganlab run that starts from it is built with.
    net.init_kwargs = dict(inspect.signature(type(net)).bind(*args, **kwargs).arguments)
    tensors: dict[str, torch.Tensor] = {}
    _collect(record, net, "", tensors)
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise _Refused(
            f"{entry}'s tensors do not fit its stored arguments ({str(e).splitlines()[0]})"
        ) from None
    return net.train(bool(record.state.get("training", False)))


def _unpickle(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return _SafeUnpickler(f).load()
    except _Refused:
        raise
    except Exception as e:  # pickle raises UnpicklingError, EOFError, ValueError ... by the damage
        raise _Refused(f"not a readable pickle (truncated, or another format: {type(e).__name__})") from None


def load_network_pkl(path: str | Path, key: str = "ckpt") -> dict[str, nn.Module]:
    """``{"G": StyleGAN2Generator, "D": StyleGAN2Discriminator, "G_ema": StyleGAN2Generator}`` from
    an official network pickle, the keys it holds (None entries and the augmentation pipeline are
    skipped). G and D keep the stored training flag and trainable parameters (to fine-tune);
    G_ema is in eval mode with ``requires_grad`` off. Raises ``CheckpointError``, one line naming
    the file, what is wrong and ``key`` (the setting that named it), when the file is missing,
    damaged, not such a pickle, or asks for anything beyond its data."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{key}={path}: no such file; {HOW}")
    try:
        data = _unpickle(path)
        if not isinstance(data, dict) or not any(data.get(k) is not None for k in ENTRIES):
            found = sorted(map(str, data))[:6] if isinstance(data, dict) else type(data).__name__
            raise _Refused(f"the pickle holds {found}, not a snapshot dict with G, D or G_ema")
        nets = {k: _build(data[k], k) for k in ENTRIES if data.get(k) is not None}
    except _Refused as e:
        raise CheckpointError(f"{key}={path}: {' '.join(str(e).splitlines())}; {HOW}") from None
    if "G_ema" in nets:
        nets["G_ema"].eval().requires_grad_(False)
    return nets
