"""Run the empirical experiments of a profile and write their tables and manifest (docs/results-format.md).

``run(["faithfulness"], out="runs/x")`` loads the profile's networks and images, calls ``run_randomization``,
``run_faithfulness`` (most relevant first, and for ``faithfulness_lerf`` least relevant first),
``run_activations`` and ``run_rewards`` (each writes finished chunks under ``out/chunks/``), then writes the
final CSVs and ``manifest.json``. A run started again with the same settings and ``out`` skips the
finished chunks and ends with the same tables; different settings in the same ``out`` are refused. Every
chunk records the fingerprint of what it was computed from (the content of its images, their labels, the
network's weights, the settings), so that a changed image or weights file under the same paths is computed
anew, never reused, and the tables hold only chunks of this run's inputs.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from empirical._checks import MAX_SEED, positive_int
from empirical._checks import device as checked_device
from empirical.attribution import LRP_METHODS, method_settings
from empirical.experiments._common import known_methods
from empirical.experiments.faithfulness import faithfulness_area
from empirical.measures.accuracy import top_accuracies
from empirical.models import NETWORKS, find_weights, load_model, weights_checksum
from empirical.run.choices import EXPERIMENT_FUNCTIONS, write_choices
from empirical.run.multilabel_inputs import check_finetune_settings, prepare, relative_to_run
from empirical.run.photographs import TRUE_CLASSES
from empirical.run.profiles import get_profile, open_images, table_model_name
from empirical.run.resume import check_resume
from empirical.storage.chunks import ChunkStore, write_table
from empirical.storage.distributed import shard_from_environment
from empirical.storage.manifest import write_manifest
from empirical.storage.streaming import TensorStream, check_workers
from empirical.storage.tables import EXPERIMENTS, TABLE_COLUMNS

__all__ = ["run"]

#: the experiments that explain: they take the profile's method options (``attribution_options``)
_EXPLAINING = ("randomization", "faithfulness", "faithfulness_lerf", "rewards")
# the settings a resumed run must agree on (refused otherwise); what the chunks were computed from (image
# content, weights) is fingerprinted chunk by chunk, so a changed file under the same path is recomputed
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
    if argument == "random":
        return load_model(name, "random", device=device, rng=seed)
    return load_model(name, argument, device=device)


def _weights_record(name: str, argument, out: Path) -> dict | str:
    if argument == "random":
        return "random"
    path = Path(argument) if argument is not None else find_weights(name)
    # inside the run folder (the demo's fine-tuning): relative to it, so the record survives a move of the
    # folder, such as the report's rename of its staging folder into place
    return {"path": relative_to_run(path, out), "sha256": weights_checksum(path)}


def _check_labels(image_set, model_names) -> None:
    """One ValueError, before any work, when a label is no class of a network (``NETWORKS[name].classes``)."""
    if image_set.labels is None or len(image_set) == 0:
        return
    labels = image_set.labels.tolist()
    for name in model_names:
        classes = NETWORKS[name].classes
        bad = next((k for k, label in enumerate(labels) if not 0 <= label < classes), None)
        if bad is not None:
            raise ValueError(f"label {labels[bad]} of image {image_set.names[bad]!r} in {image_set.source} "
                             f"is outside the {classes} classes (0..{classes - 1}) of model {name!r}; fix "
                             "the labels (labels.txt or the class folders)")


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


def run(experiments, *, profile="demo", out, models=None, methods=None, images=None, data=None, weights=None,
        device="cpu", batch_size=None, seed=0, progress=True, workers=None, finetune_settings=None) -> Path:
    """Run ``experiments`` (names of ``EXPERIMENTS`` or ``"all"``) under ``profile`` and write, under
    ``out``, ``<experiment>.csv`` (and ``faithfulness_area.csv``, ``activation_samples.npz``) and
    ``manifest.json``.

    ``models``/``methods``/``images``/``batch_size`` default to the profile's; ``data``: the ImageNet folder
    (``imagenet`` only); ``weights``: None (the packaged demo weights or the torch hub cache), ``"random"``,
    a path (one model) or a dict model -> path. ``workers``: image-decoding processes (default
    ``empirical.storage.streaming.default_workers()``; 0: in this process). The multi-label profiles
    (``demo-multilabel``, ``coco``, ``voc``; seed A.3, ``empirical.run.multilabel_inputs``) load fine-tuned
    networks and explain the highest predicted label with the sigmoid score; ``finetune_settings``
    (``demo-multilabel`` only): any of ``empirical.multilabel.demo.DEMO_SETTINGS``. Returns ``out``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank computes its share of the chunks and rank 0 writes
    the tables and the manifest (``empirical.storage.distributed``); the tables are the same bytes.
    """
    started_clock, started = time.perf_counter(), datetime.now(UTC).isoformat(timespec="seconds")
    chosen = _experiments(experiments)
    spec = get_profile(profile)
    model_names = _names(models, spec.allowed_models, "model", spec.models)
    method_names = _names(methods, known_methods(methods), "method", spec.methods)
    count = _positive(images, "images", spec.images)
    batch = _positive(batch_size, "batch_size", spec.batch_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be a non-negative integer up to {MAX_SEED} (2**32 - 1), got {seed!r}")
    device = checked_device(device)
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
              "options": {m: {e: _experiment_options(spec, e, m, method_names) for e in chosen}
                          for m in model_names},
              # the rule, bias handling and adaptive beta of each LRP method, for the report
              "lrp_settings": {m: method_settings(m) for m in method_names if m in LRP_METHODS}}
    if spec.dataset == "digit-canvases":  # the fine-tuning's sizes make the network: in the fingerprint
        config["finetune_settings"] = check_finetune_settings(finetune_settings)
    fingerprint = {key: config[key] for key in (*_FINGERPRINT, "finetune_settings") if key in config}
    with shard_from_environment(device) as (shard, device):
        multilabel = None
        if spec.multilabel:
            if shard.is_main:
                out.mkdir(parents=True, exist_ok=True)
                check_resume(out, fingerprint)
            shard.barrier()  # rank 0 fine-tunes (or finds the cached network); the others then load it
            multilabel = _prepared_multilabel(spec, shard, out=out, models=model_names, images=count,
                                              data=data, weights=arguments, device=device, seed=int(seed),
                                              progress=progress, finetune_settings=finetune_settings)
            loaded = multilabel.images
            image_set = TensorStream(count=len(loaded), labels=loaded.labels, names=loaded.names,
                                     source=loaded.source, skipped=loaded.skipped, tensor=loaded.images)
        else:
            image_set = None if spec.bench else open_images(spec, images=count, data=data, seed=int(seed),
                                                            workers=workers, shard=shard)
        if image_set is not None:
            _check_labels(image_set, model_names)
        if shard.is_main:
            out.mkdir(parents=True, exist_ok=True)
            check_resume(out, fingerprint)
        shard.barrier()
        if not shard.is_main:  # a refused resume stops rank 0 with the message; the others stop here
            check_resume(out, fingerprint)

        weights_records, dataset = {}, image_set.describe() if image_set is not None else None
        accuracy = {}  # model -> top1, top5 over the labelled images
        # each experiment's rows of this run, by model: only chunks of this run's inputs make the tables
        tables = {experiment: {} for experiment in chosen}
        with _reproducible(device):
            for name in model_names:
                if multilabel is not None:
                    model = multilabel.load(name, device)
                    weights_records[name] = _weights_record(name, multilabel.checkpoints[name], out)
                else:
                    model = _load(name, arguments[name], device, int(seed))
                    weights_records[name] = _weights_record(name, arguments[name], out)
                inputs = image_set if image_set is not None else open_images(spec, images=count, model=name,
                                                                             seed=int(seed), shard=shard)
                dataset = dataset or inputs.describe()
                if inputs.labels is not None and multilabel is None and shard.is_main:
                    # embedded photographs: only those with a true class count (the rest carry the top-1)
                    only = ([n in TRUE_CLASSES for n in inputs.names] if spec.dataset == "photographs"
                            else None)
                    accuracy[table_model_name(spec, name)] = top_accuracies(model, inputs, batch, device,
                                                                            only=only)
                for experiment in chosen:
                    tables[experiment][name] = EXPERIMENT_FUNCTIONS[experiment](
                        model, inputs, None, model_name=table_model_name(spec, name),
                        store=ChunkStore(out, experiment),
                        methods=method_names, batch_size=batch, shard=shard,
                        seed=int(seed), device=device, progress=progress,
                        **_experiment_options(spec, experiment, name, method_names))
                    # the tables so far, so that a later failure leaves every finished experiment readable
                    if shard.is_main:
                        _write_tables(out, experiment, list(tables[experiment].values()), method_names)
                del model
        if dataset is not None:
            dataset = {"name": spec.dataset, **dataset}
        extra = {} if multilabel is None else {"classes": list(multilabel.classes),
                                               "finetune": multilabel.finetune}
        if accuracy:  # per model, over the images with a true label
            for key in ("top1", "top5"):
                extra[key] = {model: value[key] for model, value in accuracy.items()}
            extra["accuracy_images"] = {model: value["images"] for model, value in accuracy.items()}
        if shard.is_main:
            # <experiment>.choices.json: the choices of each test beside its table
            for experiment in chosen:
                write_choices(out, experiment, {table_model_name(spec, n): _experiment_options(
                    spec, experiment, n, method_names) for n in model_names}, method_names)
            write_manifest(out, profile=spec.name, experiments=chosen, config=config, seed=int(seed),
                           device=config["device"], weights=weights_records, dataset=dataset,
                           bench=spec.bench,
                           started=started, finished=datetime.now(UTC).isoformat(timespec="seconds"),
                           elapsed_s=time.perf_counter() - started_clock,
                           tables=sorted(p.name for p in out.iterdir() if p.suffix in (".csv", ".npz")),
                           device_name=(torch.cuda.get_device_name(device) if device.startswith("cuda")
                                        else "cpu"), processes=shard.world, **extra)
        shard.barrier()
    return out


def _experiment_options(spec, experiment: str, model: str, methods) -> dict:
    """``spec.options`` plus the profile's options of the chosen methods; the rewards experiment's base
    methods narrowed to the chosen methods (all of them when none of the profile's is chosen)."""
    options = spec.options(experiment, model)
    method_options = spec.method_options(methods)
    if experiment in _EXPLAINING and method_options:
        options["attribution_options"] = method_options
    if experiment == "rewards" and "base_methods" in options:
        options["base_methods"] = [m for m in options["base_methods"] if m in methods] or list(methods)
    return options


def _prepared_multilabel(spec, shard, **arguments):
    """The fine-tuned networks and images of a multi-label profile: rank 0 fine-tunes (or finds the cached
    run), then every other rank reads what rank 0 left in ``out``."""
    found = prepare(spec, **arguments) if shard.is_main else None
    shard.barrier()
    return found if found is not None else prepare(spec, **arguments)


def _write_tables(out: Path, experiment: str, frames, method_names) -> None:
    """The final CSVs of ``experiment``: the rows each model's experiment call returned (collected from the
    chunks of this run's inputs only), of this run's methods, sorted by every column as ``ChunkStore.collect``
    sorts them."""
    columns = list(TABLE_COLUMNS[f"{experiment}.csv"])
    table = pd.concat([frame[columns] for frame in frames], ignore_index=True)
    if "method" in table.columns:
        table = table[table["method"].isin(method_names)]
    table = table.sort_values(columns, kind="mergesort", na_position="last", ignore_index=True)
    write_table(table, out / f"{experiment}.csv")
    if experiment in ("faithfulness", "faithfulness_lerf"):
        write_table(faithfulness_area(table), out / f"{experiment}_area.csv")
