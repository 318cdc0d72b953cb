"""A cell's identity: its content-derived id, its pinned random seed and its label.

`finalize` turns the drafts of pipeline.prepare.expand into Cells: a `{random: N}` seed is
drawn from the cell's own content (so it is the same on every expansion), the id is the first
16 hex digits of SHA-256 over the versioned canonical form of the request (local images by the
hash of their bytes), and the label names the values that vary across the job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from ..jsonio import canonical
from .combinations import FROM_CELL
from .expand import Cell, Draft
from .manifest import Manifest, RandomSeed
from .modelset import AXIS as MODEL_AXIS
from .shapes import Shape
from .values import shorten

ID_VERSION = "cell/v1"
SEED_MAX = 2**31 - 1


def finalize(m: Manifest, items: list[Draft], digest_of: Callable[[str], str], *,
             consume: bool = False) -> list[Cell]:
    """Draw pinned random seeds, give each cell its content id and a readable label.
    `consume`: each draft is let go of (its place in `items` set to None) once its cell is
    made, so that a million drafts and a million cells are never all held at once."""
    image_fields = {k: v.image_fields() for k, v in m.sweep.models.items()}
    short = model_labels(list(m.sweep.models))
    varying = _varying_keys(items)
    cells = []
    sha256 = hashlib.sha256
    for index, d in enumerate(items):
        model = d.model or m.model
        request, shape, values = d.request, d.shape, d.values
        seed = request.get("seed")
        if shape is not None and not isinstance(seed, RandomSeed):
            parts = shape.id_text
            if parts is None:
                parts = shape.id_text = _id_parts(model.id, shape, d.replicate,
                                                  image_fields[model.id], digest_of)
            label = shape.label_text
            if label is None:
                label = shape.label_text = _label_parts(values, shape.holes, varying, short)
        else:
            parts = label = ()
        if len(parts) == 3:  # the shape's canonical text around its hole: the text cell_id makes
            key, head, tail = parts
            cid = sha256((head + str(request[key]) + tail).encode()).hexdigest()[:16]
        elif parts:  # around its holes
            text = parts[1]
            for key, after in zip(parts[0], parts[2:], strict=True):
                text += str(request[key]) + after
            cid = sha256(text.encode()).hexdigest()[:16]
        else:
            identity = _identity(request, image_fields[model.id], digest_of)
            if isinstance(seed, RandomSeed):
                material = canonical({"model": model.id, "request": {**identity, "seed": None},
                                      "replicate": d.replicate, "k": seed.k})
                drawn = int(sha256(material.encode()).hexdigest()[:8], 16) % SEED_MAX
                request["seed"] = identity["seed"] = drawn
                if "seed" in values:
                    values["seed"] = drawn
            cid = cell_id(model.id, identity, d.replicate)
        if len(label) == 3:  # the same, of the label
            key, head, tail = label
            v = values[key]
            text = head + (str(v) if -10**19 < v < 10**19 else shorten(v, 20)) + tail
        elif label:
            text = label[1]
            for key, after in zip(label[0], label[2:], strict=True):
                v = values[key]
                text += (str(v) if -10**19 < v < 10**19 else shorten(v, 20)) + after
        else:
            text = _label(values, varying, short)
        origin = d.origin
        cells.append(Cell(cid, text, index, values, request, d.replicate, origin, model.id,
                          origin.get(FROM_CELL), shape))
        if consume:
            items[index] = None  # type: ignore[call-overload]
    return cells


def model_labels(ids: list[str]) -> dict[str, str]:
    """Each model id as a label shows it: without the path segments all the ids share at
    their start and end (`a/x/image-to-video`, `b/y/image-to-video` -> `a/x`, `b/y`)."""
    parts = [i.split("/") for i in ids]
    if len(parts) < 2:
        return {i: shorten(i, 40) for i in ids}
    head = 0
    while all(len(p) > head + 1 for p in parts) and len({p[head] for p in parts}) == 1:
        head += 1
    tail = 0
    while all(len(p) > head + tail + 1 for p in parts) and \
            len({p[-1 - tail] for p in parts}) == 1:
        tail += 1
    return {i: shorten("/".join(p[head:len(p) - tail]), 40)
            for i, p in zip(ids, parts, strict=True)}


def cell_id(model_id: str, identity_request: dict[str, Any], replicate: int) -> str:
    """First 16 hex digits of SHA-256 over the versioned canonical form of the cell's content."""
    body: dict[str, Any] = {"model": model_id, "request": identity_request}
    if replicate:
        body["replicate"] = replicate
    text = ID_VERSION + "\n" + canonical(body)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _label(values: dict[str, Any], varying: list[str], short: dict[str, str]) -> str:
    """A cell's label: its values of the keys that vary across the job (`default`: none)."""
    shown = []
    for k in varying:
        if k in values:
            v = values[k]
            if type(v) is int and -10**19 < v < 10**19:  # shorter than 21 characters
                shown.append(f"{k}={v}")
            elif k == MODEL_AXIS and v in short:
                shown.append(f"{k}={short[v]}")
            else:
                shown.append(f"{k}={shorten(v, 20)}")
    return " ".join(shown) or "default"


def _label_parts(values: dict[str, Any], holes: tuple[str, ...], varying: list[str],
                 short: dict[str, str]) -> tuple[Any, ...]:
    """The label of the cells of one shape (whose values are alike but for the integers of
    its holes), cut at the holes it shows as _cut cuts (`((), label)` when it shows none)."""
    keys = tuple(k for k in varying if k in values and k in holes)
    marks = {k: f"\x00{i}\x00" for i, k in enumerate(keys)}
    text = _label({**values, **marks}, varying, short)
    return _cut(text, marks) if keys else ((), text)


def _id_parts(model_id: str, shape: Shape, replicate: int, image_fields: list[str],
              digest_of: Callable[[str], str]) -> tuple[Any, ...]:
    """The text cell_id hashes for the cells of one shape, cut at its holes (see _cut): a
    cell's text is the pieces joined by its own integers (canonical JSON writes an integer as
    `str` does)."""
    identity = _identity(shape.request, image_fields, digest_of)
    marks = {}
    for i, key in enumerate(shape.holes):
        identity[key] = mark = f"\x00hole{i}\x00"
        marks[key] = canonical(mark)
    body: dict[str, Any] = {"model": model_id, "request": identity}
    if replicate:
        body["replicate"] = replicate
    return _cut(ID_VERSION + "\n" + canonical(body), marks)


def _cut(text: str, marks: dict[str, str]) -> tuple[Any, ...]:
    """`text` cut at each key's mark (each found once): (key, before, after) for one key, else
    (the keys in the order the text has them, the text before the first, after it, ...); empty
    when a mark is not found exactly once."""
    if any(text.count(mark) != 1 for mark in marks.values()):
        return ()
    keys = sorted(marks, key=lambda k: text.index(marks[k]))
    parts = []
    for key in keys:
        head, text = text.split(marks[key])
        parts.append(head)
    if len(keys) == 1:
        return (keys[0], parts[0], text)
    return (tuple(keys), *parts, text)


def _identity(request: dict[str, Any], image_fields: list[str],
              digest_of: Callable[[str], str]) -> dict[str, Any]:
    """The request with each local file or data: image replaced by the hash of its bytes."""
    out = dict(request)
    for key in image_fields:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = digest_of(value)
        elif isinstance(value, list):
            out[key] = [digest_of(v) if isinstance(v, str) else v for v in value]
    return out


def _varying_keys(items: list[Draft]) -> list[str]:
    seen: dict[str, set[str]] = {}
    order: list[str] = []
    settled: set[str] = set()  # keys seen with two values: nothing more to learn of them
    for d in items:
        if d.values.keys() <= settled:
            continue
        for k, v in d.values.items():
            if k not in seen:
                seen[k] = set()
                order.append(k)
            if len(seen[k]) < 2:
                seen[k].add(canonical(v) if isinstance(v, (dict, list)) else repr(v))
                if len(seen[k]) > 1:
                    settled.add(k)
    keys = [k for k in order if len(seen[k]) > 1]
    return keys or order[:3]
