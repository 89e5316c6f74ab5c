"""Training statistics kept on the device and read once per logging interval.

Per iteration the training step hands over a few 0-d tensors (losses, D(x), D(G(z)), accuracies).
Reading each with ``.item()``, or handing them to ``LightningModule.log_dict`` every iteration,
costs host time (and on a GPU a sync) per iteration. Here each iteration adds one stacked tensor to
a running sum on the device; ``flush()`` turns the sums into means with one device-to-host copy.
Logged values are therefore means over the interval, not the last iteration's values.

For the divergence guard (``ganlab.callbacks.guard``) it also keeps the largest magnitude of any value
added, on the device: NaN and inf survive in it, so one read tells whether training stayed finite
and bounded, whenever the guard needs to know.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


class StepStats:
    """Running sums of named scalar statistics, grouped by the set of names an iteration reports
    (D-only and G-only iterations report different sets).

    ``add`` only keeps the iteration's 0-d tensors: no kernel runs per iteration. They are folded
    into the sums (one stack and one sum per group) when statistics are read: at each
    ``flush`` and ``within``, every ``trainer.log_every_n_steps`` or divergence check. A CUDA
    graph's outputs are rewritten by the next replay, so those are folded at once (``fresh=False``)."""

    def __init__(self) -> None:
        self._pending: list[dict[str, Tensor]] = []
        self._sums: dict[tuple[str, ...], Tensor] = {}
        self._counts: dict[tuple[str, ...], int] = {}
        self._absmax: Tensor | None = None  # 0-d, max |value| since the last reset_health()

    def add(self, values: dict[str, Tensor], fresh: bool = True) -> None:
        """``values``: 0-d tensors, detached; ``fresh``: tensors no later step writes into."""
        if values:
            self._pending.append(values)
            if not fresh:
                self._fold()

    def _fold(self) -> None:
        groups: dict[tuple[str, ...], list[Tensor]] = {}
        for values in self._pending:
            groups.setdefault(tuple(values), []).extend(values.values())
        self._pending.clear()
        for names, flat in groups.items():
            # (n, k) in fp32; stack promotes mixed dtypes (bf16 losses beside fp32 statistics)
            rows = torch.stack(flat).float().view(-1, len(names))
            total = self._sums.get(names)
            self._sums[names] = rows.sum(0) if total is None else total.add_(rows.sum(0))
            self._counts[names] = self._counts.get(names, 0) + rows.shape[0]
            peak = rows.abs().amax()  # NaN propagates through amax and maximum
            self._absmax = peak if self._absmax is None else torch.maximum(self._absmax, peak)

    def within(self, bound: float) -> Tensor:
        """0-d bool on the device: every value added since ``reset_health`` was finite and at
        most ``bound`` in magnitude (False for NaN: NaN <= bound is false). No sync."""
        self._fold()
        if self._absmax is None:
            return torch.tensor(True)
        return self._absmax <= bound

    def reset_health(self) -> None:
        """Forget the values seen so far (after a rollback) and the sums not yet logged."""
        self._pending.clear()
        self._absmax = None
        self._sums.clear()
        self._counts.clear()

    def flush(self, reduce: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
        """Means since the last flush, by name; one device-to-host copy. Empties the sums.
        ``reduce``: applied to the concatenated sums first, e.g. the strategy's mean over ranks
        (every rank reports the same names, as they run the same schedule)."""
        self._fold()
        if not self._sums:
            return {}
        groups = list(self._sums.items())
        sums = torch.cat([s for _, s in groups])
        host = (reduce(sums) if reduce is not None else sums).cpu().tolist()
        totals: dict[str, float] = {}
        counts: dict[str, int] = {}
        i = 0
        for names, _ in groups:
            n = self._counts[names]
            for name in names:
                totals[name] = totals.get(name, 0.0) + host[i]
                counts[name] = counts.get(name, 0) + n
                i += 1
        self._sums.clear()
        self._counts.clear()
        return {k: totals[k] / counts[k] for k in totals}


def publish(stats: StepStats, trainer, progress, history=None) -> None:
    """Hand the accumulated statistics to the loggers (one device-to-host copy), as
    ``train/<name>`` (a name with its own prefix, ``doctor/r_v``, as it is) at step
    ``progress.iterations``, averaged over ranks; also into the run's ``history``
    (``ganlab.training.history``: the doctor reads them there) and ``trainer.callback_metrics``
    for the progress line, sweepers and ``ganlab.train``'s result."""
    means = stats.flush(reduce=lambda t: trainer.strategy.reduce(t, reduce_op="mean"))
    if not means:
        return
    if "d_acc_real" in means:  # derived here, on the host, rather than on the device every iteration
        means["d_acc"] = (means["d_acc_real"] + means["d_acc_fake"]) / 2
    values = {(k if "/" in k else f"train/{k}"): v for k, v in means.items()}
    values["train/images_seen"] = float(progress.images_seen)
    values["train/lr_g"], values["train/lr_d"] = (float(o.param_groups[0]["lr"]) for o in trainer.optimizers)
    values["train/iterations"] = float(progress.iterations)
    for logger in trainer.loggers:
        logger.log_metrics(values, step=progress.iterations)
    if history is not None:
        history.put(values, progress.iterations)
    trainer.callback_metrics.update({k: torch.tensor(v) for k, v in values.items()})
