"""No host sync in the iteration the CUDA-graph path captures, checked on the CPU: every plan
(EMA, lazy R1 on and off, k = 2 D steps, d_every/g_every, DiffAugment, label flips, bf16 autocast,
conditional with an ACGAN head) runs under ``tests.host_sync.NoHostSync``, which fails on any
device-to-host read or data-dependent shape."""

from __future__ import annotations

import pytest
import torch

from ganlab.augment import ADA, DiffAugment
from ganlab.losses import BCELoss, HingeLoss
from ganlab.models import DCGANDiscriminator, DCGANGenerator
from ganlab.training.build import gan_module
from ganlab.training.module import Plan
from ganlab.training.optim import GANOptimizers
from tests.host_sync import HostSyncError, NoHostSync, allowed, check_iteration


def test_the_check_fails_on_every_kind_of_host_read():
    x = torch.tensor([1.0, 2.0])
    reads = [
        lambda: x[0].item(),
        lambda: x.tolist(),
        lambda: x.cpu(),
        lambda: bool(x[0] > 0),
        lambda: float(x[1]),
        lambda: x.numpy(),
        lambda: x.nonzero(),
        lambda: x[x > 1],  # a boolean mask: the output's size depends on the data
        lambda: x.to("cpu"),
        # EMA as ganlab wrote it before: _foreach_lerp_ takes a Scalar, a 0-d tensor is read with .item()
        lambda: torch._foreach_lerp_([x.clone()], [x], torch.tensor(0.5)),
    ]
    for read in reads:
        with pytest.raises(HostSyncError), NoHostSync():
            read()
    with NoHostSync():  # device arithmetic and indexing by integer tensors are fine
        y = x * 2 + x[torch.tensor([1, 0])]
        with allowed():
            assert y.tolist() == [4.0, 5.0]


def plans_from_counters(m, phases: list[tuple[bool, bool]]) -> list[Plan]:
    """The plans a run makes, in order, for (D phase?, G phase?) per iteration: R1's flags follow
    the D-update counter (r1_every=3, k=2) as ``Schedule.plan`` makes them."""
    out, d = [], m.progress.d_updates
    (r1,) = m.lazy_terms
    for d_phase, g in phases:
        k = m.schedule.d_steps_per_g if d_phase else 0
        out.append(Plan(d=tuple(frozenset({"r1"} if r1.due(d + j) else ()) for j in range(k)), g=g))
        d += k
    return out


# D-only, D+G, G-only: with k=2 and R1 every 3rd D update they cover R1 first, second and off.
PHASES = [(True, False), (True, True), (False, True), (True, True), (True, True), (True, False)]


def module_and_batch(conditional: bool, augment=None):
    """EMA, R1 every 3 D updates, k = 2 D steps per iteration, DiffAugment and label flips; or a
    conditional G and D with an ACGAN head and the hinge loss."""
    k = 3 if conditional else 0
    G = DCGANGenerator(32, 3, nz=8, ngf=4, num_classes=k)
    D = DCGANDiscriminator(32, 3, ndf=4, num_classes=k, aux_classifier=conditional)
    if conditional:
        loss = HingeLoss(r1_gamma=1.0, r1_every=3, acgan_weight=1.0)
    else:
        loss = BCELoss(r1_gamma=1.0, r1_every=3, flip_prob=0.1)
    m = gan_module(G, D, loss, GANOptimizers.adam(), nz=8, d_steps_per_g=2, ema_half_life_kimg=0.01,
                   d_augment=[augment or DiffAugment()], num_classes=k)  # fmt: skip
    real = torch.rand(8, 3, 32, 32) * 2 - 1  # k minibatches of 4
    return m, real, torch.arange(8) % 3 if conditional else None


@pytest.mark.parametrize(
    ("conditional", "autocast", "ada"),
    [(False, None, False), (True, None, False), (False, torch.bfloat16, False), (False, None, True)],
    ids=["plain", "cond", "bf16", "ada"],
)
def test_every_capturable_plan_runs_without_a_host_sync(conditional, autocast, ada):
    """The plans cover D-only, G-only, R1 and no-R1 iterations (d_every/g_every); ADA at p = 0.5."""
    m, real, labels = module_and_batch(conditional, ADA(p=0.5) if ada else None)
    before = [p.clone() for p in m.G_ema.parameters()]
    plans = plans_from_counters(m, PHASES)
    assert {tuple(bool(t) for t in p.d) for p in plans} >= {(True, False), (False, True), (False, False), ()}
    assert check_iteration(m, real, plans, labels, autocast_dtype=autocast, repeats=1) == len(PHASES)
    assert m.progress.d_updates == 10 and m.progress.g_updates == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, m.G_ema.parameters()))  # the EMA moved


def test_the_ema_with_a_tensor_weight_equals_the_float_path():
    from ganlab.training.ema import EMA

    ema_a, ema_b, net = (torch.nn.Linear(3, 2) for _ in range(3))
    ema_b.load_state_dict(ema_a.state_dict())
    EMA(1.0).update(ema_a, net, 0.25)
    with NoHostSync():
        EMA(1.0).update(ema_b, net, torch.tensor(0.25))
    for a, b in zip(ema_a.parameters(), ema_b.parameters()):
        torch.testing.assert_close(a, b)


def test_the_check_fails_on_the_ema_as_it_was(monkeypatch):
    """The EMA before this check existed: ``_foreach_lerp_`` with the graph's 0-d tensor weight."""
    from ganlab.training.ema import EMA

    def old_update(self, ema, net, weight):
        torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), weight)

    monkeypatch.setattr(EMA, "update", old_update)
    m, real, labels = module_and_batch(False)
    with pytest.raises(HostSyncError, match="_local_scalar_dense"):
        check_iteration(m, real, plans_from_counters(m, [(True, True)]), labels)


@pytest.mark.parametrize("conditional", [False, True], ids=["plain", "cond"])
def test_the_doctors_probe_reads_nothing_on_the_host(conditional):
    """The training doctor's measurements (D on fixed train and held-out slices, G's gradient
    norm, the fakes' diversity) stay on the device like the iteration itself."""
    from ganlab.doctor.probe import Probe

    m, real, labels = module_and_batch(conditional)
    check_iteration(m, real, plans_from_counters(m, [(True, True)]), labels, repeats=1)
    sets = {"train": real[:4], "holdout": real[4:],
            "train_labels": labels[:4] if conditional else None,
            "holdout_labels": labels[4:] if conditional else None}  # fmt: skip
    probe = Probe(sets)
    probe.measure(m, *m.last_batch)  # the first call puts the slices on the module's device
    with NoHostSync():
        out = probe.measure(m, *m.last_batch)
    names = {"r_train", "r_v", "logit_train", "logit_holdout", "g_grad_norm", "diversity"}
    assert set(out) == {f"doctor/{n}" for n in names}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())


def test_the_plan_alone_decides_the_lazy_terms():
    """R1 runs on the D updates the plan names, whatever the counters (the loss does not decide
    again): a plan with R1 on the second update logs it, a plan without does not."""
    m, real, labels = module_and_batch(False)
    optimizers = m.optim.build(m.G.parameters(), m.D.parameters())
    m._g_params = list(m.G.parameters())

    def run(plan):
        return m.iteration(real, plan, *optimizers, lambda loss, inputs=None: loss.backward(), None)

    assert "r1" in run(Plan(d=(frozenset(), frozenset({"r1"})), g=True)).logs
    assert "r1" not in run(Plan(d=(frozenset(), frozenset()), g=True)).logs


@pytest.mark.parametrize("conditional", [False, True], ids=["plain", "cond"])
def test_stylegan2_with_both_lazy_terms_runs_without_a_host_sync(conditional):
    """model=stylegan2 with loss=stylegan2 as the CUDA-graph path captures it: style mixing, R1
    and the path length each in its own step (phase "reg"), the running mean updated in place."""
    from ganlab.losses.stylegan2 import StyleGAN2Loss
    from ganlab.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
    from ganlab.training.schedule import Schedule

    k = 3 if conditional else 0
    synthesis = {"channel_base": 128, "channel_max": 16}
    G = StyleGAN2Generator(8, k, 8, 16, 3, {"num_layers": 2}, synthesis)
    D = StyleGAN2Discriminator(
        k, 16, 3, channel_base=128, channel_max=16, epilogue_kwargs={"mbstd_group_size": 2}
    )
    loss = StyleGAN2Loss(r1_gamma=1.0, r1_every=2, pl_every=2)
    m = gan_module(G, D, loss, GANOptimizers.adam(), nz=8, ema_half_life_kimg=0.01, num_classes=k)
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    labels = torch.arange(4) % 3 if conditional else None
    plans = []
    for _ in range(3):  # lazy terms due on iterations 0 and 2
        plans.append(Schedule().plan(m.progress, m.lazy_terms))
        m.progress.advance(4, 1, 0, 1)
    m.progress.load_state_dict({})
    assert [p.g_terms for p in plans] == [{"pl"}, set(), {"pl"}] and plans[0].d == ({"r1"},)
    assert check_iteration(m, real, plans, labels, repeats=1) == 3
    assert float(loss.pl_mean) > 0  # the path length ran, its running mean moved in place
