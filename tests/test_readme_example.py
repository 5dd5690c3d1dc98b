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


@pytest.mark.slow
def test_readme_own_model_example_runs_on_mobilenet_v3_with_only_the_network_lines_changed():
    """The same script on torchvision's MobileNetV3-small: only the lines naming the network, its blocks and
    the methods change; every task runs with the gradient methods, and LRP is refused by name (no rule for
    Hardswish), never a silent zero map."""
    import empirical

    code = _own_model_example()
    swaps = {"vgg11_bn": "mobilenet_v3_small",
             '["gradient", "lrp-alpha1beta0"]': '["gradient", "gradient-x-input"]',
             '["classifier", "features.22", "features.15", "features.8"]':
                 '["classifier", "features.12", "features.8", "features.4"]'}
    for old, new in swaps.items():
        assert old in code, old
        code = code.replace(old, new)
    namespace = {}
    exec(compile(code, "README.md (MobileNetV3)", "exec"), namespace)  # noqa: S102
    for table in ("per_layer", "by_block", "smprt", "emprt", "morf", "lerf", "rewards"):
        assert set(namespace[table]["method"].str.replace(r"\+noise.*", "", regex=True)) >= set(
            namespace["methods"]), table
        assert namespace[table].select_dtypes("number").notna().any().any(), table
    assert namespace["by_block"]["step"].max() == len(namespace["blocks"])
    with pytest.raises(empirical.LRPNotSupportedError, match="Hardswish"):
        empirical.mprt(namespace["model"], namespace["images"], methods=["lrp-alpha1beta0"],
                       schedule="per-layer")
