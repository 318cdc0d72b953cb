"""The documentation site builds (`mkdocs build --strict`: no broken link, no missing page) and
holds what users look up: every command, verb and option of `pipeline`'s parser, every top-level
key of the manifest and every key of its `run` block (docs/hooks.py generates them; this test
fails when one goes missing, e.g. when the hook or its marker is removed).

Needs MkDocs (the `docs` extra): skipped where it is missing, failed in CI (`unavailable`).
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import unavailable

from pipeline.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The text of every page of the built site (tags stripped, entities decoded)."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        unavailable("MkDocs and mkdocs-material are needed to build the docs "
                    "(pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--config-file", str(REPO / "mkdocs.yml"), "--site-dir", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    pages = sorted(out.rglob("*.html"))
    assert len(pages) > 10, pages
    return "\n".join(html.unescape(re.sub(r"<[^>]+>", " ", p.read_text(encoding="utf-8")))
                     for p in pages)


def commands(parser: argparse.ArgumentParser, name: str = "pipeline"
             ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command and verb of the parser, by its full name (`pipeline account status`)."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from commands(sub, f"{name} {sub_name}")


def test_the_site_builds_strict_and_names_every_command_and_option(site: str) -> None:
    """Every subcommand and every option string of the parser is in the built site."""
    words = set(re.findall(r"[\w./-]+", site))
    missing = []
    for name, parser in commands(build_parser()):
        if " ".join(name.split()) not in " ".join(site.split()):
            missing.append(name)
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:
                continue
            missing += [f"{name} {o}" for o in action.option_strings if o not in words]
    assert not missing, f"missing from the built docs: {missing}"


def test_the_site_names_every_manifest_key(site: str) -> None:
    """Every top-level key of the manifest schema, and every key of its `run` block, is in
    the built site (the key tables of docs/manifest.md)."""
    schema = json.loads((REPO / "schemas" / "manifest.schema.json").read_text(encoding="utf-8"))
    run = schema["$defs"]["run"]["properties"]
    words = set(re.findall(r"[\w.-]+", site))
    missing = [k for k in [*schema["properties"], *run] if k not in words]
    assert not missing, f"manifest keys missing from the built docs: {missing}"


def test_the_site_states_the_version_the_command_prints(site: str) -> None:
    """The docs, `pipeline --version` and the wheel (hatch reads __version__) agree."""
    from pipeline import __version__

    assert f"version {__version__}" in " ".join(site.split())


def test_the_readme_tour_shows_the_demo_manifest_as_shipped() -> None:
    """The README's five-minute tour shows jobs/demo.yaml as it is (less its comment lines)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    tour = readme.split("## A five-minute tour", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", tour, re.S)
    assert block is not None
    shipped = (REPO / "jobs" / "demo.yaml").read_text(encoding="utf-8")
    assert block.group(1) == "".join(
        line for line in shipped.splitlines(True) if not line.startswith("#"))


def test_the_readme_fits_on_a_screen_and_opens_with_the_two_commands() -> None:
    """At most 200 lines; the demo and the test command are its first two code blocks, and the
    test command is the one .ci/run runs."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    demo, tests = re.findall(r"```bash\n(.*?)\n```", readme, re.S)[:2]
    assert demo.endswith("pip install -e . && pipeline run jobs/demo.yaml")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    install, pytest_command = tests.split(" && pip install ", 1)[1].split(" && ")
    assert f"pip install {install}" in ci and pytest_command in ci
