"""Run the empirical experiments of a profile and write their tables and manifest (docs/results-format.md).

``run(["faithfulness"], out="runs/x")`` loads the profile's networks and images, calls ``run_randomization``,
``run_faithfulness`` and ``run_activations`` (each writes finished chunks under ``out/chunks/``), then writes
the final CSVs and ``manifest.json``. A run started again with the same settings and ``out`` skips the
finished chunks and ends with the same tables; different settings in the same ``out`` are refused.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from empirical._checks import positive_int
from empirical.run.distributed import shard_from_environment
from empirical.run.profiles import get_profile, table_model_name
from empirical.run.results import ChunkStore, write_manifest, write_table

__all__ = ["EXPERIMENTS", "TABLE_COLUMNS", "run"]

EXPERIMENTS = ("randomization", "faithfulness", "activations")
TABLE_COLUMNS = {
    "randomization": ("model", "method", "step", "layers", "image", "measure", "normalization", "value",
                      "noise_floor"),
    "faithfulness": ("model", "method", "patch_size", "image", "label", "step", "score"),
    "activations": ("model", "level", "layer", "statistic", "q", "q_high", "q_low", "value"),
}
# the settings that change the numbers of a chunk: a resumed run must agree on all of them
_FINGERPRINT = ("profile", "images", "data", "weights", "seed", "batch_size", "device")


def _experiments(experiments) -> list[str]:
    if isinstance(experiments, str):
        experiments = [experiments]
    chosen = []
    for name in experiments:
        if name == "all":
            chosen.extend(EXPERIMENTS)
        elif name in EXPERIMENTS:
            chosen.append(name)
        else:
            raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}, all")
    if not chosen:
        raise ValueError("experiments must name at least one experiment")
    return [name for name in EXPERIMENTS if name in chosen]


def _names(values, allowed, what: str, default) -> list[str]:
    if values is None:
        return list(default)
    values = [values] if isinstance(values, str) else list(values)
    if not values:
        raise ValueError(f"{what} must name at least one, got an empty list")
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r} for this profile; known: {', '.join(allowed)}")
    return list(dict.fromkeys(values))


def _positive(value, name: str, default: int) -> int:
    return default if value is None else positive_int(value, name)


def _device(device) -> str:
    text = str(device)
    if text != "cpu" and not text.startswith("cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:index]', got {device!r}")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine")
    torch.device(text)  # rejects malformed indices such as "cuda:x"
    return text


def _weights_for(name: str, weights, profile) -> str | None:
    """The ``weights`` argument of ``load_model`` for network ``name``."""
    if profile.random_weights:
        return "random"
    if weights is None or (isinstance(weights, str) and weights == "random"):
        return weights
    if isinstance(weights, dict):
        unknown = [key for key in weights if key not in profile.allowed_models]
        if unknown:
            raise ValueError(f"weights given for unknown model {unknown[0]!r}; known: "
                             f"{', '.join(profile.allowed_models)}")
        value = weights.get(name)
        return None if value is None else str(value)
    return str(weights)


def _load(name: str, argument, device: str, seed: int) -> torch.nn.Module:
    """``load_model``; an explicitly random network is drawn from ``seed`` (same seed, same network)."""
    from empirical.models import load_model

    if argument == "random":
        return load_model(name, "random", device=device, rng=seed)
    return load_model(name, argument, device=device)


def _weights_record(name: str, argument) -> dict | str:
    from empirical import models

    if argument == "random":
        return "random"
    path = Path(argument) if argument is not None else models._find_weights(name)
    return {"path": str(path.resolve()), "sha256": models.weights_checksum(path)}


def _check_resume(out: Path, fingerprint: dict) -> None:
    """Refuse to mix chunks of runs with different settings in one ``out`` folder."""
    path = out / "chunks" / "settings.json"
    if path.is_file():
        earlier = json.loads(path.read_text())
        differing = {key: (earlier.get(key), value) for key, value in fingerprint.items()
                     if earlier.get(key) != value}
        if differing:
            detail = "; ".join(f"{k}: {a!r} before, {b!r} now" for k, (a, b) in differing.items())
            raise ValueError(f"{out} holds finished chunks of a run with other settings ({detail}); "
                             "use another --out, or delete its chunks/ folder to start afresh")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fingerprint, indent=2, default=str) + "\n")


@contextmanager
def _reproducible(device: str):
    """cuDNN picks fixed, deterministic algorithms for the run (same seed, same numbers); restored after."""
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved


def _experiment_function(name: str):
    if name == "randomization":
        from empirical.experiments.randomization import run_randomization

        return run_randomization
    if name == "faithfulness":
        from empirical.experiments.faithfulness import run_faithfulness

        return run_faithfulness
    from empirical.experiments.activations import run_activations

    return run_activations


def run(experiments, *, profile="demo", out, models=None, methods=None, images=None, data=None, weights=None,
        device="cpu", batch_size=None, seed=0, progress=True, workers=None) -> Path:
    """Run ``experiments`` (names of ``EXPERIMENTS`` or ``"all"``) under ``profile`` and write, under
    ``out``, ``<experiment>.csv`` (and ``faithfulness_area.csv``, ``activation_samples.npz``) and
    ``manifest.json``.

    ``models``/``methods``/``images``/``batch_size`` default to the profile's; ``data``: the ImageNet folder
    (``imagenet`` only); ``weights``: None (the packaged demo weights or the torch hub cache), ``"random"``,
    a path (one model) or a dict model -> path. ``workers``: image-decoding processes (default
    ``empirical.run.streaming.default_workers()``; 0: in this process). Returns ``out`` as a Path.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank computes its share of the chunks and rank 0 writes
    the tables and the manifest (``empirical.run.distributed``); the tables are the same bytes.
    """
    from empirical.attribution import available_methods
    from empirical.run.streaming import check_workers, open_images

    started_clock, started = time.perf_counter(), datetime.now(UTC).isoformat(timespec="seconds")
    chosen = _experiments(experiments)
    spec = get_profile(profile)
    model_names = _names(models, spec.allowed_models, "model", spec.models)
    method_names = _names(methods, available_methods(), "method", spec.methods)
    count = _positive(images, "images", spec.images)
    batch = _positive(batch_size, "batch_size", spec.batch_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    device = _device(device)
    workers = check_workers(workers)
    if out is None:
        raise ValueError("out must be a folder path, got None")
    if not isinstance(weights, (str, Path, dict, type(None))):
        raise ValueError(f"weights must be None, 'random', a path or a dict model -> path, got {weights!r}")
    if isinstance(weights, (str, Path)) and str(weights) != "random" and len(model_names) > 1:
        raise ValueError(f"one weights file {str(weights)!r} cannot serve {len(model_names)} models; "
                         "give a dict model -> path (on the command line: --weights MODEL=PATH)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder, got the file {out}")
    arguments = {k: _weights_for(k, weights, spec) for k in model_names}
    config = {"experiments": chosen, "profile": spec.name, "models": model_names, "methods": method_names,
              "images": count, "data": None if data is None else str(Path(data).resolve()),
              "weights": arguments, "device": device, "batch_size": batch, "seed": int(seed),
              "options": {m: {e: spec.options(e, m) for e in chosen} for m in model_names}}
    with shard_from_environment(device) as (shard, device):
        image_set = None if spec.bench else open_images(spec, images=count, data=data, seed=int(seed),
                                                        workers=workers, shard=shard)
        if shard.is_main:
            out.mkdir(parents=True, exist_ok=True)
            _check_resume(out, {key: config[key] for key in _FINGERPRINT})
        shard.barrier()
        if not shard.is_main:  # a refused resume stops rank 0 with the message; the others stop here
            _check_resume(out, {key: config[key] for key in _FINGERPRINT})

        weights_records, dataset = {}, image_set.describe() if image_set is not None else None
        table_names = [table_model_name(spec, n) for n in model_names]
        with _reproducible(device):
            for name in model_names:
                model = _load(name, arguments[name], device, int(seed))
                weights_records[name] = _weights_record(name, arguments[name])
                inputs = image_set if image_set is not None else open_images(spec, images=count, model=name,
                                                                             seed=int(seed), shard=shard)
                dataset = dataset or inputs.describe()
                for experiment in chosen:
                    _experiment_function(experiment)(
                        model, inputs, None, model_name=table_model_name(spec, name),
                        store=ChunkStore(out, experiment),
                        methods=method_names, batch_size=batch, shard=shard,
                        seed=int(seed), device=device, progress=progress, **spec.options(experiment, name))
                    # the tables so far, so that a later failure leaves every finished experiment readable
                    if shard.is_main:
                        _write_tables(out, [experiment], table_names, method_names)
                del model
        if shard.is_main:
            write_manifest(out, profile=spec.name, experiments=chosen, config=config, seed=int(seed),
                           device=config["device"], weights=weights_records, dataset=dataset,
                           bench=spec.bench,
                           started=started, finished=datetime.now(UTC).isoformat(timespec="seconds"),
                           elapsed_s=time.perf_counter() - started_clock,
                           tables=sorted(p.name for p in out.iterdir() if p.suffix in (".csv", ".npz")),
                           device_name=(torch.cuda.get_device_name(device) if device.startswith("cuda")
                                        else "cpu"), processes=shard.world)
        shard.barrier()
    return out


def _write_tables(out: Path, experiments, model_names, method_names) -> None:
    """The final CSVs: this run's models (and methods) from every experiment's chunks."""
    from empirical.experiments.faithfulness import faithfulness_area

    for experiment in experiments:
        table = ChunkStore(out, experiment).collect(TABLE_COLUMNS[experiment])
        keep = table["model"].isin(model_names)
        if "method" in table.columns:
            keep &= table["method"].isin(method_names)
        table = table[keep].reset_index(drop=True)
        write_table(table, out / f"{experiment}.csv")
        if experiment == "faithfulness":
            write_table(faithfulness_area(table), out / "faithfulness_area.csv")
