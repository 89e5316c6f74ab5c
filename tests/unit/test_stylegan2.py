"""StyleGAN2-ADA (``ganlab.models.stylegan2``) against the official networks, weight for weight:
the reference outputs, parameter counts and pickles of NVlabs/stylegan2-ada-pytorch in
``../shared/stylegan2_ada`` (its README); the safe pickle reader against hostile files; the
ganlab extensions (integer labels, style mixing without host sync, ``return_ws`` with double
backward, reduced precision)."""

from __future__ import annotations

import builtins
import json
import os
import pickle
import subprocess
import sys
import types

import pytest
import torch

from ganlab.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator, load_network_pkl
from ganlab.models.stylegan2.layers import ReducedPrecision
from ganlab.utils.errors import CheckpointError
from tests.conftest import ROOT
from tests.host_sync import NoHostSync

ORACLE = ROOT.parent / "shared" / "stylegan2_ada"
NAMES = ("cond32", "uncond32")
ATOL = 1e-4

# The oracle's cond32 networks (its README), for the tests that need no oracle file.
G_SYNTHESIS = dict(channel_base=2048, channel_max=128, num_fp16_res=0, conv_clamp=256, architecture="skip")
COND32_G = dict(
    z_dim=64, c_dim=10, w_dim=64, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
    synthesis_kwargs=G_SYNTHESIS,
)  # fmt: skip
COND32_D = dict(
    c_dim=10, img_resolution=32, img_channels=3, architecture="resnet", channel_base=2048, channel_max=128,
    num_fp16_res=0, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=4),
)  # fmt: skip


def oracle_path(name: str) -> os.PathLike:
    if not ORACLE.is_dir():
        pytest.skip(f"the StyleGAN2-ADA oracle folder {ORACLE} is missing (see its README)")
    return ORACLE / name


@pytest.fixture(scope="module", params=NAMES)
def oracle(request) -> dict:
    data = torch.load(oracle_path(f"sg2ada_{request.param}_rgb.pt"), weights_only=True)
    data["name"] = request.param
    return data


def official_nets(oracle: dict) -> tuple[StyleGAN2Generator, StyleGAN2Discriminator]:
    G = StyleGAN2Generator(**oracle["G_kwargs"])
    D = StyleGAN2Discriminator(**oracle["D_kwargs"])
    G.load_state_dict(oracle["G_state_dict"], strict=True)
    D.load_state_dict(oracle["D_state_dict"], strict=True)
    return G.eval().requires_grad_(False), D.eval().requires_grad_(False)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def assert_matches_oracle(G, D, oracle: dict) -> None:
    """Every reference output of the oracle's README, within ATOL."""
    z, c, out = oracle["inputs"]["z"], oracle["inputs"]["c"], oracle["outputs"]
    checks = {}
    for psi in (1.0, 0.7):
        ws = G.mapping(z, c, truncation_psi=psi, skip_w_avg_update=True)
        checks[f"ws_psi{psi}"] = ws
        for noise in ("const", "none"):
            checks[f"img_psi{psi}_{noise}"] = G.synthesis(ws, noise_mode=noise)
    checks["ws_psi0.5_cutoff2"] = G.mapping(
        z, c, truncation_psi=0.5, truncation_cutoff=2, skip_w_avg_update=True
    )
    checks["img_mixed_const"] = G.synthesis(out["ws_mixed"], noise_mode="const")
    checks["d_logits_fake"] = D(out["img_psi1.0_const"], c)
    checks["d_logits_real"] = D(out["reals"], c)
    for key, got in checks.items():
        torch.testing.assert_close(got, out[key], atol=ATOL, rtol=0, msg=lambda m, key=key: f"{key}: {m}")


def test_official_state_dicts_load_and_every_output_matches(oracle):
    G, D = official_nets(oracle)
    assert (n_params(G), n_params(D)) == (oracle["G_params"], oracle["D_params"])
    assert_matches_oracle(G, D, oracle)
    # the training-mode form of the style convolution (styles scale the activations) agrees too
    ws, img = oracle["outputs"]["ws_psi0.7"], oracle["outputs"]["img_psi0.7_const"]
    torch.testing.assert_close(
        G.synthesis(ws, noise_mode="const", fused_modconv=False), img, atol=ATOL, rtol=0
    )
    # the mixed ws are the README's: k = num_ws // 2 rows from each sample, the rest from the one before
    ws1, mixed, k = oracle["outputs"]["ws_psi1.0"], oracle["outputs"]["ws_mixed"], G.num_ws // 2
    torch.testing.assert_close(mixed, torch.cat([ws1[:, :k], ws1.roll(1, 0)[:, k:]], 1), atol=0, rtol=0)


def test_official_configurations_have_the_official_parameter_counts():
    counts = json.loads(oracle_path("param_counts.json").read_text())
    for name in ("cifar", "paper256", "stylegan2_1024"):
        cfg = counts[name]
        res, ch, c_dim = cfg["img_resolution"], cfg["img_channels"], cfg["c_dim"]
        common = dict(channel_base=cfg["channel_base"], channel_max=512, num_fp16_res=4, conv_clamp=256)
        with torch.device("meta"):  # 1024 px: shapes only, nothing allocated
            G = StyleGAN2Generator(
                512, c_dim, 512, res, ch, mapping_kwargs=dict(num_layers=cfg["mapping_layers"]),
                synthesis_kwargs=dict(architecture=cfg["G_architecture"], **common),
            )  # fmt: skip
            D = StyleGAN2Discriminator(c_dim, res, ch, architecture=cfg["D_architecture"], **common)
        assert (n_params(G), n_params(D)) == (cfg["G"], cfg["D"]), name


def test_ganlab_attributes_and_the_official_constructor_arguments():
    G, D = StyleGAN2Generator(**COND32_G), StyleGAN2Discriminator(**COND32_D)
    assert (G.nz, G.image_size, G.channels, G.num_classes, G.num_ws) == (64, 32, 3, 10, 8)
    assert (D.image_size, D.channels, D.num_classes, D.aux_classes, D.pairwise) == (32, 3, 10, 0, False)
    # official kwargs that change no number are accepted; an unknown one fails as Python's would
    StyleGAN2Generator(16, 0, 16, 8, 3, synthesis_kwargs=dict(fp16_channels_last=True, channel_base=256))
    StyleGAN2Discriminator(0, 8, 3, channel_base=256, block_kwargs=dict(fp16_channels_last=True))
    with pytest.raises(TypeError):
        StyleGAN2Generator(16, 0, 16, 8, 3, synthesis_kwargs=dict(colour="blue"))
    with pytest.raises(TypeError):
        StyleGAN2Generator(16, 0, 16, 8, 3, mapping_kwargs=dict(depth=3))
    with pytest.raises(TypeError):
        StyleGAN2Discriminator(0, 8, 3, block_kwargs=dict(depth=3))
    frozen = StyleGAN2Discriminator(0, 16, 3, channel_base=256, block_kwargs=dict(freeze_layers=2))
    assert "b16.conv0.weight" in dict(frozen.named_buffers())  # Freeze-D: same names, buffers


def test_integer_labels_equal_one_hot_and_unconditional_c_may_be_omitted(oracle):
    G, D = official_nets(oracle)
    z, c, out = oracle["inputs"]["z"], oracle["inputs"]["c"], oracle["outputs"]
    if oracle["name"] == "cond32":
        labels = c.argmax(1)
        torch.testing.assert_close(
            G(z, labels, noise_mode="const"), out["img_psi1.0_const"], atol=ATOL, rtol=0
        )
        torch.testing.assert_close(D(out["reals"], labels), out["d_logits_real"], atol=ATOL, rtol=0)
        with pytest.raises(ValueError, match="class-conditional"):
            G(z)
    else:
        for c_none in (None, c):
            torch.testing.assert_close(
                G(z, c_none, noise_mode="none"), out["img_psi1.0_none"], atol=ATOL, rtol=0
            )
            torch.testing.assert_close(D(out["reals"], c_none), out["d_logits_real"], atol=ATOL, rtol=0)
        torch.testing.assert_close(
            G(z, noise_mode="none", truncation_psi=0.7), out["img_psi0.7_none"], atol=ATOL, rtol=0
        )


def test_w_avg_is_tracked_in_training_unless_skipped():
    G = StyleGAN2Generator(**COND32_G).train()
    z, labels = torch.randn(4, 64), torch.arange(4)
    before = G.mapping.w_avg.clone()
    G.mapping(z, labels, skip_w_avg_update=True)
    assert torch.equal(G.mapping.w_avg, before)
    w = G.mapping(z, labels)[:, 0]
    torch.testing.assert_close(G.mapping.w_avg, 0.995 * before + 0.005 * w.mean(0).detach())
    frozen = G.mapping.w_avg.clone()
    G.eval()(z, labels)
    assert torch.equal(G.mapping.w_avg, frozen)


def test_style_mixing_runs_on_the_device_and_mixes_the_later_ws():
    G = StyleGAN2Generator(**COND32_G).eval()
    z, labels = torch.randn(4, 64), torch.arange(4)
    plain = G.mapping(z, labels)
    with NoHostSync():
        _, ws_off = G(z, labels, return_ws=True)
        _, ws_on = G(z, labels, style_mixing_prob=1.0, return_ws=True)
    assert torch.equal(ws_off, plain)
    assert torch.equal(ws_on[:, 0], plain[:, 0])  # the cutoff is at least 1
    assert not torch.equal(ws_on[:, -1], plain[:, -1])  # ... and below num_ws: the last w is mixed
    changed = (ws_on != plain).any(2).any(0)  # (num_ws,): rows from the second latent, a suffix
    assert torch.equal(changed, torch.sort(changed.int()).values.bool())


def test_a_training_step_backpropagates_with_mixing_and_path_length():
    """G(z, labels) -> D(img, labels).sum().backward(), then the path-length penalty's double
    backward through the returned ws; without a host sync."""
    torch.manual_seed(0)
    G, D = StyleGAN2Generator(**COND32_G).train(), StyleGAN2Discriminator(**COND32_D).train()
    z, labels = torch.randn(4, 64), torch.tensor([0, 3, 9, 3])
    with NoHostSync():
        img, ws = G(z, labels, style_mixing_prob=0.9, return_ws=True)
        D(img, labels).sum().backward()
        img, ws = G(z, labels, style_mixing_prob=0.9, return_ws=True)
        noise = torch.randn_like(img) / img.shape[2]  # the official pl_noise scale
        (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(2).mean(1).sqrt()
        (lengths - lengths.detach().mean()).square().mean().backward()
    assert grad.shape == ws.shape == (4, G.num_ws, 64)
    for net in (G, D):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert G.synthesis.b32.conv0.weight.grad.abs().sum() > 0


def emulate_cuda(monkeypatch) -> None:
    """Reduced precision where the CPU can run it: blocks flagged ``use_fp16`` act as on CUDA."""

    def compute_dtype(self, device, force_fp32=False):
        return self.low_precision_dtype if self.use_fp16 and not force_fp32 else torch.float32

    monkeypatch.setattr(ReducedPrecision, "compute_dtype", compute_dtype)


def reduced_precision_nets():
    torch.manual_seed(0)
    g_kwargs = dict(COND32_G, synthesis_kwargs=dict(COND32_G["synthesis_kwargs"], num_fp16_res=2))
    return StyleGAN2Generator(**g_kwargs).eval(), StyleGAN2Discriminator(
        **dict(COND32_D, num_fp16_res=2)
    ).eval()


def test_reduced_precision_is_cuda_only_bfloat16_by_default_float16_on_request(monkeypatch):
    G, D = reduced_precision_nets()
    z, labels = torch.randn(4, 64), torch.arange(4)
    assert [b.use_fp16 for b in (G.synthesis.b8, G.synthesis.b16, G.synthesis.b32)] == [False, True, True]
    ref = G(z, labels, noise_mode="const")  # on the CPU: float32 everywhere
    torch.testing.assert_close(ref, G(z, labels, noise_mode="const", force_fp32=True), atol=0, rtol=0)
    assert G.low_precision_dtype == torch.bfloat16 == G.synthesis.b32.low_precision_dtype
    with pytest.raises(ValueError):
        G.low_precision_dtype = torch.int8
    emulate_cuda(monkeypatch)
    seen = {}
    G.synthesis.b32.conv1.register_forward_hook(lambda m, i, o: seen.update(dtype=o.dtype))
    for dtype, tol in ((torch.bfloat16, 0.05), (torch.float16, 0.01)):
        G.low_precision_dtype = D.low_precision_dtype = dtype
        img = G(z, labels, noise_mode="const")
        assert seen["dtype"] == dtype and img.dtype == torch.float32
        assert (img - ref).abs().max() < tol * ref.abs().max()
        logits = D(img, labels)
        assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_reduced_precision_on_cuda():
    G, D = (net.cuda() for net in reduced_precision_nets())
    z, labels = torch.randn(4, 64, device="cuda"), torch.arange(4, device="cuda")
    ref = G(z, labels, noise_mode="const", force_fp32=True)
    seen = {}
    for dtype, tol in ((torch.bfloat16, 0.05), (torch.float16, 0.01)):
        G.low_precision_dtype = D.low_precision_dtype = dtype
        seen.clear()
        hook = G.synthesis.b32.conv1.register_forward_hook(lambda m, i, o: seen.update(dtype=o.dtype))
        img = G(z, labels, noise_mode="const")
        hook.remove()
        assert seen["dtype"] == dtype and (img - ref).abs().max() < tol * ref.abs().max()
        G.train()
        D.train()
        img, ws = G(z, labels, style_mixing_prob=0.9, return_ws=True)
        D(img, labels).sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in G.parameters() if p.grad is not None)
        G.eval()
        D.eval()


def test_official_pickles_load_into_the_same_networks(oracle, tmp_path, monkeypatch):
    """G, D and G_ema of the snapshot pickle reproduce the oracle's outputs; the official
    modules are never imported (stand-ins on sys.path would leave a marker if they were)."""
    marker = tmp_path / "imported"
    for package in ("torch_utils", "dnnlib"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('{package}')\n")
        (tmp_path / package / "persistence.py").write_text("")
        monkeypatch.delitem(sys.modules, package, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    nets = load_network_pkl(oracle_path(f"sg2ada_{oracle['name']}_rgb.pkl"))
    assert not marker.exists() and "torch_utils" not in sys.modules and "dnnlib" not in sys.modules
    assert sorted(nets) == ["D", "G", "G_ema"]
    assert not nets["G_ema"].training and not any(p.requires_grad for p in nets["G_ema"].parameters())
    for g in ("G", "G_ema"):
        assert isinstance(nets[g], StyleGAN2Generator)
        assert_matches_oracle(nets[g].requires_grad_(False), nets["D"].requires_grad_(False), oracle)


class Payload:
    """Pickles as a call of ``fn(*args)``: what a hostile pickle makes ``pickle.load`` run."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def snapshot(**entries) -> dict:
    return dict(dict(G=None, D=None, G_ema=None, augment_pipe=None, training_set_kwargs=None), **entries)


def assert_refused(path, *words) -> str:
    with pytest.raises(CheckpointError) as info:
        load_network_pkl(path)
    message = str(info.value)
    assert (
        message.startswith(f"ckpt={path}: ") and "\n" not in message and "official StyleGAN2-ADA" in message
    )
    for word in words:
        assert word in message
    return message


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payloads = [
        (os.system, (f"touch {marker}",)),
        (builtins.eval, (f"open({str(marker)!r}, 'w')",)),
        (subprocess.Popen, (["touch", str(marker)],)),
    ]
    for i, (fn, args) in enumerate(payloads):
        path = tmp_path / f"evil{i}.pkl"
        path.write_bytes(pickle.dumps(snapshot(G=Payload(fn, args))))
        assert_refused(path, "refused", fn.__name__, "could run code")
        assert not marker.exists()


def test_a_damaged_or_foreign_pickle_gets_one_clear_line(tmp_path):
    whole = oracle_path("sg2ada_cond32_rgb.pkl").read_bytes()
    (tmp_path / "cut.pkl").write_bytes(whole[: len(whole) // 2])
    assert_refused(tmp_path / "cut.pkl", "not a readable pickle")
    assert_refused(tmp_path / "missing.pkl", "no such file")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2]))
    assert_refused(tmp_path / "list.pkl", "not a snapshot dict")
    torch.save({"G": torch.zeros(2)}, tmp_path / "torch.pt")
    assert_refused(tmp_path / "torch.pt")


# A stand-in for ``torch_utils.persistence``, registered only while a test writes a pickle: the
# records it writes have the official layout, with a module source that would leave a marker.
OFFICIAL_CLASS = {StyleGAN2Generator: "Generator", StyleGAN2Discriminator: "Discriminator"}


def _reconstruct_persistent_obj(meta):  # never called: the reader maps the name to its own function
    raise AssertionError("the official reconstruction ran")


class Persistent:
    def __init__(self, meta):
        self.meta = meta

    def __reduce__(self):
        return _reconstruct_persistent_obj, (self.meta,)


def official_layout(module, source: str, class_name: str | None = None, init_kwargs=None) -> Persistent:
    state = dict(
        training=module.training, _parameters=dict(module._parameters), _buffers=dict(module._buffers),
        _non_persistent_buffers_set=set(), _init_args=(), _init_kwargs=init_kwargs or {},
        _modules={name: official_layout(child, source) for name, child in module._modules.items()},
    )  # fmt: skip
    name = class_name or OFFICIAL_CLASS.get(type(module), type(module).__name__)
    return Persistent(dict(type="class", version=6, module_src=source, class_name=name, state=state))


@pytest.fixture
def write_snapshot(monkeypatch, tmp_path):
    fake = types.ModuleType("torch_utils.persistence")
    fake._reconstruct_persistent_obj = _reconstruct_persistent_obj

    def write(name: str, **entries):
        with monkeypatch.context() as m:
            m.setattr(_reconstruct_persistent_obj, "__module__", "torch_utils.persistence")
            m.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
            m.setitem(sys.modules, "torch_utils.persistence", fake)
            (tmp_path / name).write_bytes(pickle.dumps(snapshot(**entries), protocol=4))
        return tmp_path / name

    return write


def test_the_stored_source_never_runs_and_entries_may_be_missing(tmp_path, write_snapshot):
    marker = tmp_path / "ran"
    source = f"open({str(marker)!r}, 'w').close()"
    G = StyleGAN2Generator(**COND32_G).eval()
    path = write_snapshot("ema_only.pkl", G_ema=official_layout(G, source, init_kwargs=COND32_G))
    nets = load_network_pkl(path)
    assert sorted(nets) == ["G_ema"] and not marker.exists()
    z, labels = torch.randn(2, 64), torch.tensor([1, 2])
    torch.testing.assert_close(nets["G_ema"](z, labels, noise_mode="const"), G(z, labels, noise_mode="const"))


def test_a_pickle_of_other_classes_is_refused(tmp_path, write_snapshot):
    G, D = StyleGAN2Generator(**COND32_G), StyleGAN2Discriminator(**COND32_D)
    path = write_snapshot(
        "pipe.pkl", G=official_layout(G, "", class_name="AugmentPipe", init_kwargs=COND32_G)
    )
    assert_refused(path, "G is of class AugmentPipe, not the official Generator")
    path = write_snapshot("swapped.pkl", G=official_layout(D, "", init_kwargs=COND32_D))
    assert_refused(path, "G is of class Discriminator")
    kwargs = dict(COND32_G, mapping_kwargs=dict(num_layers=3))  # arguments that build another network
    assert_refused(write_snapshot("bad.pkl", G=official_layout(G, "", init_kwargs=kwargs)), "do not")
    hostile = dict(COND32_G, mapping_kwargs=Payload(os.system, (f"touch {tmp_path / 'x'}",)))
    assert_refused(write_snapshot("nested.pkl", G=official_layout(G, "", init_kwargs=hostile)), "refused")
    assert not (tmp_path / "x").exists()


def test_truncation_toward_each_class_mean():
    """truncation_center=class: psi 0 gives each class its own mean w (one image per class, the
    classes apart), where the official w_avg, one mean over every class, gives all of them one w."""
    from types import SimpleNamespace

    from ganlab.models.truncation import class_centers, truncate

    torch.manual_seed(0)
    G = StyleGAN2Generator(8, 3, 8, 16, 1, {"num_layers": 2}, {"channel_base": 128, "channel_max": 8}).eval()
    G.mapping.w_avg.normal_()
    z, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    centers = class_centers(G, n=500)
    ws = G.mapping(z, y, truncation_psi=0.0, truncation_center=centers[y])
    assert torch.allclose(ws[:3], ws[3:]) and not torch.allclose(ws[0], ws[1])
    assert torch.allclose(ws[:, 0], centers[y]) and torch.allclose(
        G.mapping(z, y, truncation_psi=0.0)[:, 0], G.mapping.w_avg.expand(6, -1)
    )
    gen = SimpleNamespace(G=G, options={}, num_classes=3, class_centers=None, sample_z=None)
    truncate(gen, 0.5, seed=0, center="class")
    assert gen.options == {"truncation_psi": 0.5, "truncation_cutoff": None} and gen.class_centers.shape == (
        3,
        8,
    )


def test_an_acgan_head_beside_the_projection_is_ganlabs_own():
    """aux_classifier=true (not in the official D): (B, 1 + c_dim), the adversarial logit first, as
    ganlab's losses split it; off, D's parameters are the official ones."""
    from ganlab.losses.base import split_logits

    kw = dict(channel_base=128, channel_max=8, epilogue_kwargs={"mbstd_group_size": 2})
    plain, aux = (
        StyleGAN2Discriminator(3, 16, 1, **kw),
        StyleGAN2Discriminator(3, 16, 1, aux_classifier=True, **kw),
    )
    assert set(aux.state_dict()) - set(plain.state_dict()) == {"b4.aux.weight", "b4.aux.bias"}
    logits, classes = split_logits(aux(torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 0])))
    assert (
        logits.shape == (4,) and classes.shape == (4, 3) and aux.aux_classes == 3 and plain.aux_classes == 0
    )


def test_gain_and_bias_folded_into_the_convolutions_equal_the_separate_passes():
    """ganlab's layers fold the activation gain into the weights and the bias into the last
    convolution (or the demodulation's multiply-add): the numbers of the official order (conv,
    bias, activation, gain as passes of their own) for every resampling case."""
    from ganlab.models.stylegan2 import ops
    from ganlab.models.stylegan2.layers import Conv2dLayer

    torch.manual_seed(0)
    x, f = torch.randn(2, 3, 8, 8), ops.setup_filter([1, 3, 3, 1])
    for kernel in (1, 3):
        w, b = torch.randn(4, 3, kernel, kernel), torch.randn(4)
        for up, down in ((1, 1), (2, 1), (1, 2)):
            plain = ops.conv2d_resample(x, w, f, up, down, kernel // 2, flip_weight=up == 1)
            with_bias = ops.conv2d_resample(x, w, f, up, down, kernel // 2, flip_weight=up == 1, bias=b)
            torch.testing.assert_close(with_bias, plain + b[None, :, None, None])
            layer = Conv2dLayer(3, 4, kernel, activation="lrelu", up=up, down=down, conv_clamp=0.5)
            layer.bias.data = b
            ref = ops.conv2d_resample(
                x, layer.weight * layer.weight_gain, f, up, down, kernel // 2, flip_weight=up == 1
            )
            ref = ops.bias_act(ref, b, act="lrelu", gain=layer.act_gain * 0.7, clamp=0.5 * 0.7)
            torch.testing.assert_close(layer(x, gain=0.7), ref)
    styles, noise, w = torch.randn(2, 3), torch.randn(2, 1, 8, 8), torch.randn(4, 3, 3, 3)
    for fused in (True, False):
        for demodulate in (True, False):
            ref = ops.modulated_conv2d(
                x, w, styles, noise, padding=1, demodulate=demodulate, fused_modconv=fused
            )
            got = ops.modulated_conv2d(
                x, w, styles, noise, padding=1, demodulate=demodulate, fused_modconv=fused, gain=1.4, bias=b
            )
            torch.testing.assert_close(got, 1.4 * ref + b[None, :, None, None])
