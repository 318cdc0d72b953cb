"""MkDocs hook: the reference parts of the site are generated at build time, never copied.

A page asks for one with a marker (on a line of its own for a table), `<!-- generated: NAME -->`:

- `commands`: every command, verb and option of `pipeline`, walked from the argparse parser
  (`pipeline.cli.build_parser`): usage, help text, choices and defaults;
- `manifest-keys`: the manifest's top-level keys and their meaning, from
  `schemas/manifest.schema.json`;
- `run-keys`: the `run` block's keys, their defaults (from `pipeline.prepare.manifest.RunSettings`,
  the code that applies them) and meaning (from the schema);
- `matrix-keys`: the matrix's own keys (`exclude`, `include`, `rows`) from the schema;
- `report-fields`: report.json's top-level fields, from `schemas/report.schema.json`;
- `version`: `pipeline.__version__`, the version `pipeline --version` prints and the wheel has.

An unknown marker fails the build. tests/test_docs.py builds the site with `--strict` and checks
that every command, option and manifest key is in it. Registered in mkdocs.yml (`hooks:`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the checkout's package, whatever is installed
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"<!-- generated: ([a-z-]+) -->")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_uri}: unknown marker <!-- generated: {name} -->; "
                             f"known: {', '.join(sorted(GENERATORS))}")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)


def cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped outside code spans (the tables
    extension splits no cell inside a code span, and a backslash there would show)."""
    parts = re.split(r"(`[^`]*`)", " ".join(str(text).split()))
    return "".join(p if p.startswith("`") else p.replace("|", "\\|") for p in parts)


def code(text: str) -> str:
    return f"`{text}`"


# -- the command reference ------------------------------------------------------------------

def commands() -> str:
    from pipeline.cli import build_parser

    parser = build_parser()
    out = [f"Generated from the parser of `pipeline` {version()} (`pipeline.cli.build_parser`).",
           "The same command is also installed as `runcomfy-batch`.", ""]
    out += parser_section(parser, "pipeline", parser.description or "", level=2)
    return "\n".join(out)


def parser_section(parser: argparse.ArgumentParser, name: str, help_text: str,
                   level: int) -> list[str]:
    out = [f"{'#' * level} `{name}`", ""]
    if help_text:
        out += [help_text[0].upper() + help_text[1:] + ".", ""]
    out += ["```text", parser.format_usage().strip(), "```", ""]
    rows = [action_row(a, parser) for a in parser._actions
            if a.help != argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)]
    if rows:
        out += ["| argument | meaning |", "|---|---|", *rows, ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in action._choices_actions}
            for sub_name, sub in action.choices.items():
                out += parser_section(sub, f"{name} {sub_name}", helps.get(sub_name, ""),
                                      level=min(level + 1, 4))
    return out


def action_row(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    if action.option_strings:
        takes = action.nargs != 0
        metavar = action.metavar or (action.dest.upper() if takes and not action.choices else "")
        shown = ", ".join(code(f"{o} {metavar}".strip() if takes and metavar else o)
                          for o in action.option_strings)
    else:
        shown = code(action.metavar or action.dest)
    raw = action.help or ""
    meaning = parser._get_formatter()._expand_help(action) if raw else ""  # %(default)s, ...
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        meaning += f" (one of: {', '.join(code(str(c)) for c in action.choices)})"
    if isinstance(action, argparse._AppendAction):
        meaning += " (repeatable)"
    if action.nargs == "+":
        meaning += " (one or more)"
    if (action.option_strings and action.nargs != 0 and "%(default)" not in raw
            and not isinstance(action.default, bool)
            and isinstance(action.default, (int, float, str))):
        meaning += f" (default: {code(str(action.default))})"
    return f"| {shown} | {cell(meaning)} |"


# -- the manifest and report schemas --------------------------------------------------------

def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))
    return loaded


def resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:  # local references only: #/$defs/NAME
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def type_of(node: dict[str, Any], root: dict[str, Any]) -> str:
    node = resolve(node, root)
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node:
        return " or ".join(json.dumps(v) for v in node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            return " or ".join(dict.fromkeys(type_of(n, root) for n in node[key]))
    kind = node.get("type", "")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array" and isinstance(node.get("items"), dict):
        return f"list of {type_of(node['items'], root)}"
    return str(kind or "any")


def key_table(properties: dict[str, Any], root: dict[str, Any], required: list[str],
              defaults: dict[str, str] | None = None) -> str:
    head = ["| key | type | " + ("default | " if defaults is not None else "") + "meaning |",
            "|---|---|" + ("---|" if defaults is not None else "") + "---|"]
    rows = []
    for key, node in properties.items():
        node = resolve(node, root)
        meaning = node.get("description", "")
        if key in required:
            meaning = "**Required.** " + meaning
        default = f" {cell(defaults.get(key, ''))} |" if defaults is not None else ""
        rows.append(f"| {code(key)} | {cell(type_of(node, root))} |{default} {cell(meaning)} |")
    return "\n".join(head + rows) + "\n"


def manifest_keys() -> str:
    root = schema("manifest.schema.json")
    return ("Generated from `schemas/manifest.schema.json`.\n\n"
            + key_table(root["properties"], root, root.get("required", [])))


def run_keys() -> str:
    from pipeline.prepare.manifest import Polling, RunSettings

    root = schema("manifest.schema.json")
    run = resolve(root["properties"]["run"], root)
    values = {f.name: (f.default if f.default is not dataclasses.MISSING else None)
              for f in dataclasses.fields(RunSettings)}
    values["polling"] = {f.name: f.default for f in dataclasses.fields(Polling)}
    defaults = {k: shown_default(values.get(k)) for k in run["properties"]}
    return ("Generated from `schemas/manifest.schema.json`; defaults from "
            "`pipeline.prepare.manifest.RunSettings`.\n\n"
            + key_table(run["properties"], root, run.get("required", []), defaults))


def shown_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict):
        return code(json.dumps(value).replace('"', ""))
    return code(json.dumps(value) if isinstance(value, bool) else str(value))


def matrix_keys() -> str:
    root = schema("manifest.schema.json")
    matrix = resolve(root["$defs"]["matrix"], root)
    return ("Generated from `schemas/manifest.schema.json`. Any other key is an axis: "
            + cell(resolve(matrix.get("additionalProperties", {}), root).get(
                "description", "a list, or a range")) + "\n\n"
            + key_table(matrix["properties"], root, matrix.get("required", [])))


def report_fields() -> str:
    root = schema("report.schema.json")
    return (f"Generated from `schemas/report.schema.json` (format "
            f"{root['properties']['format'].get('const')}).\n\n"
            + key_table(root["properties"], root, root.get("required", [])))


def version() -> str:
    from pipeline import __version__

    return __version__


GENERATORS = {"commands": commands, "manifest-keys": manifest_keys, "run-keys": run_keys,
              "matrix-keys": matrix_keys, "report-fields": report_fields, "version": version}
