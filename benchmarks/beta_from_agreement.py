"""How much the two adaptive-beta definitions disagree, per network (the docs' figure).

``lrp-adaptive-beta`` takes beta from the layer's inputs (``beta_from="inputs"``, seed eq. 2: -N/(P+N),
bias excluded) or from its output (``beta_from="output"``, the authors' public code: -N/z, z including the
bias). Without biases P+N = z and the two are the same rule; after the batch-norm merge every layer has a
bias, and the maps differ. For every image this module measures the Pearson correlation between the two
maps and each map's sum(R)/logit, on the random networks of :mod:`empirical.attribution.conservation`
(seeded weights, batch-norms calibrated far from the identity, classifier scaled to logits near 30):
ResNet-50, DenseNet-121 and EfficientNet-B0 at 64x64 (N(0, 1) inputs) and the demo network at its own
32x32 (U(0, 1) inputs), 3 images each, one torch thread.

    python -m benchmarks.beta_from_agreement --out docs/beta-from-agreement.png

writes the figure and, beside it, a CSV with one row per network and image (same stem, ``.csv``).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import torch
from torch import nn

from empirical.attribution.conservation import calibrated_random_model, pearson_per_image, relevance_ratios
from empirical.storage.progress import EstimatedBar
from theory.cli_options import add_no_progress, add_out, add_seed, default_help, positive_int

#: images explained at once (the calibration batch of each network is the first of them)
BATCH = 8
#: (network, image size); the demo network sees [0, 1] images of its own size
AGREEMENT_NETWORKS = (("resnet50", 64), ("densenet121", 64), ("efficientnet-b0", 64), ("demo", 32))
AGREEMENT_FIELDS = ("network", "image", "pearson", "sum_ratio_inputs", "sum_ratio_output")


def network_inputs(name: str, size: int, *, images: int, rng: torch.Generator) -> torch.Tensor:
    """``images`` inputs of ``size`` x ``size``: U(0, 1) for the demo network, N(0, 1) for the others."""
    if name == "demo":
        return torch.rand(images, 3, size, size, generator=rng)
    return torch.randn(images, 3, size, size, generator=rng)


def agreement_rows(model: nn.Module, x: torch.Tensor, network: str, *, first_image: int = 0) -> list[dict]:
    """One row per image of ``x`` (numbered from ``first_image``): Pearson correlation of the
    ``lrp-adaptive-beta`` maps with ``beta_from="inputs"`` and ``"output"`` (top class of each image), and
    each map's sum(R)/logit."""
    inputs = relevance_ratios(model, x, "lrp-adaptive-beta", beta_from="inputs")
    output = relevance_ratios(model, x, "lrp-adaptive-beta", beta_from="output")
    pearson = pearson_per_image(inputs["map"], output["map"])
    return [{"network": network, "image": first_image + i, "pearson": pearson[i].item(),
             "sum_ratio_inputs": inputs["sum"][i].item(), "sum_ratio_output": output["sum"][i].item()}
            for i in range(x.shape[0])]


def measure(networks=AGREEMENT_NETWORKS, *, images: int = 3, seed: int = 0,
            progress: bool = False) -> list[dict]:
    """:func:`agreement_rows` for every (network, size) of ``networks``, each network from its own generator
    seeded with ``seed``: the first batch of inputs is drawn, the model calibrated on it and drawn, then the
    further batches (``BATCH`` images each), so that memory is bounded by a batch. With ``progress``, the
    estimated time is printed as a line after the first batch, then a bar over all batches."""
    batches = [(name, size, start) for name, size in networks for start in range(0, images, BATCH)]
    rows = []
    with EstimatedBar(len(batches), enabled=progress, description="beta_from_agreement", unit="batch",
                      resumable=False) as bar:
        for name, size, start in batches:
            count = min(BATCH, images - start)
            if start == 0:
                rng = torch.Generator().manual_seed(seed)
                x = network_inputs(name, size, images=count, rng=rng)
                model = calibrated_random_model(name, x, rng=rng)
            else:
                x = network_inputs(name, size, images=count, rng=rng)
            rows.extend(agreement_rows(model, x, name, first_image=start))
            bar.update(1)
    return rows


def medians(rows: list[dict]) -> dict[str, dict[str, float]]:
    """{network: {column: median over images}} for the numeric columns, networks in first-seen order."""
    by_network: dict[str, list[dict]] = {}
    for row in rows:
        by_network.setdefault(row["network"], []).append(row)
    return {network: {column: float(torch.tensor([r[column] for r in group]).median())
                      for column in AGREEMENT_FIELDS[2:]}
            for network, group in by_network.items()}


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=AGREEMENT_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: (f"{value:.6f}" if isinstance(value, float) else value)
                             for key, value in row.items()})


def draw(rows: list[dict], path: Path) -> None:
    """Two panels: per-image Pearson(inputs, output) and sum(R)/logit of both maps; points per image, a
    bar at each network's median."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    networks = list(dict.fromkeys(row["network"] for row in rows))
    summary = medians(rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for index, network in enumerate(networks):
        group = [row for row in rows if row["network"] == network]
        left.scatter([index] * len(group), [row["pearson"] for row in group], color="C0", alpha=0.7)
        left.hlines(summary[network]["pearson"], index - 0.25, index + 0.25, color="k")
        left.annotate(f"{summary[network]['pearson']:.2f}", (index + 0.28, summary[network]["pearson"]),
                      va="center", fontsize=8)
        for offset, column, colour, label in ((-0.15, "sum_ratio_inputs", "C1", 'beta_from="inputs"'),
                                              (0.15, "sum_ratio_output", "C2", 'beta_from="output"')):
            right.scatter([index + offset] * len(group), [row[column] for row in group], color=colour,
                          alpha=0.7, label=label if index == 0 else None)
            right.hlines(summary[network][column], index + offset - 0.1, index + offset + 0.1, color=colour)
    for axis in (left, right):
        axis.set_xticks(range(len(networks)), networks)
        axis.set_xlim(-0.6, len(networks) - 0.4)
    left.set_ylabel("Pearson(inputs map, output map), per image")
    left.set_title("agreement of the two adaptive betas (bar: median)")
    right.set_ylabel("sum(R) / logit")
    right.set_title("relevance handed to the input (bar: median)")
    right.legend(loc="best", fontsize=8)
    fig.suptitle("lrp-adaptive-beta: beta from inputs (eq. 2) vs from output (authors' code); random "
                 "calibrated networks", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m benchmarks.beta_from_agreement``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.beta_from_agreement", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_out(parser, "the figure to write (and a CSV of the same stem beside it)",
            Path("docs/beta-from-agreement.png"), metavar="FILE")
    parser.add_argument("--images", type=positive_int, default=3, metavar="N",
                        help=default_help("images a network", 3))
    add_seed(parser, "seed of the random networks and images")
    add_no_progress(parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rows = measure(images=args.images, seed=args.seed, progress=not args.no_progress)
    if not all(math.isfinite(row[column]) for row in rows for column in AGREEMENT_FIELDS[2:]):
        raise SystemExit(f"non-finite values measured: {rows}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out.with_suffix(".csv"))
    draw(rows, args.out)
    for network, values in medians(rows).items():
        print(f"{network}: median Pearson {values['pearson']:.3f}, median sum(R)/logit "
              f"inputs {values['sum_ratio_inputs']:.3f}, output {values['sum_ratio_output']:.3f}")
    print(f"wrote {args.out} and {args.out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
