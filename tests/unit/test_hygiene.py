"""The code's shape: no import cycle among ganlab's modules (imports inside functions included),
and the layers that must stay free of Lightning and Hydra."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT

PACKAGE = ROOT / "ganlab"


def import_graph() -> dict[str, set[str]]:
    """module -> the ganlab modules it imports, at the top or inside functions."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def resolve(name: str) -> str | None:  # the longest prefix that is a module
        parts = name.split(".")
        return next(
            (".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in modules), None
        )

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif (
                isinstance(node, ast.ImportFrom)
                and not node.level
                and (node.module or "").startswith("ganlab")
            ):
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.startswith("ganlab") else None
                if target and target != module:
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "ganlab.training.module" in graph["ganlab.training.build"]  # the graph is real
    assert cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_models_losses_and_augment_import_neither_lightning_nor_hydra():
    code = (
        "import sys, ganlab.models, ganlab.losses, ganlab.augment, ganlab.training.ema, "
        "ganlab.training.latent; "
        "print(sorted(m for m in ('lightning', 'hydra', 'omegaconf') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# The layers, bottom up: a module imports its own package and the layers below it, never one
# above or beside it (README "Architecture"). The command-line modules are ganlab's top level.
LAYERS = (
    ("helpers", ("ganlab.utils",)),
    (
        "building blocks",
        ("ganlab.models", "ganlab.losses", "ganlab.augment", "ganlab.data", "ganlab.metrics"),
    ),
    ("speed and the doctor's measurements", ("ganlab.speed", "ganlab.doctor")),
    ("training", ("ganlab.training",)),
    ("checkpoints", ("ganlab.checkpoint",)),
    ("the run", ("ganlab.run",)),
    ("callbacks and loggers", ("ganlab.callbacks", "ganlab.loggers")),
)


def home(module: str) -> tuple[int, str]:
    """(layer, package) of a ganlab module; the command line (``ganlab.train`` ...) on top."""
    for i, (_, packages) in enumerate(LAYERS):
        for package in packages:
            if module == package or module.startswith(package + "."):
                return i, package
    if module == "ganlab" or module.startswith("ganlab.conf"):
        return -1, module  # the version string; Hydra's config package
    return len(LAYERS), "command line"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in graph.items():
        layer, package = home(module)
        for target in targets:
            t_layer, t_package = home(target)
            if t_package != package and t_layer >= layer and t_layer >= 0:
                found.append(f"{module} -> {target}")
    return sorted(found)


def test_imports_point_only_down():
    graph = import_graph()
    assert upward_imports(graph) == []
    placed = {home(m)[1] for m in graph}
    assert {p for _, ps in LAYERS for p in ps} <= placed  # every layer's package exists


def test_the_layer_check_sees_an_upward_import():
    graph = {
        "ganlab.data.base": {"ganlab.loggers.wandb"},
        "ganlab.callbacks.guard": {"ganlab.callbacks.checkpoint"},
    }
    assert upward_imports(graph) == ["ganlab.data.base -> ganlab.loggers.wandb"]  # same package: allowed
    assert upward_imports({"ganlab.models.dcgan": {"ganlab.data.base"}}) == [
        "ganlab.models.dcgan -> ganlab.data.base"  # beside it, in the same layer: not allowed either
    ]


def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_no_function_over_60_lines():
    long = {
        f"{p.relative_to(ROOT)}:{node.name}": node.end_lineno - node.lineno + 1
        for p in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60
    }
    assert long == {}


def test_the_version_the_messages_speak_of():
    """pyproject's version is the package's, and no message names a later ganlab."""
    import re

    import ganlab

    (version,) = re.findall(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert ganlab.__version__ == version
    named = {m for p in PACKAGE.rglob("*.py") for m in re.findall(r"ganlab (\d+\.\d+)", p.read_text())}
    assert named and all(
        tuple(map(int, v.split("."))) <= tuple(map(int, version.split(".")[:2])) for v in named
    )


def _is_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package
        return False


def test_every_dotted_name_in_the_docs_and_comments_exists():
    """A ``ganlab.<module>...`` reference in a docstring or comment names a module, class or
    function that exists (a comment naming code that is gone misleads more than none)."""
    import importlib
    import re

    top = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    missing = []
    for path in PACKAGE.rglob("*.py"):
        for name in set(re.findall(r"``(ganlab(?:\.\w+)+)", path.read_text())):
            parts = name.split(".")
            if parts[1] not in top:  # e.g. ganlab.seed: a PNG text chunk's key, not code
                continue
            i = 2
            while i < len(parts) and _is_module(".".join(parts[: i + 1])):
                i += 1
            obj = importlib.import_module(".".join(parts[:i]))
            for attr in parts[i:]:
                obj = getattr(obj, attr, None)
            if obj is None:
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert missing == []
