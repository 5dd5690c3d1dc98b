"""The report built from fixed result tables: every section, an embedded image per figure, no broken links."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reports import build_report
from reports.__main__ import main

SECTIONS = ("summary", "theorems", "randomization", "faithfulness", "multilabel", "overtaking", "nonpositive",
            "rewards", "claims", "provenance")


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


def _clocked_build(out: Path) -> dict:
    """Build a --quick report into ``out`` with a clock of our own around it and around every call of the
    empirical runner on OUT/empirical: the oracle for the times the report records."""
    import time

    from empirical import results

    clock = {"runner_s": 0.0, "runner_calls": 0}
    real_run = results.run

    def timed_run(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real_run(*args, **kwargs)
        finally:
            if Path(kwargs["out"]).name == "empirical":
                clock["runner_s"] += time.perf_counter() - started
                clock["runner_calls"] += 1

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(results, "run", timed_run)
        started = time.perf_counter()
        build_report(out, quick=True, progress=False)
        clock["build_s"] = time.perf_counter() - started
    return clock


@pytest.fixture(scope="module")
def quick_build(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("quick")
    return out, _clocked_build(out)


@pytest.fixture(scope="module")
def quick_report(quick_build) -> Path:
    return quick_build[0]


@pytest.fixture(scope="module")
def resumed_quick_build(quick_build, tmp_path_factory) -> tuple[Path, dict]:
    """The quick report built a second time into a copy of its folder: every chunk is there already."""
    out = tmp_path_factory.mktemp("resumed") / "out"
    shutil.copytree(quick_build[0], out)
    return out, _clocked_build(out)


def _provenance(report: Path):
    import pandas as pd

    return pd.read_csv(report / "tables" / "provenance_report.csv", keep_default_na=False).set_index(
        "item")["value"]


class _BodyText(HTMLParser):
    """The text a reader sees: the body's, not the head's title and style."""

    def __init__(self):
        super().__init__()
        self.in_body, self.text = False, []

    def handle_starttag(self, tag, attrs):
        self.in_body = self.in_body or tag == "body"

    def handle_data(self, data):
        if self.in_body:
            self.text.append(data)


def _visible_text(path: Path) -> str:
    parser = _BodyText()
    parser.feed(path.read_text())
    parser.close()
    return " ".join(" ".join(parser.text).split())


def _summary_of(text: str) -> str:
    start = text.index("This report audits")  # the summary's first paragraph, after the contents
    return text[start: text.index("1. Theorem by theorem", start)]


@pytest.mark.slow
def test_quick_run_builds_a_complete_report(quick_report):
    page = _parse(quick_report / "report.html")
    assert set(SECTIONS) <= page.ids
    figures = sorted((quick_report / "figures").glob("*.png"))
    assert len(page.images) == len(figures) >= 9  # 6 randomisation, 2 faithfulness curves, 1 area ranking
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    for name in ("randomization.csv", "faithfulness.csv", "faithfulness_area.csv", "manifest.json"):
        assert (quick_report / "empirical" / name).is_file(), name
    assert len(list((quick_report / "simulations").glob("*.csv"))) == 7
    assert (quick_report / "tables" / "theorems.csv").is_file()


def _claims_in_summary(report: Path, text: str) -> None:
    """Every claim of tables/claims.csv (the ledger of section 7) with its verdict, before section 1."""
    import pandas as pd

    ledger = pd.read_csv(report / "tables" / "claims.csv")
    summary = _summary_of(text)
    assert len(ledger) >= 8
    for claim, verdict in zip(ledger["claim"], ledger["verdict"], strict=True):
        claim = " ".join(claim.split())
        assert claim in summary, claim
        assert summary.index(verdict, summary.index(claim)) - summary.index(claim) < len(claim) + 30


@pytest.mark.slow
def test_summary_leads_the_report_with_every_claims_verdict(report):
    page = _parse(report / "report.html")
    html_text = (report / "report.html").read_text()
    assert html_text.index('<section id="summary">') < html_text.index('<section id="theorems">')
    assert "Binder et al., CVPR 2023" in _visible_text(report / "report.html")[:3000]
    for text in (_visible_text(report / "report.html"), " ".join((report / "report.md").read_text().split())):
        _claims_in_summary(report, " ".join(text.replace("|", " ").split()))
    assert "summary" in page.ids


@pytest.mark.slow
def test_summary_names_what_was_run_and_the_run_time_of_provenance(report):
    import pandas as pd

    text = _visible_text(report / "report.html")
    summary = _summary_of(text)
    assert "networks demo, tiny on 4 images" in summary  # the fixture's models and image count
    provenance = pd.read_csv(report / "tables" / "provenance_report.csv").set_index("item")["value"]
    assert f"Built in {provenance['report run time (s)']} s." in summary
    assert "\u27e8" not in text  # no unreplaced run-time mark


@pytest.mark.slow
def test_full_report_carries_no_quick_banner(report):
    assert "Quick report" not in (report / "report.html").read_text()
    assert "Quick report" not in (report / "report.md").read_text()


@pytest.mark.slow
def test_quick_banner_opens_every_page_with_what_was_reduced(quick_report):
    """Oracle: the --quick settings themselves (QUICK_IMAGES, QUICK_METHODS), named in the first 600
    characters of each page's text, before the title; and the summary's claims all before section 1."""
    from reports.build import QUICK_IMAGES, QUICK_METHODS

    html_page = (quick_report / "report.html").read_text()
    assert html_page.index('class="banner"') < html_page.index("<h1>")
    pages = {"html": _visible_text(quick_report / "report.html"),
             "markdown": " ".join((quick_report / "report.md").read_text().replace("|", " ").split())}
    for name, text in pages.items():
        head = text[:600]
        assert "Quick report (--quick)" in head and "not for citation" in head, name
        assert f"empirical run: {QUICK_IMAGES} images, methods {', '.join(QUICK_METHODS)}" in head, name
        assert head.index("Quick report") < text.index("sanity-audit report"), name
    _claims_in_summary(quick_report, pages["html"])


@pytest.mark.slow
def test_report_run_time_is_the_time_build_report_took(quick_build):
    """Oracle: our own clock around build_report. The recorded time may miss only the final rename of the
    staged folder into place (milliseconds), never a stage."""
    out, clock = quick_build
    recorded = float(_provenance(out)["report run time (s)"])
    assert clock["build_s"] - 1.0 <= recorded <= clock["build_s"] + 0.05
    stages = {item: float(value) for item, value in _provenance(out).items() if item.startswith("time: ")}
    assert {"time: empirical run (s)", "time: simulations (s)", "time: writing (s)"} <= set(stages)
    assert sum(stages.values()) <= recorded + 0.1 * len(stages)  # each shown to 0.1 s
    assert sum(stages.values()) >= recorded - 0.5


@pytest.mark.slow
def test_empirical_manifest_time_is_the_time_its_runner_calls_took(quick_build):
    """Oracle: our own clock around every call of the empirical runner (one per experiment, then one that
    writes the manifest for them all); the manifest once gave only the last call's fraction of a second."""
    import json

    out, clock = quick_build
    manifest = json.loads((out / "empirical" / "manifest.json").read_text())
    assert clock["runner_calls"] == len(manifest["stage_elapsed_s"]) >= 2
    assert clock["runner_s"] - 0.2 <= manifest["elapsed_s"] <= clock["runner_s"] + 0.005  # to 3 decimals
    assert manifest["elapsed_s"] == pytest.approx(sum(manifest["stage_elapsed_s"].values()), abs=0.01)
    assert manifest["last_call_elapsed_s"] < manifest["elapsed_s"]


@pytest.mark.slow
def test_a_resumed_report_names_what_it_reused(quick_build, resumed_quick_build):
    """Oracle: the first build's provenance lists each empirical experiment as computed; the second, on the
    same folder, must list the same experiments as reused (their chunks) and none as computed."""
    first, second = _provenance(quick_build[0]), _provenance(resumed_quick_build[0])
    computed = [part.split(" (")[0] for part in first["computed"].split("; ")
                if part.startswith("empirical demo")]
    assert len(computed) >= 3
    assert second["reused"] != "nothing"
    for entry in computed:
        assert f"{entry}: all " in second["reused"], entry
        assert entry not in second["computed"], entry
    assert "fine-tuned multi-label demo network" in second["reused"]


_CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                  if shutil.which(name)), None)

@pytest.mark.slow
@pytest.mark.skipif(_CHROMIUM is None, reason="no headless Chromium installed (chromium, chromium-browser)")
@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("which", ["report", "quick_report"])
def test_pages_fit_1280_and_390_px_without_overflow_or_a_cut_figure(request, which, width, tmp_path,
                                                                   page_layout):
    """Oracle: the browser's own layout. No element outside a table's scrolling box reaches past the
    viewport, the page does not scroll sideways, every figure lies inside the viewport at its own aspect
    ratio, and the summary (with the claims' verdicts) ends before the claims ledger's detail begins."""
    measured = page_layout(_CHROMIUM, request.getfixturevalue(which), width, tmp_path)
    assert measured["viewport"] == width
    assert measured["scrollWidth"] <= width and measured["wide"] == []
    assert measured["images"]
    for image in measured["images"]:
        assert image["left"] >= 0 and image["right"] <= width + 0.5, image
        natural_width, natural_height = image["natural"]
        assert natural_width > 0
        ratio = natural_height / natural_width
        assert image["height"] / image["width"] == pytest.approx(ratio, rel=0.02), image
    assert measured["summaryBottom"] < measured["claimsTop"]
    print(f"{which} at {width} px: page {measured['height']:.0f} px tall, summary ends at "
          f"{measured['summaryBottom']:.0f} px, the claims ledger starts at {measured['claimsTop']:.0f} px")
