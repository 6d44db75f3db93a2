"""The package's layers (README "What is here"): each folder imports only from the layers below it, `core/` is
pure, and the CLI's help needs neither torch nor open_clip nor spaCy."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lincir"
# Lower imports from nothing above it; folders on one level never import each other.
LEVELS = {
    "errors": 0, "storage": 0.5,  # the base: one exception type; what is read and written on disk
    "core": 1,
    "models": 2,
    "data": 3,
    "world": 4,
    "train": 5, "eval": 5,
    "experiments": 6, "speed": 6,
    "report": 7,
    "cli": 8,
    "__init__": 9, "__main__": 9,  # the lazy public API and `python -m lincir`
}
GLOBAL_SEEDING = {("torch", "manual_seed"), ("torch", "seed"), ("random", "seed"), ("cuda", "manual_seed"),
                  ("cuda", "manual_seed_all"), ("random", "fork_rng"), ("torch", "set_rng_state")}
UNKEYED_DRAWS = {"rand", "randn", "randint", "randperm", "bernoulli", "normal", "multinomial", "rand_like",
                 "randn_like"}
CORE_FORBIDDEN_MODULES = {"os", "pathlib", "io", "json", "pickle", "tempfile", "shutil", "logging", "warnings",
                          "tqdm", "lincir.storage", "safetensors", "csv", "gzip"}


def layer_of(module: str) -> str:
    """'lincir.train.loop' -> 'train'; 'lincir.errors' -> 'errors'; 'lincir' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def lincir_imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, imported lincir module) for every import anywhere in the file, relative ones resolved."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "lincir"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "lincir":
                # `from lincir import gap` names a module: its layer is the name's
                out += [(node.lineno, f"{target}.{a.name}" if target == "lincir" else target) for a in node.names]
    return out


def upward_imports(source: str, module: str) -> list[str]:
    """Every import of `module`'s source that points up or sideways across layers."""
    own = layer_of(module)
    bad = []
    for line, target in lincir_imports(ast.parse(source), module):
        other = layer_of(target)
        if other == own:
            continue
        if other not in LEVELS:
            bad.append(f"{module}:{line} imports {target}: no layer")
        elif LEVELS[other] >= LEVELS[own]:
            bad.append(f"{module}:{line} imports {target} ({other} is not below {own})")
    return bad


def impurities(source: str, module: str) -> list[str]:
    """File access, printing, logging, global seeding and unkeyed random draws in a core module."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        for n in names:
            if n in CORE_FORBIDDEN_MODULES or n.split(".")[0] in CORE_FORBIDDEN_MODULES:
                bad.append(f"{module}:{node.lineno} imports {n}")
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in ("open", "print", "input"):
                bad.append(f"{module}:{node.lineno} calls {f.id}()")
            if isinstance(f, ast.Attribute):
                owner = f.value.attr if isinstance(f.value, ast.Attribute) else getattr(f.value, "id", "")
                if (owner, f.attr) in GLOBAL_SEEDING:
                    bad.append(f"{module}:{node.lineno} seeds a global generator ({owner}.{f.attr})")
                if owner == "torch" and f.attr in UNKEYED_DRAWS and not any(k.arg == "generator" for k in node.keywords):
                    bad.append(f"{module}:{node.lineno} draws torch.{f.attr} from the global generator")
                if owner == "random" and getattr(f.value, "value", None) is not None \
                        and getattr(f.value.value, "id", "") in ("np", "numpy") and f.attr != "default_rng":
                    bad.append(f"{module}:{node.lineno} draws np.random.{f.attr} from the global generator")
    return bad


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        yield name, path


def test_every_module_has_a_layer():
    missing = {layer_of(name) for name, _ in modules()} - set(LEVELS)
    assert not missing, f"folders without a layer: {missing}"


def test_imports_point_down_only():
    bad = [b for name, path in modules() for b in upward_imports(path.read_text(encoding="utf-8"), name)]
    assert not bad, "\n".join(bad)


def test_no_cycle_between_folders():
    edges = {}
    for name, path in modules():
        for _, target in lincir_imports(ast.parse(path.read_text(encoding="utf-8")), name):
            if layer_of(target) != layer_of(name):
                edges.setdefault(layer_of(name), set()).add(layer_of(target))
    seen, stack = set(), []

    def visit(node):
        if node in stack:
            pytest.fail(f"import cycle between folders: {' -> '.join(stack[stack.index(node):] + [node])}")
        if node in seen:
            return
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            visit(nxt)
        stack.pop()
        seen.add(node)

    for node in sorted(edges):
        visit(node)


def test_core_is_pure():
    bad = [b for name, path in modules() if layer_of(name) == "core"
           for b in impurities(path.read_text(encoding="utf-8"), name)]
    assert not bad, "\n".join(bad)


def test_the_checks_catch_what_they_forbid():
    assert upward_imports("from lincir.eval.metrics import recall_at_k\n", "lincir.train.loop")  # sideways
    assert upward_imports("def f():\n    from lincir.report import claims\n", "lincir.experiments.gap")  # up
    assert upward_imports("from ..train.config import TrainConfig\n", "lincir.core.phi")  # relative, up
    assert not upward_imports("from lincir.core.phi import Phi\n", "lincir.train.loop")
    for snippet in ("open('x')", "print(1)", "import logging", "torch.manual_seed(0)", "torch.randn(3)",
                    "np.random.normal(0, 1)", "from lincir.storage import cache_dir", "torch.random.fork_rng()"):
        assert impurities(snippet + "\n", "lincir.core.x"), snippet
    assert not impurities("torch.randn(3, generator=g)\nnp.random.default_rng(0)\n", "lincir.core.x")


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["evaluate", "--help"], ["world-main", "--help"]])
def test_cli_help_imports_no_heavy_library(argv):
    code = (f"import sys\nfrom lincir.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'open_clip', 'spacy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "usage: lincir" in out
    assert out.strip().endswith("HEAVY []"), out[-300:]


def test_notebooks_import_public_names_that_exist():
    import importlib
    import json

    bad = []
    for nb in sorted((PACKAGE.parent / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        src = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lincir":
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if alias.name.startswith("_"):
                        bad.append(f"{nb.name}: private name {node.module}.{alias.name}")
                    elif not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            bad.append(f"{nb.name}: {node.module} has no {alias.name}")
    assert not bad, "\n".join(bad)
