"""Finding and checking a report's inputs: both folder forms, the manifest's experiments, clear errors."""

from __future__ import annotations

import json

import pytest

from reports import inputs
from reports.build import Context
from reports.provenance import provenance_section
from reports.render import Note


def test_a_bare_run_and_a_report_folder_are_both_found(tmp_path, results_writers):
    write_empirical_run, _ = results_writers
    bare = write_empirical_run(tmp_path / "bare")
    assert inputs.empirical_folder(bare) == bare
    report = tmp_path / "report"
    write_empirical_run(report / "empirical")
    assert inputs.empirical_folder(report) == report / "empirical"


def test_only_the_manifests_experiments_are_required(tmp_path, results_writers):
    write_empirical_run, _ = results_writers
    folder = write_empirical_run(tmp_path / "run")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["experiments"] = ["randomization"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "activations.csv").unlink()
    run = inputs.load_empirical(folder)
    assert run.experiments == ("randomization",)
    assert run.table("activations.csv") is None and run.table("randomization.csv") is not None


def test_a_table_without_a_required_column_is_named(tmp_path, results_writers):
    write_empirical_run, _ = results_writers
    folder = write_empirical_run(tmp_path / "run")
    (folder / "faithfulness.csv").write_text("model,method\ndemo,gradient\n")
    with pytest.raises(inputs.ReportInputError, match=r"faithfulness\.csv.*patch_size"):
        inputs.load_empirical(folder)


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(inputs.ReportInputError, match="not a folder"):
        inputs.empirical_folder(tmp_path / "nowhere")


@pytest.mark.parametrize(("profile", "banner"), [("bench", True), ("demo", False)])
def test_bench_runs_carry_a_speed_only_banner(tmp_path, results_writers, profile, banner):
    write_empirical_run, _ = results_writers
    folder = write_empirical_run(tmp_path / "run", profile=profile)
    (tmp_path / "tables").mkdir()
    context = Context(out=tmp_path, seed=0, quick=False, progress=False, run=inputs.load_empirical(folder))
    section = provenance_section(context)
    notes = [block.text for block in section.blocks if isinstance(block, Note)]
    assert any("speed only" in text for text in notes) == banner
    assert (tmp_path / "tables" / "provenance_empirical.csv").read_text().count("sha256") == 1


def test_a_failing_experiment_costs_only_its_tables(tmp_path, results_writers, monkeypatch):
    import json

    from reports import build

    write_empirical_run, _ = results_writers
    calls = []

    def fake_run(experiments, *, out, **options):
        calls.append(list(experiments))
        if "activations" in experiments:
            raise RuntimeError("activation hooks broke")
        write_empirical_run(out)
        manifest = json.loads((out / "manifest.json").read_text())
        manifest["experiments"] = list(experiments)
        (out / "manifest.json").write_text(json.dumps(manifest))
        return out

    monkeypatch.setattr(build.results, "run", fake_run)
    context = build.Context(out=tmp_path, seed=0, quick=True, progress=False)
    run = build.obtain_empirical(context, None)
    assert run.experiments == ("randomization", "faithfulness", "faithfulness_lerf", "rewards")
    # one manifest for what finished
    assert calls[-1] == ["randomization", "faithfulness", "faithfulness_lerf", "rewards"]
    assert any(
        "activations" in problem and "activation hooks broke" in problem for problem in context.missing
    )


def test_bad_settings_stop_the_build_with_the_runners_message(tmp_path, monkeypatch):

    from reports import build

    def fake_run(experiments, **options):
        raise ValueError("holds finished chunks of a run with other settings")

    monkeypatch.setattr(build.results, "run", fake_run)
    with pytest.raises(ValueError, match="other settings"):
        build.obtain_empirical(build.Context(out=tmp_path, seed=0, quick=True, progress=False), None)


def test_the_report_runs_every_simulation_the_package_lists():
    import simulations
    from reports import build

    assert tuple(build.SIMULATION_MODULES) == simulations.SIMULATIONS
    assert all(module.__name__ == f"simulations.{name}" for name, module in build.SIMULATION_MODULES.items())


def test_report_and_command_line_write_the_same_simulation_manifest(tmp_path):
    import json

    from reports import build
    from simulations import positive_dominance

    context = build.Context(out=tmp_path, seed=0, quick=True, progress=False)
    build.run_simulation(context, "positive_dominance", tmp_path / "report")
    positive_dominance.main(["--quick", "--draws", "20", "--out", str(tmp_path / "cli")])
    by_report = json.loads((tmp_path / "report" / "positive_dominance.json").read_text())
    by_cli = json.loads((tmp_path / "cli" / "positive_dominance.json").read_text())
    shared = {"simulation", "config", "seed", "draws", "versions", "elapsed_s"}
    assert shared <= set(by_report) and shared <= set(by_cli)
    assert by_report["versions"] == by_cli["versions"] and by_report["made_by"] == "python -m reports"
    assert (tmp_path / "report" / "positive_dominance.png").is_file()
