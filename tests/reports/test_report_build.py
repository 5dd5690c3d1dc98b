"""The report built from fixed result tables: every section, an embedded image per figure, no broken links."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reports import build_report
from reports.__main__ import main

SECTIONS = ("theorems", "randomization", "faithfulness", "multilabel", "overtaking", "nonpositive", "rewards",
            "claims", "provenance")


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.images, self.text = set(), [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def source(tmp_path_factory, results_writers) -> Path:
    write_empirical_run, write_simulations = results_writers
    folder = tmp_path_factory.mktemp("source")
    write_empirical_run(folder / "empirical", models=("demo", "tiny"), images=4)
    write_empirical_run(folder / "empirical-multilabel", images=4, profile="demo-multilabel")
    write_simulations(folder / "simulations", failing="adaptive_beta")
    return folder


@pytest.fixture(scope="module")
def report(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    build_report(out, source=source, progress=False)
    return out


def _parse(path: Path) -> _Collector:
    collector = _Collector()
    collector.feed(path.read_text())
    collector.close()
    return collector


@pytest.mark.slow
def test_html_holds_every_section_and_parses(report):
    page = _parse(report / "report.html")
    assert set(SECTIONS) <= page.ids


@pytest.mark.slow
def test_multilabel_section_is_built_from_the_sources_multilabel_run(report):
    page = _parse(report / "report.html")
    assert "multilabel" in page.ids and "sigmoid" in "".join(page.text)
    assert (report / "empirical-multilabel" / "manifest.json").is_file()
    names = {path.name for path in (report / "figures").glob("multilabel_*.png")}
    assert {f"multilabel_randomization_ssim_{n}.png" for n in ("second-moment", "max-abs")} <= names
    assert any(name.startswith("multilabel_faithfulness_patch") for name in names)
    assert (report / "tables" / "multilabel_faithfulness_tests.csv").is_file()


@pytest.mark.slow
def test_html_embeds_one_image_per_figure_and_has_no_broken_links(report):
    page = _parse(report / "report.html")
    figures = sorted((report / "figures").glob("*.png"))
    assert (
        len(page.images) == len(figures) >= 13
    )  # 6 randomisation, 3 faithfulness, 2+1 overtaking, 1 sparsity
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert all(href.startswith("#") and href[1:] in page.ids for href in page.hrefs)


@pytest.mark.slow
def test_markdown_links_point_at_files_beside_it(report):
    import re

    text = (report / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and all((report / link).is_file() for link in links)
    for table in re.findall(r"`(tables/[^`]+\.csv)`", text):
        assert (report / table).is_file(), table


@pytest.mark.slow
def test_verdicts_follow_the_simulation_tables(report):
    import pandas as pd

    table = pd.read_csv(report / "tables" / "theorems.csv").set_index("result")
    verdict = {title.split(":")[0]: value for title, value in table["verdict"].items()}
    assert verdict["Eq. 1-2"] == "disagrees"  # the fixture made every adaptive_beta row fail
    assert verdict["Section G"] == "agrees"
    assert verdict["Theorem 2 on trained networks (section I)"] == "agrees"  # P recomputed = P stored


@pytest.mark.slow
def test_report_folder_holds_its_inputs(report):
    assert (report / "empirical" / "manifest.json").is_file()
    assert (report / "empirical" / "faithfulness_area.csv").is_file()
    assert (report / "simulations" / "cauchy_overtake.csv").is_file()


def test_from_a_folder_missing_a_table_names_it(source, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(source / "empirical", broken)
    (broken / "faithfulness_area.csv").unlink()
    code = main(["--from", str(broken), "--out", str(tmp_path / "out"), "--no-progress"])
    message = capsys.readouterr().err
    assert code == 2
    assert "faithfulness_area.csv" in message and "Traceback" not in message
    assert not (tmp_path / "out" / "report.html").exists()


def test_from_a_folder_that_is_no_run_is_a_clear_error(tmp_path, capsys):
    code = main(["--from", str(tmp_path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 2
    assert "manifest.json" in capsys.readouterr().err


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--from" in capsys.readouterr().out


def test_negative_seed_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--seed", "-1"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_quick_run_builds_a_complete_report(tmp_path):
    html_path = build_report(tmp_path, quick=True, progress=False)
    page = _parse(html_path)
    assert set(SECTIONS) <= page.ids
    figures = sorted((tmp_path / "figures").glob("*.png"))
    assert len(page.images) == len(figures) >= 9  # 6 randomisation, 2 faithfulness curves, 1 area ranking
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    for name in ("randomization.csv", "faithfulness.csv", "faithfulness_area.csv", "manifest.json"):
        assert (tmp_path / "empirical" / name).is_file(), name
    assert len(list((tmp_path / "simulations").glob("*.csv"))) == 7
    assert (tmp_path / "tables" / "theorems.csv").is_file()
