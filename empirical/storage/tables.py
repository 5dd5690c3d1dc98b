"""The table contracts of a run folder (docs/results-format.md): the experiments, the columns of each
table they write, which columns hold numbers, and the columns of a multi-label fine-tuning's metrics.

The one definition of every empirical table; the experiments, the runner and the public results API
(``empirical.results``) import these.
"""

from __future__ import annotations

__all__ = [
    "ACTIVATION_COLUMNS",
    "CORE_EXPERIMENTS",
    "EXPERIMENTS",
    "EXPERIMENT_TABLES",
    "FAITHFULNESS_AREA_COLUMNS",
    "FAITHFULNESS_COLUMNS",
    "FINETUNE_METRICS_COLUMNS",
    "NUMERIC_COLUMNS",
    "RANDOMIZATION_COLUMNS",
    "RELEVANCE_BUDGET_COLUMNS",
    "REWARDS_COLUMNS",
    "TABLE_COLUMNS",
]

#: the experiments every run of the first releases had; a manifest that lists none had these
CORE_EXPERIMENTS = ("randomization", "faithfulness", "activations")
#: every experiment, in the order a run does them (least-relevant-first faithfulness and the
#: noise-injection "rewards" experiment)
EXPERIMENTS = ("randomization", "faithfulness", "faithfulness_lerf", "activations", "rewards")
RANDOMIZATION_COLUMNS = ("model", "method", "step", "layers", "image", "measure", "normalization", "value",
                         "noise_floor")
FAITHFULNESS_COLUMNS = ("model", "method", "patch_size", "image", "label", "step", "score")
FAITHFULNESS_AREA_COLUMNS = ("model", "method", "patch_size", "image", "area")
ACTIVATION_COLUMNS = ("model", "level", "layer", "statistic", "q", "q_high", "q_low", "value")
#: one score of one test on one image for base method ``method`` plus noise of level ``level``; ``theory``:
#: the closed form where theory.noise_injection gives one, else empty
REWARDS_COLUMNS = ("model", "method", "level", "test", "image", "value", "theory")
#: ``empirical.relevance_budget``'s table (returned, not written to a run folder): per image the explained
#: logit and its shares (supplement eq. 52), ``conserved`` = input + biases + thresholds, ``accounted`` =
#: conserved + absorbed
RELEVANCE_BUDGET_COLUMNS = ("image", "logit", "input", "biases", "thresholds", "conserved", "absorbed",
                            "accounted")
#: columns of each table of a run folder, by file name
TABLE_COLUMNS = {
    "randomization.csv": RANDOMIZATION_COLUMNS,
    "faithfulness.csv": FAITHFULNESS_COLUMNS,
    "faithfulness_area.csv": FAITHFULNESS_AREA_COLUMNS,
    "faithfulness_lerf.csv": FAITHFULNESS_COLUMNS,
    "faithfulness_lerf_area.csv": FAITHFULNESS_AREA_COLUMNS,
    "activations.csv": ACTIVATION_COLUMNS,
    "rewards.csv": REWARDS_COLUMNS,
}
#: the columns of each table that hold numbers (empty cells, nan and inf count as numbers)
NUMERIC_COLUMNS = {
    "randomization.csv": ("step", "image", "value", "noise_floor"),
    "faithfulness.csv": ("patch_size", "image", "step", "score"),
    "faithfulness_area.csv": ("patch_size", "image", "area"),
    "faithfulness_lerf.csv": ("patch_size", "image", "step", "score"),
    "faithfulness_lerf_area.csv": ("patch_size", "image", "area"),
    "activations.csv": ("level", "value"),
    "rewards.csv": ("level", "image", "value", "theory"),
}
#: columns of ``metrics.csv`` of a multi-label fine-tuning (seed A.3), one row per epoch (0: untrained head)
FINETUNE_METRICS_COLUMNS = ("epoch", "train_loss", "val_loss", "val_map", "val_classes", "seconds")
#: the tables each experiment writes
EXPERIMENT_TABLES = {
    "randomization": ("randomization.csv",),
    "faithfulness": ("faithfulness.csv", "faithfulness_area.csv"),
    "faithfulness_lerf": ("faithfulness_lerf.csv", "faithfulness_lerf_area.csv"),
    "activations": ("activations.csv",),
    "rewards": ("rewards.csv",),
}
