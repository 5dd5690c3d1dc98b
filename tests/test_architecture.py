"""The layout rules: the direction of imports, read from the source with ``ast`` (nothing is imported).

Oracles: a hand-written graph with a known cycle for the cycle finder; for the tree, the rules themselves:
no import cycle among our modules (imports inside functions count: a lazy import hides a cycle, it does
not remove it), every shared contract assigned in exactly one module, no module over 400 lines, no module
``__getattr__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "simulations", "empirical", "reports", "benchmarks")
#: each contract and the one module that may assign it. ``theory.NORMALIZATIONS`` (the four normalisations
#: ``theory.normalize`` accepts) contains ``MPRT_NORMALIZATIONS`` (checked below).
CONTRACTS = {
    "MEASURES": "empirical/measures/similarity.py",
    "MPRT_NORMALIZATIONS": "empirical/measures/similarity.py",
    "TABLE_COLUMNS": "empirical/storage/tables.py",
    "EXPERIMENT_TABLES": "empirical/storage/tables.py",
    "RANDOMIZATION_COLUMNS": "empirical/storage/tables.py",
    "FAITHFULNESS_COLUMNS": "empirical/storage/tables.py",
    "FAITHFULNESS_AREA_COLUMNS": "empirical/storage/tables.py",
    "ACTIVATION_COLUMNS": "empirical/storage/tables.py",
    "RESULT_COLUMNS": "simulations/results.py",
    "RELATIONS": "simulations/results.py",
}
#: the modules that may define a public ``*COLUMNS`` list: the owners of the result tables
COLUMN_OWNERS = {"empirical/storage/tables.py", "simulations/results.py", "benchmarks/table.py"}


def _sources() -> dict[str, Path]:
    """{dotted module name: path} of every non-test module of our packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "tests" in relative.parts or relative.name.startswith("test_"):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _trees() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(), filename=str(path)) for name, path in _sources().items()}


def import_graph(trees: dict[str, ast.Module], packages: set[str], inits: set[str]) -> dict[str, set[str]]:
    """{module: modules of ours it imports}, from every import statement (top level or inside functions).
    ``from a import b`` is an edge to ``a.b`` when that is a module of ours, else to ``a``. ``inits``: the
    modules that are packages (an ``__init__.py``), for relative imports."""
    graph = {name: set() for name in trees}
    for name, tree in trees.items():
        is_package = name in inits
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in trees else base)
            for target in targets:
                while target and target not in trees:  # `import a.b.c` of a name inside a module
                    target = target.rpartition(".")[0]
                if target and target.split(".")[0] in packages and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (iterative depth-first search)."""
    state = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return path[path.index(step):] + [step]
            elif not state.get(step):
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(graph.get(step, ()))))
    return None


def test_cycle_finder_against_a_hand_made_graph():
    acyclic = {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a"}}
    assert find_cycle(acyclic) is None
    cyclic = {**acyclic, "c": {"d"}}  # a -> c -> d -> a
    cycle = find_cycle(cyclic)
    assert cycle[0] == cycle[-1] and all(b in cyclic[a] for a, b in zip(cycle, cycle[1:], strict=False))


def test_import_graph_sees_lazy_and_relative_imports():
    trees = {
        "pkg": ast.parse(""),
        "pkg.one": ast.parse("def f():\n    from pkg import two\n"),
        "pkg.two": ast.parse("from . import one\nimport numpy\n"),
    }
    graph = import_graph(trees, {"pkg"}, {"pkg"})
    assert graph == {"pkg": set(), "pkg.one": {"pkg.two"}, "pkg.two": {"pkg.one"}}
    assert find_cycle(graph) in (["pkg.one", "pkg.two", "pkg.one"], ["pkg.two", "pkg.one", "pkg.two"])


def _our_graph() -> dict[str, set[str]]:
    inits = {name for name, path in _sources().items() if path.name == "__init__.py"}
    return import_graph(_trees(), set(PACKAGES), inits)


def test_no_import_cycle_among_our_modules():
    graph = _our_graph()
    assert sum(len(edges) for edges in graph.values()) > 100  # the walk really saw the imports
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_dependencies_run_the_way_design_section_1_says():
    allowed = {
        "theory": {"theory"},
        "simulations": {"simulations", "theory"},
        "empirical": {"empirical", "theory"},
        "reports": {"reports", "empirical", "simulations", "theory"},
        "benchmarks": {"benchmarks", "empirical", "simulations", "theory"},
    }
    graph = _our_graph()
    wrong = sorted(f"{a} -> {b}" for a, edges in graph.items() for b in edges
                   if b.split(".")[0] not in allowed[a.split(".")[0]])
    assert wrong == []


#: the layers of ``empirical``: {sub-package: the sub-packages it may not import}. ``empirical.storage``
#: (inputs, streams, the chunk store, table contracts, manifest, fingerprints, progress, threads, ranks) is
#: the bottom; the experiments and their parts sit on it; ``empirical.run`` (profiles, the runner, the
#: chunked driver) drives them from the top, and only the command line, the public results API, ``api`` and
#: reports/benchmarks import it. The experiments are kernels over tensors: of storage, never the streams,
#: chunk store or ranks.
LAYERS = {
    "empirical.storage": {"empirical.run", "empirical.experiments", "empirical.measures",
                          "empirical.attribution", "empirical.multilabel", "empirical.api",
                          "empirical.results"},
    **{package: {"empirical.run"} for package in ("empirical.measures", "empirical.models",
                                                  "empirical.attribution", "empirical.multilabel")},
    "empirical.experiments": {"empirical.run", "empirical.storage.chunks", "empirical.storage.streaming",
                              "empirical.storage.distributed"},
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_violations(graph: dict[str, set[str]], layers: dict[str, set[str]]) -> list[str]:
    """Every edge ``a -> b`` of ``graph`` from a module of a package of ``layers`` into a package it may not
    import, sorted."""
    return sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                  for package, forbidden in layers.items() if _within(module, package)
                  and any(_within(target, other) for other in forbidden))


def test_layer_checker_against_a_hand_made_graph():
    clean = {"empirical.storage.data": {"empirical.models", "empirical.rng"},
             "empirical.experiments.faithfulness": {"empirical.storage.tables", "empirical.measures"},
             "empirical.run.runner": {"empirical.experiments.faithfulness", "empirical.storage.chunks"},
             "empirical.runner_notes": {"empirical.run"}}  # a name that merely starts like run
    assert layer_violations(clean, LAYERS) == []
    dirty = {**clean, "empirical.storage.data": {"empirical.run.profiles", "empirical.results"},
             "empirical.models.train_demo": {"empirical.run"},
             "empirical.multilabel.finetune": {"empirical.run.resume", "empirical.storage.tables"},
             "empirical.experiments.rewards": {"empirical.storage.chunks", "empirical.storage.tables"},
             "empirical.experiments.noisy": {"empirical.storage.streaming", "empirical.run.chunked"}}
    assert layer_violations(dirty, LAYERS) == [
        "empirical.experiments.noisy -> empirical.run.chunked", "empirical.experiments.noisy -> "
        "empirical.storage.streaming", "empirical.experiments.rewards -> empirical.storage.chunks",
        "empirical.models.train_demo -> empirical.run",
        "empirical.multilabel.finetune -> empirical.run.resume",
        "empirical.storage.data -> empirical.results", "empirical.storage.data -> empirical.run.profiles"]


def test_storage_at_the_bottom_and_run_on_top():
    graph = _our_graph()
    assert any(_within(target, "empirical.storage") for target in graph["empirical.experiments.faithfulness"])
    assert layer_violations(graph, LAYERS) == []


_FILE_CALLS = {"open", "atomic_write_bytes", "write_bytes", "write_text", "read_bytes", "read_text", "to_csv",
               "np.save", "np.savez", "np.savez_compressed", "np.load", "torch.save", "torch.load"}


def file_io_calls(tree: ast.Module) -> list[str]:
    """Every call in ``tree`` that reads or writes a file (``open(``, ``path.write_bytes``, ``table.to_csv``,
    ``np.save``/``np.savez``, ``torch.save``...), each as 'line N: name'."""
    def name(f):  # open, np.save; or a method's name: path.write_bytes -> write_bytes
        full = f"{getattr(f.value, 'id', '')}.{f.attr}" if hasattr(f, 'attr') else getattr(f, "id", 0)
        return full if full in _FILE_CALLS else getattr(f, "attr", "")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return sorted(f"line {n.lineno}: {name(n.func)}" for n in calls if name(n.func) in _FILE_CALLS)


def test_file_io_finder_against_a_hand_made_module():
    assert file_io_calls(ast.parse("x = np.savetxt_like\nrows.to_dict()\nnp.stack([a])\nsave(1)\n")) == []
    dirty = ast.parse("with open(p) as f:\n    pass\npath.write_bytes(b'')\ntable.to_csv(p)\n"
                      "np.savez(b, **e)\ntorch.save(state, p)\nnp.save(p, a)\natomic_write_bytes(p)\n")
    assert file_io_calls(dirty) == ["line 1: open", "line 3: write_bytes", "line 4: to_csv",
                                    "line 5: np.savez", "line 6: torch.save", "line 7: np.save",
                                    "line 8: atomic_write_bytes"]


def test_the_experiments_are_kernels_with_no_file_io():
    """No module of ``empirical.experiments`` imports what ``LAYERS`` forbids, nor reads or writes a file."""
    trees = {name: tree for name, tree in _trees().items() if _within(name, "empirical.experiments")}
    assert {"empirical.experiments.randomization", "empirical.experiments.activations"} <= set(trees)
    assert layer_violations({name: to for name, to in _our_graph().items() if name in trees}, LAYERS) == []
    assert sorted(f"{name} {call}" for name, tree in trees.items() for call in file_io_calls(tree)) == []


def _assignments(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign | ast.AugAssign) else []
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    names.add(leaf.id)
    return names


@pytest.mark.parametrize("contract", sorted(CONTRACTS))
def test_each_contract_is_assigned_in_exactly_one_module(contract):
    sources = _sources()
    places = sorted(str(sources[name].relative_to(ROOT)) for name, tree in _trees().items()
                    if contract in _assignments(tree))
    assert places == [CONTRACTS[contract]]


def test_column_lists_live_with_the_table_owners():
    sources = _sources()
    stray = sorted(f"{sources[name].relative_to(ROOT)}: {assigned}" for name, tree in _trees().items()
                   for assigned in _assignments(tree)
                   if assigned.endswith("COLUMNS") and not assigned.startswith("_")
                   and str(sources[name].relative_to(ROOT)) not in COLUMN_OWNERS)
    assert stray == []


def test_empirical_normalizations_are_theory_normalizations():
    import theory
    from empirical.measures.similarity import MPRT_NORMALIZATIONS

    assert set(MPRT_NORMALIZATIONS) <= set(theory.NORMALIZATIONS)


#: names every module of a family assigns on purpose, as an interface (each simulation's ``NAME``)
PROTOCOL_NAMES = {"NAME"}


def _public_constants(tree: ast.Module) -> set[str]:
    """UPPER_CASE names assigned at a module's top level (private ``_NAMES`` excluded)."""
    found = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        found |= {leaf.id for target in targets for leaf in ast.walk(target)
                  if isinstance(leaf, ast.Name) and leaf.id.isupper() and not leaf.id.startswith("_")}
    return found


def test_public_constants_finder_against_hand_made_modules():
    tree = ast.parse("A = 1\nB, _C = 2, 3\nd = 4\nE: int = 5\ndef f():\n    F = 6\n")
    assert _public_constants(tree) == {"A", "B", "E"}


def test_each_public_constant_name_is_assigned_in_one_module():
    sources = _sources()
    places = {}
    for name, tree in _trees().items():
        for constant in _public_constants(tree) - PROTOCOL_NAMES:
            places.setdefault(constant, []).append(str(sources[name].relative_to(ROOT)))
    twice = {constant: where for constant, where in sorted(places.items()) if len(where) > 1}
    assert len(places) > 50  # the walk really saw the constants
    assert twice == {}


def test_no_module_passes_400_lines():
    long = sorted(f"{path.relative_to(ROOT)}: {lines}" for path in ROOT.rglob("*.py")
                  if ".git" not in path.parts and (lines := len(path.read_text().splitlines())) > 400)
    assert long == []


def test_no_module_getattr():
    found = sorted(name for name, tree in _trees().items() for node in tree.body
                   if isinstance(node, ast.FunctionDef) and node.name == "__getattr__")
    assert found == []


#: the public interface of ``empirical``: the names of ``empirical.__all__`` and of the documented results
#: module ``empirical.results`` (its ``__all__``); every other module of empirical is internal to it
PUBLIC_EMPIRICAL = {"empirical": "empirical/__init__.py", "empirical.results": "empirical/results.py"}


def _declared_all(path: Path) -> set[str]:
    """The names of the ``__all__`` list assigned at the top level of the module at ``path``."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def _public_empirical() -> dict[str, set[str]]:
    """{public module: its public names}; the package's names include its public submodule ``results``."""
    public = {module: _declared_all(ROOT / path) for module, path in PUBLIC_EMPIRICAL.items()}
    public["empirical"] |= {name.rpartition(".")[2] for name in public if name != "empirical"}
    return public


def private_uses(tree: ast.Module, public: dict[str, set[str]]) -> list[str]:
    """Every use of ``empirical`` outside ``public`` ({module: names}) in ``tree``: imports of another module
    of empirical or of a name not in its module's list, and attributes of an imported public module that are
    not in its list (``empirical._checks``, ``results.ChunkStore``). Each as 'line N: what'."""
    bound, found = {}, []  # local name -> the public module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "empirical":
                    continue
                if alias.name not in public:
                    found.append(f"line {node.lineno}: import {alias.name}")
                bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else "empirical"
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == \
                "empirical":
            for alias in node.names:
                if node.module not in public or alias.name not in public[node.module]:
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                elif f"{node.module}.{alias.name}" in public:
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
            module = bound[node.value.id]
            if node.attr not in public[module]:
                found.append(f"line {node.lineno}: {module}.{node.attr}")
    return sorted(found)


def chunk_paths(tree: ast.Module) -> list[str]:
    """String constants in ``tree`` (docstrings aside) naming a part of a run folder's resume state: a
    '/'-separated part ``chunks`` or ``settings.json``, as in ``run / "chunks"``. Each as 'line N: text'."""
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return sorted(f"line {node.lineno}: {node.value!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in docstrings and {"chunks", "settings.json"} & set(node.value.split("/")))


def test_private_use_finder_against_hand_made_modules():
    public = {"empirical": {"mprt", "results"}, "empirical.results": {"run", "MAX_SEED"}}
    clean = ast.parse("import empirical\nimport empirical.results\nfrom empirical import mprt, results\n"
                      "from empirical.results import MAX_SEED\nempirical.mprt\nresults.run\n")
    assert private_uses(clean, public) == []
    dirty = ast.parse("from empirical._checks import MAX_SEED\nimport empirical.run.runner\n"
                      "from empirical.results import ChunkStore\nfrom empirical import results\n"
                      "import empirical\nresults._store\nempirical._checks\n")
    assert private_uses(dirty, public) == [
        "line 1: from empirical._checks import MAX_SEED", "line 2: import empirical.run.runner",
        "line 3: from empirical.results import ChunkStore", "line 6: empirical.results._store",
        "line 7: empirical._checks"]
    paths = ast.parse('"""Docstring about chunks/."""\nrun / "chunks" / name\nx = "a/chunks/settings.json"\n'
                      'y = "the finished chunks"\n')
    assert chunk_paths(paths) == ["line 2: 'chunks'", "line 3: 'a/chunks/settings.json'"]


def test_reports_use_only_the_public_interface_of_empirical():
    public = _public_empirical()
    assert {"run", "EXPERIMENTS", "MAX_SEED"} <= public["empirical.results"]  # the lists were really read
    wrong = sorted(f"{_sources()[name].relative_to(ROOT)} {use}" for name, tree in _trees().items()
                   if name.split(".")[0] == "reports" for use in private_uses(tree, public))
    assert wrong == []


def test_reports_build_no_paths_into_the_resume_state_of_a_run():
    wrong = sorted(f"{_sources()[name].relative_to(ROOT)} {use}" for name, tree in _trees().items()
                   if name.split(".")[0] == "reports" for use in chunk_paths(tree))
    assert wrong == []
