"""Sections I and J of the report carry the level mapping: our level -> module name -> the seed's level.

Oracles: the demo network's own activations (``activation_statistics``: its module names in forward order),
the seed's numbering for a network it shows (its levels from 0, figure 7 for DenseNet-121) and the words
"no counterpart in the seed" for the networks it does not show (the digits demo network, EfficientNet-Lite).
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import torch

from empirical.measures.activations import activation_statistics
from empirical.models import build_model
from reports import overtaking, sections
from reports.render import Table


def _activations():
    table = activation_statistics(build_model("demo").eval(), torch.rand(2, 3, 12, 12))
    frames = [table.assign(model=name) for name in ("demo", "densenet121", "efficientnet-lite0")]
    return pd.concat(frames, ignore_index=True)


def _context(tmp_path, table):
    (tmp_path / "tables").mkdir()
    (tmp_path / "figures").mkdir()
    run = SimpleNamespace(table=lambda name: table, path=tmp_path)
    return SimpleNamespace(run=run, out=tmp_path, missing=[], quick=True)


def test_sections_i_and_j_tables_carry_our_level_module_and_seed_level(tmp_path):
    table = _activations()
    context = _context(tmp_path, table)
    demo_layers = list(dict.fromkeys(table.loc[table["model"] == "demo", "layer"]))
    for section in (sections.overtaking_section(context, None), sections.nonpositive_section(context)):
        mapping = next(block.frame for block in section.blocks
                       if isinstance(block, Table) and "seed_level" in block.frame.columns)
        assert list(mapping.columns[:4]) == ["model", "level", "module", "seed_level"]
        demo = mapping[mapping["model"] == "demo"]
        assert list(demo["module"]) == demo_layers and list(demo["level"]) == list(range(len(demo_layers)))
        assert demo["seed_level"].str.startswith("no counterpart in the seed").all()
        assert demo["seed_level"].str.contains("demo network").all()
        lite = mapping[mapping["model"] == "efficientnet-lite0"]
        assert lite["seed_level"].str.startswith("no counterpart in the seed").all()
        dense = mapping[mapping["model"] == "densenet121"]
        assert list(dense["seed_level"]) == [str(n) for n in range(len(demo_layers))]
        assert dense["seed_figure"].str.startswith("figure 7").all()


def test_real_activation_rows_name_the_seed_level():
    assert overtaking.seed_level_text("resnet50", 9) == "9"
    assert overtaking.seed_level_text("mynet", 0).startswith("no counterpart in the seed")
