"""The README's "Use your own model" example runs as it stands (torchvision VGG11-BN, random weights), and
every table it builds has a row per method: the oracle is the README text itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _own_model_example() -> str:
    match = re.search(r"<!-- example: own-model -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README lost its own-model example"
    return match.group(1)


@pytest.mark.slow
def test_readme_own_model_example_runs_as_written(capsys):
    namespace = {}
    exec(compile(_own_model_example(), "README.md", "exec"), namespace)  # noqa: S102
    for table in ("per_layer", "by_block", "smprt", "emprt", "morf", "lerf", "rewards"):
        assert set(namespace[table]["method"].str.replace(r"\+noise.*", "", regex=True)) >= set(
            namespace["methods"]), table
    assert namespace["by_block"]["step"].max() == len(namespace["blocks"])
    assert "lrp-alpha1beta0" in capsys.readouterr().out
