"""One harness run: floors, the suite's stages and (optionally) the peers, timed in one process.

Each stage's images/s is set against its floor measured in the same process on the same batch;
each peer's rate against the stage of ours that does the same work.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from benchmarks import table
from benchmarks.config import BenchConfig
from benchmarks.floors import floor_callable, measure_floors
from benchmarks.peers import SPEEDUP_TARGETS, peer_tasks
from benchmarks.stages import StageUnavailable, all_stages, reference_maps
from benchmarks.table import FLOOR_TARGET, Row
from benchmarks.timing import measure, measure_interleaved
from benchmarks.workload import make_workload


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} torch threads)"


def _error_text(error: BaseException) -> str:
    last = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
    return f"{type(error).__name__}: {error}{where}".replace("\n", " ")


@dataclass
class _Measured:
    rate: float = float("nan")
    companion_rate: float = float("nan")
    status: str = "ok"
    detail: str = ""
    call: tuple | None = None  # (callable, items per call), for a later comparison


def _timed(build, workload, config, reference, *, warmup, repeats, companion=None) -> _Measured:
    """Build and time one measurement; a missing piece or a crash becomes its status.

    With ``companion`` = (callable, items per call), that callable is timed in turn with the measurement,
    one call each per round, so that both see the same load; its rate is ``companion_rate``.
    """
    try:
        built = build(workload, config, reference)
        call = built if isinstance(built, tuple) else (built, workload.batch_size)
        if companion is None:
            timing = measure(call[0], items_per_call=call[1], device=workload.device, warmup=warmup,
                             repeats=repeats)
            return _Measured(rate=timing.rate, call=call)
        timings = measure_interleaved({"measured": call, "companion": companion}, device=workload.device,
                                      warmup=warmup, repeats=repeats)
        return _Measured(timings["measured"].rate, timings["companion"].rate, call=call)
    except StageUnavailable as error:
        return _Measured(status="not available", detail=str(error))
    except ImportError as error:
        return _Measured(status="not available", detail=_error_text(error))
    except Exception as error:  # a crash inside a stage or a peer is a result, not the end of the run
        return _Measured(status="error", detail=_error_text(error))


def _check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch.cuda.is_available() is False")


def run_benchmarks(config: BenchConfig, *, out: Path | None = None, progress: bool = True) -> pd.DataFrame:
    """Measure every floor, stage and (with ``config.with_peers``) peer; return the tidy table.

    With ``out``, ``out/benchmarks.csv`` and ``out/benchmarks.json`` are rewritten after every row, so
    an interrupted run keeps what it measured.
    """
    from empirical.storage.progress import EstimatedBar

    _check_device(config.device)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)  # an unusable folder fails before minutes of timing
    started = dt.datetime.now(dt.UTC)
    workload = make_workload(config.model, batch_size=config.batch_size, image_size=config.image_size,
                             device=config.device, seed=config.seed)
    reference = reference_maps(workload)
    context = {"model": config.model, "device": config.device, "size": config.size,
               "batch_size": config.batch_size, "image_size": config.image_size}
    manifest = {"config": config.as_dict(), "device_name": device_name(config.device),
                "versions": table.versions(), "model_source": workload.source, "bench": True,
                "note": "random weights and random images: the numbers are for speed only",
                "started": started.isoformat()}
    rows: list[Row] = []

    def record(row: Row) -> None:
        rows.append(row)
        if out is not None:
            manifest["finished"] = dt.datetime.now(dt.UTC).isoformat()
            manifest["elapsed_s"] = round(time.perf_counter() - clock, 2)
            table.write(table.to_frame(rows, context), manifest, Path(out))

    clock = time.perf_counter()
    stages = all_stages(config)
    peers = peer_tasks() if config.with_peers else []
    # the estimate line (at the rate of the first unit, the floor passes, whose timings are kept) comes
    # before the bar is drawn
    bar = EstimatedBar(1 + len(stages) + len(peers), enabled=progress, description="benchmarks", unit="stage")

    floors = measure_floors(workload, warmup=config.warmup, repeats=config.repeats)
    for name, timing in floors.items():
        record(Row("floor", f"floor {name}", "torch" if "zennit" not in name else "zennit", name,
                   rate_per_s=timing.rate))
    bar.update(1)

    ours: dict[str, _Measured] = {}
    for stage in stages:
        bar.set_postfix_str(stage.name)
        # the floor is timed in turn with the stage, so that both see the same load on the machine
        floor_call = (floor_callable(stage.floor, workload), workload.batch_size)
        result = _timed(stage.build, workload, config, reference, warmup=config.warmup,
                        repeats=config.repeats, companion=floor_call)
        floor_rate = result.companion_rate if result.status == "ok" else floors[stage.floor].rate
        floor_rate /= stage.floor_passes
        ratio = result.rate / floor_rate
        ours[stage.name] = result
        record(Row("stage", stage.name, "sanity-audit", stage.name.split()[0], rate_per_s=result.rate,
                   floor=stage.floor + (f" / {stage.floor_passes}" if stage.floor_passes > 1 else ""),
                   floor_per_s=floor_rate, of_floor=ratio, target=f">= {FLOOR_TARGET:.2f} of floor",
                   verdict=table.floor_verdict(ratio), status=result.status,
                   detail=result.detail or stage.detail))
        bar.update(1)

    for peer in peers:
        bar.set_postfix_str(f"{peer.backend} {peer.name}")
        # a peer is timed once (after peer_warmup calls): some take minutes a call
        # and in turn with our stage doing the same work, whose rate in that round gives the speed-up
        mine = ours.get(peer.stage, _Measured(status="not available"))
        with warnings.catch_warnings():  # Captum and Quantus warn at every call about hooks and gradients
            warnings.simplefilter("ignore")
            result = _timed(peer.build, workload, config, reference, warmup=config.peer_warmup, repeats=1,
                            companion=mine.call)
        our_rate = result.companion_rate if mine.call is not None else mine.rate
        speedup = our_rate / result.rate
        target = SPEEDUP_TARGETS.get(peer.stage) if peer.backend == "quantus" else None
        record(Row("peer", peer.stage, peer.backend, peer.name, unit=peer.unit, rate_per_s=result.rate,
                   speedup=speedup, target=f">= {target:g}x" if target else "",
                   verdict=table.speedup_verdict(speedup, target), status=result.status,
                   detail=result.detail or peer.detail))
        bar.update(1)
    bar.close()
    return table.to_frame(rows, context)
