"""YAML that remembers where each value came from.

PyYAML's `safe_load` forgets line numbers; we compose the node graph ourselves and build plain
Python values beside a map from each value's path (a tuple of keys and indexes) to its location,
so that any later problem can name the file, line and column of the node at fault.
Duplicate keys are an error (PyYAML silently keeps the last), and the number of nodes built is
capped so that an alias bomb fails fast instead of eating memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import Location, ManifestError, Problem

try:  # the C loader is much faster on large manifests; fall back when libyaml is absent
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

MAX_NODES = 500_000

Path_ = tuple[str | int, ...]  # a value's path: keys (str) and list indexes (int)


@dataclass
class Source:
    """A parsed YAML document: its data and where every value and key sits in the file."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    raw: bytes | None = None  # the file's bytes, when it was read from one

    def loc(self, path: Path_ = (), *, key: bool = False) -> Location:
        """The location of the value at `path` (or of its key), else of its nearest parent."""
        table = self.key_marks if key else self.marks
        p = tuple(path)
        while True:
            if p in table:
                line, col = table[p]
                return Location(self.file, line, col)
            if p in self.marks:
                line, col = self.marks[p]
                return Location(self.file, line, col)
            if not p:
                return Location(self.file, 1, 1)
            p = p[:-1]


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.marks: dict[Path_, tuple[int, int]] = {}
        self.key_marks: dict[Path_, tuple[int, int]] = {}
        self.count = 0
        self.scalars = yaml.constructor.SafeConstructor()

    def fail(self, node: yaml.Node, message: str) -> ManifestError:
        m = node.start_mark
        return ManifestError([Problem(Location(self.file, m.line + 1, m.column + 1), message)])

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, f"document has more than {MAX_NODES} values (an alias bomb?); "
                                  "split it or use a rows file")
        self.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, path + (i,)) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            try:
                self.scalars.flatten_mapping(node)  # resolves `<<` merge keys
            except yaml.YAMLError as exc:
                raise self.fail(node, f"bad merge: {getattr(exc, 'problem', exc)}") from None
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(key_node, "mapping keys must be plain scalars")
                key = self.scalar(key_node)
                if isinstance(key, (dict, list)) or key is None:
                    raise self.fail(key_node, "mapping keys must be plain scalars")
                key = str(key) if not isinstance(key, str) else key
                if key in out:
                    raise self.fail(key_node, f"duplicate key {key!r}")
                self.key_marks[path + (key,)] = (key_node.start_mark.line + 1,
                                                 key_node.start_mark.column + 1)
                out[key] = self.build(value_node, path + (key,))
            return out
        raise self.fail(node, "unsupported YAML node")  # pragma: no cover

    def scalar(self, node: yaml.Node) -> Any:
        # Values must be plain JSON (they reach plans, journals and reports): a date stays the
        # text it was written as; binary data has no JSON form.
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value
        if node.tag == "tag:yaml.org,2002:binary":
            raise self.fail(node, "binary (!!binary) values are not supported; write text")
        try:
            return self.scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.fail(node, f"bad value: {getattr(exc, 'problem', None) or exc}") from None
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. 2024-13-45, a 5000-digit int
            raise self.fail(node, f"bad value {_clip(node.value)}: {exc}") from None


def _clip(text: object, n: int = 40) -> str:
    text = repr(text)
    return text if len(text) <= n else text[: n - 4] + "...'"


def _expanded_size(node: yaml.Node, builder: _Builder, sizes: dict[int, int]) -> int:
    """How many values `node` becomes once its aliases are expanded, counted once per distinct
    node; past MAX_NODES (an alias bomb) or on an alias inside itself, a located error."""
    key = id(node)
    known = sizes.get(key)
    if known is not None:
        if known < 0:
            raise builder.fail(node, "an alias refers to a node that contains it (a recursive "
                                     "structure); write the values out")
        return known
    sizes[key] = -1
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, builder, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(v, builder, sizes) for _, v in node.value)
    if size > MAX_NODES:
        raise builder.fail(node, f"document has more than {MAX_NODES} values (an alias bomb?); "
                                 "split it or use a rows file")
    sizes[key] = size
    return size


def _unclosed(exc: yaml.MarkedYAMLError) -> bool:
    """Whether a YAML error is a quote, bracket or block scalar that ran into the end of the
    text: its context mark (where it started) is then the place to show, not the end."""
    problem, context = exc.problem or "", exc.context or ""
    return ("end of stream" in problem or "<stream end>" in problem) and \
        context.startswith(("while scanning", "while parsing a flow"))


def parse_yaml(text: str, file: str) -> Source:
    """Parse one YAML document into a Source; syntax errors become a located ManifestError."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or "invalid YAML"
        if exc.context:
            what = f"{what} ({exc.context})"
            if exc.context_mark and exc.problem_mark and \
                    exc.context_mark.line != exc.problem_mark.line:
                what = f"{what[:-1]} that starts at line {exc.context_mark.line + 1})"
        if exc.context_mark and exc.problem_mark and exc.context and _unclosed(exc):
            # an unclosed quote or bracket runs to the end: say where it started
            thing = re.sub(r"^while (scanning|parsing) ", "", exc.context)
            what = (f"{thing} starts here and is never closed ({exc.problem} at line "
                    f"{exc.problem_mark.line + 1})")
            mark = exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ManifestError([Problem(Location(file, line, col), f"YAML syntax: {what}")]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
        pos = exc.position
        line, col = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        char = exc.character if isinstance(exc.character, int) else ord(exc.character or "?")
        raise ManifestError([Problem(Location(file, line, col), f"YAML syntax: character "
                                     f"U+{char:04X} is not allowed in YAML; remove it")]
                            ) from None
    except yaml.YAMLError as exc:
        what = " ".join(str(exc).split())
        raise ManifestError([Problem(Location(file, 1, 1), f"YAML syntax: {what}")]) from None
    except RecursionError:
        raise ManifestError([Problem(Location(file, 1, 1), "YAML nested too deeply")]) from None
    if node is None:
        return Source(file, None)
    builder = _Builder(file)
    try:
        _expanded_size(node, builder, {})  # an alias bomb fails here, before anything is built
        data = builder.build(node, ())
    except RecursionError:
        raise ManifestError([Problem(Location(file, 1, 1), "YAML nested too deeply")]) from None
    return Source(file, data, builder.marks, builder.key_marks)


def load_yaml(path: Path, display: str | None = None) -> Source:
    """Read and parse a YAML file; an unreadable file is a located ManifestError."""
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError([Problem(Location(name), "no such file")]) from None
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise ManifestError([Problem(Location(name),
                                     f"cannot read: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError([Problem(Location(name),
                                     f"not UTF-8 text (byte {exc.start})")]) from None
    source = parse_yaml(text, name)
    source.raw = raw
    return source
