"""MkDocs hook: the figures of ``experiments/`` (the PNGs the scripts write beside their JSON)
join the site under ``experiments/``, so that pages show them without a copy in ``docs/``."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]


def on_files(files, config):
    for png in sorted((ROOT / "experiments").glob("*.png")):
        files.append(File.generated(config, f"experiments/{png.name}", abs_src_path=str(png)))
    return files
