"""torch.compile of G and D (`model.compile=true`): same training as eager, to float tolerance,
lazy R1 included (its updates, a gradient of a gradient, run the eager networks)."""

import torch

from tests.conftest import fit, load


def test_compiled_run_matches_eager(tmp_path, image_dir):
    common = ["callbacks.checkpoint.every_n_iterations=0", "callbacks.samples.every_n_iterations=0",
              "loss.r1_gamma=1", "loss.r1_every=2"]  # fmt: skip
    fit(common, tmp_path / "eager", image_dir)
    fit([*common, "model.compile=true"], tmp_path / "compiled", image_dir)
    a = load(tmp_path / "eager" / "checkpoints" / "last.ckpt")
    b = load(tmp_path / "compiled" / "checkpoints" / "last.ckpt")
    assert a["ganlab"]["counters"] == b["ganlab"]["counters"] and a["ganlab"]["counters"]["iterations"] == 5
    assert a["state_dict"].keys() == b["state_dict"].keys()  # nn.Module.compile keeps the keys
    for k, v in a["state_dict"].items():
        if v.is_floating_point():
            torch.testing.assert_close(b["state_dict"][k], v, rtol=1e-3, atol=1e-4, msg=k)
