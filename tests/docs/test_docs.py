"""The documentation cannot drift from what it describes.

- Every rendered fragment (``docs/generated/``, README's rendered block) matches what
  ``python docs/render.py`` renders from the committed JSON now, and the experiment scripts' own
  ``.md`` files match their JSON.
- The example outputs the doctor page shows were captured (``python docs/capture.py``) from the
  command printed with them, on the recipe as it composes today.
- Every command in a fenced block after ``<!-- tested -->`` runs (exit status 0), all blocks in one
  folder in the order of the site's navigation.
- Prose names no measured number: times, rates and scores are rendered, not typed.
- The names the docs give (``ganlab.*`` objects, files of the repository) exist.
- ``mkdocs build --strict`` passes (what ``make docs`` and CI run).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import ROOT, compose_cfg

DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent


def docs_script(name: str):
    """``docs/<name>.py`` as a module (docs/ is no package: loaded by path)."""
    spec = importlib.util.spec_from_file_location(f"ganlab_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


capture, render = docs_script("capture"), docs_script("render")


def nav_pages() -> list[Path]:
    """The site's pages in the order of mkdocs.yml's navigation."""
    text = (ROOT / "mkdocs.yml").read_text().split("\nnav:", 1)[1]
    return [DOCS / m for m in re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?(\S+\.md)\s*$", text, re.M)]


def pages() -> list[Path]:
    """Every hand-written page (the rendered fragments aside) and README.md."""
    return [ROOT / "README.md", *(p for p in sorted(DOCS.rglob("*.md")) if "generated" not in p.parts)]


def prose(text: str) -> str:
    """``text`` without fenced blocks, inline code, HTML comments, snippet includes and README's
    rendered block: what a person wrote in sentences."""
    text = re.sub(r"<!-- BEGIN rendered.*?<!-- END rendered[^>]*-->", "", text, flags=re.S)
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"^--8<--.*$", "", text, flags=re.M)
    return re.sub(r"`[^`\n]*`", "", text)


# -- rendered figures -------------------------------------------------------------------------------
def test_rendered_pages_match_their_json():
    assert render.stale() == [], "rerun python docs/render.py (or the experiment script named)"


def test_every_fragment_is_included_and_every_include_exists():
    included = set()
    for page in pages():
        for target in re.findall(r'^--8<-- "([^":]+)(?::[^"]*)?"', page.read_text(), re.M):
            assert (ROOT / target).is_file(), f"{page.relative_to(ROOT)} includes {target}, which is missing"
            included.add(target)
    fragments = {f"docs/generated/{name}" for name in render.FRAGMENTS}
    assert fragments <= included, f"rendered but shown nowhere: {sorted(fragments - included)}"


def test_the_recipe_candidates_tables_are_the_scripts_own():
    """The CPU recipes' candidate tables are included from recipe_candidates.py's markdown."""
    for path in sorted((ROOT / "experiments").glob("*_candidates.md")):
        shown = (DOCS / "results" / "recipe_candidates.md").read_text()
        assert f'--8<-- "experiments/{path.name}:3:"' in shown, path.name
    assert (
        '--8<-- "experiments/stylegan2_fashion_mnist_candidates.md:3:"' in (DOCS / "recipes.md").read_text()
    )


# -- captured examples ------------------------------------------------------------------------------
def test_the_doctor_example_was_captured_from_its_command_on_todays_recipe(tmp_path):
    out = DOCS / "generated" / "captured"
    meta = json.loads((out / "doctor_run.json").read_text())
    shown = (out / "doctor_run.txt").read_text().splitlines()
    assert meta["args"] == capture.DOCTOR_ARGS and shown[0] == meta["command"] == capture.printed(
        meta["args"]
    )
    assert any(line.startswith("warning: doctor: ") for line in shown[1:]), shown
    event = json.loads((out / "doctor_jsonl.json").read_text())
    assert event["event"] == "start" and event["message"] in "\n".join(shown)
    page = (DOCS / "doctor.md").read_text()
    assert '--8<-- "docs/generated/captured/doctor_run.txt"' in page
    assert '--8<-- "docs/generated/captured/doctor_jsonl.json"' in page
    # The recipe as it composes today: what the capture ran with, key by key (a setting added
    # since, at any value, is not a change to what was captured; a changed or removed one is).
    cfg = compose_cfg(meta["args"], tmp_path)
    changed = []
    for section, then in meta["recipe"].items():
        node = OmegaConf.select(cfg, section)
        now = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
        changed += [f"{section}{k}: {a!r} -> {b!r}" for k, a, b in differences(then, now)]
    assert changed == [], "the recipe changed since the capture: rerun python docs/capture.py"


def differences(then, now, key: str = ""):
    if isinstance(then, dict) and isinstance(now, dict):
        for k, v in then.items():
            yield from differences(v, now.get(k, "<gone>"), f"{key}.{k}")
    elif then != now:
        yield key, then, now


# -- commands ----------------------------------------------------------------------------------------
def marked_commands() -> list[tuple[str, str]]:
    """(page, command) of every line of every ``<!-- tested -->`` block, in navigation order."""
    found = []
    for page in nav_pages():
        for block in re.findall(r"<!-- tested -->\s*\n```bash\n(.*?)\n```", page.read_text(), re.S):
            for line in block.splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command and not command.startswith("#"):
                    found.append((page.name, command))
    return found


def test_the_docs_mark_commands_to_run():
    commands = [c for _, c in marked_commands()]
    assert any(c.startswith("ganlab-train") for c in commands) and any("ganlab-report" in c for c in commands)
    unlisted = {p.relative_to(DOCS) for p in DOCS.rglob("*.md") if "generated" not in p.parts} - {
        p.relative_to(DOCS) for p in nav_pages()
    }
    assert unlisted == set(), f"pages outside mkdocs.yml's nav: {sorted(map(str, unlisted))}"


@pytest.mark.skipif(
    not (ROOT / "data" / "fashion-mnist").is_dir(), reason="make data fetches the embedded sets"
)
def test_the_marked_commands_run(tmp_path):
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
        "GANLAB_DATA_DIR": str(ROOT / "data"),
        "WANDB_MODE": "offline",
        "HYDRA_FULL_ERROR": "0",
        "PYTHONWARNINGS": "ignore",
    }
    for page, command in marked_commands():
        r = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0, f"{page}: {command}\n{(r.stdout + r.stderr)[-3000:]}"


# -- typed numbers -----------------------------------------------------------------------------------
MEASURED = [
    # a time or a rate, not a bound set as a goal ("<= 5 s", ">= 40k images/s")
    r"(?<![<>]= )(?<!at most )\b\d[\d,.]*k?\s?"
    r"(?:s|sec|seconds?|min|minutes?|ms|hours?|img/s|images/s|MB|GB|MiB)\b",
    # a score
    r"\b(?:c?FID|KID|IS|recall|precision|accuracy|time_ratio|cFIDs?)\s(?:of\s|from\s|to\s)?\d",
    r"\b\d+(?:\.\d+)?x\s(?:faster|slower|lower|higher|better|worse)\b",
    # a movement or a bound read off a result
    r"\b(?:rose|fell|climbed|peaked|dropped|went)\s(?:from\s[\d.]+\s)?to\s\d",
    r"\bno \w+ (?:is )?(?:below|above) \d",
]


def test_prose_names_no_measured_number():
    found = []
    for page in pages():
        text = prose(page.read_text())
        for pattern in MEASURED:
            found += [f"{page.relative_to(ROOT)}: {m.group(0)!r}" for m in re.finditer(pattern, text)]
    assert found == [], "render these from their JSON (docs/render.py), or leave them out"


def test_readme_gives_the_makefiles_commands():
    """README's (and the home page's) `make train` / `make test` lines say what the Makefile says."""
    targets = dict(re.findall(r"^([a-z-]+):.*?## (.*)$", (ROOT / "Makefile").read_text(), re.M))
    for page in (ROOT / "README.md", DOCS / "index.md"):
        shown = dict(re.findall(r"^make (train|test)\s+# (.*)$", page.read_text(), re.M))
        assert shown == {"train": targets["train"], "test": targets["test"]}, page.name
    assert re.search(
        r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M
    )  # CI runs README's test command


# -- names --------------------------------------------------------------------------------------------
def test_the_names_the_docs_give_exist():
    missing = []
    for page in pages():
        text = page.read_text()
        for name in set(re.findall(r"`(ganlab(?:\.[A-Za-z_]\w*)+)", text)):
            if name.split(".")[1] in TOP and not resolves(name):  # (ganlab.seed: a PNG text chunk's key)
                missing.append(f"{page.relative_to(ROOT)}: {name}")
        for path in set(re.findall(r"`((?:ganlab|tests|experiments|docs)/[\w./-]+)`", text)):
            if "<" not in path and not (ROOT / path.split("::")[0]).exists():
                missing.append(f"{page.relative_to(ROOT)}: {path}")
        for folder_file, attr in set(re.findall(r"`([\w/]+\.py)::(\w+)`", text)):
            module = folder_file[:-3].replace("/", ".")
            module = module if module.startswith(("ganlab", "tests")) else f"ganlab.{module}"
            if not resolves(f"{module}.{attr}"):
                missing.append(f"{page.relative_to(ROOT)}: {folder_file}::{attr}")
    assert missing == []


TOP = {p.stem for p in (ROOT / "ganlab").iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return False
        return True
    return False


# -- the site ------------------------------------------------------------------------------------------
def test_the_site_builds_strictly(tmp_path):
    r = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert r.returncode == 0 and "WARNING" not in r.stderr, r.stderr[-3000:]
