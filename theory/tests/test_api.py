"""The package's contract: every public name importable and documented with its seed reference; pure."""

import inspect
import subprocess
import sys

import theory


def test_every_public_name_exists_and_cites_the_seed():
    for name in theory.__all__:
        obj = getattr(theory, name)
        if inspect.isfunction(obj):
            doc = inspect.getdoc(obj) or ""
            lower = doc.lower()
            assert "eq." in lower or "section" in lower or "theory." in lower, (
                f"{name} does not cite the seed"
            )
            assert len(doc.splitlines()) <= 15, f"{name} has a docstring of {len(doc.splitlines())} lines"


def test_package_docstring_lists_every_module():
    modules = ("ssim", "spearman", "mse", "normalization", "quantiles", "overtaking", "lrp", "monotonicity")
    for module in (*modules, "dominance"):
        assert f"- {module} (" in theory.__doc__


def test_theory_imports_neither_torch_nor_other_packages_of_the_suite():
    code = (
        "import sys, theory\n"
        "bad = [m for m in ('torch', 'simulations', 'empirical', 'reports') if m in sys.modules]\n"
        "sys.exit(repr(bad) if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
