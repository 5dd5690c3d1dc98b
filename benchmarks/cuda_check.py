"""Before timing on a GPU: the same computations on CUDA and on the CPU, on a few images, compared.

The same random-weight network and images go to both devices, with TF32 switched off for the check so
that the two differ by float32 rounding only. Each check reports the largest difference relative to the
largest CPU value; "mismatch" where it exceeds the tolerance. The faithfulness and similarity checks
feed both devices the same CPU maps, so they compare those stages and not the attribution again.
"""

from __future__ import annotations

import contextlib
import copy

import pandas as pd
import torch

from benchmarks.stages import StageUnavailable, attribution_methods, method_options
from benchmarks.workload import make_workload
from empirical import attribution
from empirical.experiments import faithfulness
from empirical.measures import activations, similarity

#: relative tolerance a check may differ by: logits and scores are near-exact, LRP divides by sums
#: that can come close to zero (epsilon keeps them away), so maps get more room
TOLERANCES = {"forward": 1e-4, "attribution": 1e-2, "faithfulness": 1e-4, "similarity": 1e-5,
              "activations": 1e-4}
CHECK_IG_STEPS = 16


@contextlib.contextmanager
def _exact_float32():
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _relative_difference(cpu, cuda) -> float:
    cpu = torch.as_tensor(cpu).detach().double().cpu()
    cuda = torch.as_tensor(cuda).detach().double().cpu()
    if cpu.shape != cuda.shape:
        raise ValueError(f"shapes differ: cpu {tuple(cpu.shape)}, cuda {tuple(cuda.shape)}")
    scale = cpu.abs().nan_to_num(nan=0.0, posinf=0.0).max().clamp_min(1e-12)
    same = (cpu == cuda) | (cpu.isnan() & cuda.isnan())  # equal infinities (K = inf) and NaN where both are
    difference = (cpu - cuda).abs().masked_fill(same, 0.0).nan_to_num(nan=float("inf"))
    return float(difference.max() / scale)


def _check(name: str, family: str, compute, devices) -> dict:
    """Run ``compute(side)`` for both sides ("cpu", "other") and compare; a missing piece or a crash is
    a status."""
    tolerance = TOLERANCES[family]
    try:
        difference = _relative_difference(compute(devices[0]), compute(devices[1]))
        status = "ok" if difference <= tolerance else "mismatch"
        return {"check": name, "relative_difference": difference, "tolerance": tolerance, "status": status,
                "detail": ""}
    except StageUnavailable as error:
        return {"check": name, "relative_difference": float("nan"), "tolerance": tolerance,
                "status": "not available", "detail": str(error)}
    except Exception as error:  # reported in the table; the timing still runs
        return {"check": name, "relative_difference": float("nan"), "tolerance": tolerance, "status": "error",
                "detail": f"{type(error).__name__}: {error}"}


def check_cuda_against_cpu(model_name: str = "resnet50", *, images: int = 4, image_size: int = 96,
                           steps: int = 30, seed: int = 0, device: str = "cuda") -> pd.DataFrame:
    """One row per check: forward logits, every attribution method (but the random control), both
    faithfulness patch sizes, the similarity measures and activation statistics, ``device`` (CUDA)
    against the CPU. (``device="cpu"`` runs the same checks CPU against CPU: the harness's own test.)"""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("the CUDA check needs a GPU: torch.cuda.is_available() is False")
    base = make_workload(model_name, batch_size=images, image_size=image_size, device="cpu", seed=seed)
    devices = ("cpu", "other")
    models = {"cpu": base.model, "other": copy.deepcopy(base.model).to(device)}
    inputs = {"cpu": (base.images, base.targets), "other": (base.images.to(device), base.targets.to(device))}
    where = {"cpu": "cpu", "other": device}
    rows = []
    with _exact_float32():
        def forward(side):
            with torch.no_grad():
                return models[side](inputs[side][0])
        rows.append(_check("forward logits", "forward", forward, devices))

        cpu_maps = None
        for method in attribution_methods():
            if method == "random-uniform":  # draws differ between devices by design
                continue

            def attribute(side, method=method):
                x, target = inputs[side]
                options = method_options(method, CHECK_IG_STEPS)
                return attribution.attribute(models[side], x, target, method, **options)
            rows.append(_check(f"attribution {method}", "attribution", attribute, devices))
            if method == "gradient" and rows[-1]["status"] in ("ok", "mismatch"):
                cpu_maps = attribute("cpu").detach()
        if cpu_maps is None:
            generator = torch.Generator().manual_seed(seed)
            cpu_maps = torch.rand(images, image_size, image_size, generator=generator)

        for patch_size in (8, 15):
            def curves(side, patch_size=patch_size):
                x, target = inputs[side]
                return faithfulness.perturbation_curves(
                    models[side], x, target, cpu_maps.to(where[side]), patch_size=patch_size, steps=steps,
                    batch_size=images * (steps + 1))
            rows.append(_check(f"faithfulness patch {patch_size}", "faithfulness", curves, devices))

        other = cpu_maps.roll(1, dims=0) + 0.1 * cpu_maps
        for measure in ("ssim", "spearman", "mse"):
            def score(side, measure=measure):
                return getattr(similarity, measure)(cpu_maps.to(where[side]), other.to(where[side]),
                                                    normalize="second-moment")
            rows.append(_check(f"similarity {measure}", "similarity", score, devices))

        def statistics(side):
            result = activations.activation_statistics(models[side], inputs[side][0])
            if isinstance(result, pd.DataFrame):
                return torch.as_tensor(result.select_dtypes("number").to_numpy(dtype=float))
            return result
        rows.append(_check("activation statistics", "activations", statistics, devices))
    return pd.DataFrame(rows)


def format_checks(frame: pd.DataFrame) -> str:
    shown = frame.assign(relative_difference=frame["relative_difference"].map(lambda v: f"{v:.2e}"))
    return "# CUDA against CPU (TF32 off)\n" + shown.to_string(index=False)
