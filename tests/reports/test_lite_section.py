"""The EfficientNet-Lite0 section: its tables from the pretrained network on the embedded photographs
(``empirical.results.lite_evidence``, its argument checks in tests/empirical/run/test_lite_evidence.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.mark.slow
def test_lite_section_holds_conservation_zeros_and_accuracy():
    from reports.lite import lite_evidence, lite_markdown

    tables = lite_evidence(3)
    conserving = tables["conservation"][tables["conservation"]["promises conservation"]]
    assert conserving["median conserved / logit"].between(0.95, 1.05).all()
    epsilon = conserving[conserving["rule"].str.startswith("lrp-epsilon")].iloc[0]
    assert epsilon["conserved over"] == "input and biases"
    # the biases take a share of either sign: input and biases are each off 1, together on it
    assert abs(epsilon["median biases / logit"]) > 0.05
    zeros = tables["relu6_zeros"]
    assert len(zeros) == 33 and set(zeros["step"]) == {"stem", "expand", "depthwise", "head"}
    assert zeros["zero_fraction"].between(0, 1).all()
    text = lite_markdown(tables)
    assert text.startswith("## EfficientNet-Lite0, pretrained, 3 photographs")


def _zeros(fractions):
    import pandas as pd

    return pd.DataFrame({"call": range(len(fractions)), "step": "depthwise", "zero_fraction": fractions})


def test_relu6_analogue_rows_follow_their_stated_thresholds():
    """Oracle: the rows' thresholds applied by hand to hand-made zero fractions (most of the calls >= 30%;
    every call from the 11th on >= 20%)."""
    from types import SimpleNamespace

    from reports import claims

    table = lambda tables: claims.claims_table(SimpleNamespace(  # noqa: E731
        run=None, rewards_verdicts=None, lite_tables=tables)).set_index("claim")["verdict"]
    most, later = claims.CLAIMS[10], claims.CLAIMS[11]
    words = table({"relu6_zeros": _zeros([0.5] * 6 + [0.1] * 6)})  # 50%: not most; the 11th, 12th: 0.1
    assert (words[most], words[later]) == ("does not hold", "does not hold")
    words = table({"relu6_zeros": _zeros([0.1] * 5 + [0.5] * 7)})  # 7 of 12 >= 0.3; calls 11-12 >= 0.2
    assert (words[most], words[later]) == ("holds", "holds")
    assert table(None)[most] == "not testable here"


def test_section_texts_state_the_numbers_of_their_tables():
    """Oracle: the hand-made tables' own numbers, formatted as the texts state them."""
    import pandas as pd

    from reports.lite_section import _conservation_text, _zeros_text

    conservation = pd.DataFrame({"rule": ["a", "b", "c", "e"],
                                 "promises conservation": [True, True, False, True],
                                 "conserved over": ["input", "input", "", "input and biases"],
                                 "median sum R / logit": [1.0, 0.9, 0.123456, -0.25], "min": 0.0, "max": 2.0,
                                 "median biases / logit": [0.0, 0.0, 0.0, 1.2449],
                                 "median conserved / logit": [1.0, 0.9, float("nan"), 0.9949]})
    text = _conservation_text(conservation)
    assert "2 of the 3 rules that promise it" in text and "(outside: b)" in text and "c 0.123" in text
    assert "e: input -0.250, biases 1.245, together 0.995" in text
    zeros = _zeros([0.25, 0.75])
    assert "depthwise (2 calls): mean 0.500, range 0.250-0.750" in _zeros_text(zeros)


def test_report_profile_keeps_the_papers_settings_and_cuts_only_noise_injection():
    """Oracle: the paper's settings (supplement A.1) as the profiles module states them."""
    from empirical.run.profiles import PAPER_FAITHFULNESS, get_profile
    from reports.lite_section import LITE_REPORT_REWARDS, report_profile

    profile, full = report_profile(), get_profile("lite0")
    assert profile.faithfulness == PAPER_FAITHFULNESS and profile.image_size == 224
    assert profile.rewards == LITE_REPORT_REWARDS
    assert dict(profile.__dict__, rewards=None) == dict(full.__dict__, rewards=None)


def test_quick_banner_says_lite0_is_left_out():
    from reports.build import quick_settings

    assert quick_settings()["EfficientNet-Lite0"].startswith("left out")


def test_what_was_run_names_the_pretrained_run_beside_the_demo():
    """Oracle: the manifests handed in; the summary's line names each run with its network and images."""
    from types import SimpleNamespace

    from reports.summary import _what_was_run

    def run(profile, model, images, name):
        manifest = {"profile": profile, "device": "cpu", "dataset": {"images": images, "name": name},
                    "config": {"models": [model], "methods": ["gradient", "lrp-epsilon"]}}
        return SimpleNamespace(manifest=manifest, tables={})

    context = SimpleNamespace(run=run("demo", "demo", 32, "digits"), multilabel=None, simulations=[1, 2],
                              seed=0, lite=run("lite0", "efficientnet-lite0", 3, "photographs"))
    line = _what_was_run(context)
    assert "empirical: networks demo on 32 images (digits)" in line
    assert "pretrained: networks efficientnet-lite0 on 3 images (photographs)" in line
    assert "pretrained" not in _what_was_run(SimpleNamespace(**{**vars(context), "lite": None}))
