"""Property: whatever a manifest holds, `pipeline validate` and `pipeline plan` answer in one
of two ways, never with a traceback: exit 0, or exit 2 with every line naming a file (and a
line and column, or the file alone for a file-level problem).

Manifests are generated mostly from the real keys with plausible and hostile values (wrong
types, huge numbers, unicode with surrogates, control and RTL characters, deep nesting, empty
matrices, random Jinja), then mutated as text (duplicate keys, anchors and alias bombs, random
bytes, truncation); a second property feeds fully random text and bytes. The CLI runs
in-process (`pipeline.cli.main`) with `--offline`, so nothing is fetched. The profile is
derandomized with no example database, so CI sees the same 1,000+ examples on every run.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imagefiles import MODEL, write_image

from pipeline.cli import main

# 100 examples by default; `pytest --fuzz` (tests/conftest.py) runs 1,000.
EXAMPLES = int(os.environ.get("PIPELINE_FUZZ_EXAMPLES", "100"))
settings.register_profile(
    "fuzz-manifest", max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example])
FUZZ = settings.get_profile("fuzz-manifest")


@pytest.fixture(scope="module")
def folder() -> Path:
    """A job folder with the files generated manifests may name (and some they must not)."""
    root = Path(tempfile.mkdtemp(prefix="fuzz-manifest-"))
    job = root / "job"
    write_image(job / "img.png", 640, 480)
    write_image(job / "small.png", 300, 400)
    write_image(job / "photo.jpg", 640, 480, "JPEG")
    (job / "prompt.j2").write_text("a {{ light }} harbor\n")
    (job / "rows.csv").write_text("image,caption\nimg.png,a boat\nsmall.png,a pier\n")
    (job / "rows.jsonl").write_text('{"seed": 1, "caption": "x"}\n{"seed": 2}\n')
    (job / "sub").mkdir()
    (root / "secret.png").write_bytes((job / "img.png").read_bytes())
    (job / "link.png").symlink_to(root / "secret.png")
    yield job
    shutil.rmtree(root, ignore_errors=True)


# --- values ---------------------------------------------------------------------------------
HUGE = st.sampled_from([10**7, 10**9, 10**12, 2**63, 10**30, -(10**12)])
text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
hostile_text = st.sampled_from([
    "", " ", "\u202eevil\u202c", "\ud800", "\x00", "\x07\x1b[31m", "ｔｅｓｔ", "ß" * 3, "e\u0301",
    "a" * 300, "..", ".", "-rf", "../../etc/passwd", "/etc/passwd", "link.png", "sub", "\n\n",
    "{{", "{% for %}", "%s%s%s", "{0.__class__}", "~", "!!python/object", "*a", "&a",
])
scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), HUGE,
                   st.floats(allow_nan=True, allow_infinity=True), text, hostile_text)
small_scalar = st.one_of(st.integers(-3, 300), st.sampled_from(["720P", "1080P", "x", "dawn"]),
                         st.booleans(), text, hostile_text)
anything = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(text, hostile_text), inner,
                                                 max_size=3)), max_leaves=8)
identifier = st.one_of(st.sampled_from(["light", "subject", "mood", "caption", "image", "i",
                                        "seed", "resolution", "number_of_frames", "prompt",
                                        "image_urls", "replicate", "exclude", "include",
                                        "rows", "loop", "self", "range"]),
                       st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                       text, hostile_text)

JINJA_BITS = [
    "a boat", "{{ light }}", "{{ subject|upper }}", "{{ seed }}", "{{ resolution }}",
    "{{ nope }}", "{{ light ~ '!' }}", "{% if light %}lit{% endif %}", "{{ replicate }}",
    "{% for i in range(3) %}{{ i }}{% endfor %}", "{{ '%s' % light }}", "{{ 'x' * 3 }}",
    "{{ 'x' * 10**9 }}", "{{ [1] * 10**9 }}", "{{ range(10**9)|list }}", "{{ ''.__class__ }}",
    "{{ cycler }}", "{{ self }}", "{{ lipsum() }}", "{{ '{0.__class__}'.format(1) }}",
    "{{ '%999999999s' % 1 }}", "{{", "}}", "{%", "{% endfor %}", "{#", "{{ 1/0 }}",
    "{{ light|join(',') }}", "{{ (light|string).ljust(10**9) }}", "{{ light.items() }}",
    "{% set x = 1 %}{{ x }}", "{% macro m() %}m{% endmacro %}{{ m() }}", "{{ 10**400 }}",
    "{{ light[0] }}", "{{ light['x'] }}", "{{ -light }}", "{{ light + 1 }}", "\u202e", "\ud800",
]
template = st.one_of(st.lists(st.sampled_from(JINJA_BITS), min_size=1, max_size=4).map("".join),
                     text)
image = st.one_of(st.sampled_from(["img.png", "small.png", "photo.jpg", "missing.png",
                                   "link.png", "../secret.png", "/etc/passwd", "sub",
                                   "rows.csv", "{{ image }}", "data:image/png;base64,AAAA",
                                   "data:,x", "http://127.0.0.1:9/x.png", "ftp://x/y.png",
                                   "file:///etc/passwd", "img.png\x00"]), text)
image_value = st.one_of(st.lists(image, max_size=2), image, scalar)
axis_values = st.one_of(
    st.lists(small_scalar, min_size=0, max_size=4),
    st.lists(image_value, min_size=1, max_size=2),
    st.fixed_dictionaries({"from": st.integers(-3, 3), "to": st.one_of(st.integers(-3, 6), HUGE)},
                          optional={"step": st.one_of(st.integers(-1, 3), HUGE, scalar)}),
    st.fixed_dictionaries({"random": st.one_of(st.integers(-1, 4), st.just(100_001), scalar)}),
    scalar, anything,
)
row = st.dictionaries(identifier, small_scalar, max_size=3)
rows = st.one_of(st.lists(row, max_size=3), st.sampled_from(
    ["rows.csv", "rows.jsonl", "missing.csv", "../rows.csv", "/etc/passwd.csv", "img.png",
     "sub.csv"]), st.fixed_dictionaries({"file": st.one_of(image, st.just("rows.csv"))}), scalar)
matrix = st.one_of(
    st.dictionaries(identifier, axis_values, max_size=3).flatmap(lambda axes: st.fixed_dictionaries(
        {}, optional={"exclude": st.lists(st.dictionaries(identifier, small_scalar, max_size=2),
                                          max_size=2) | scalar,
                      "include": st.lists(st.dictionaries(identifier, small_scalar, max_size=3),
                                          max_size=2) | scalar,
                      "rows": rows}).map(lambda extra: {**axes, **extra})),
    st.just({}), scalar)
inputs = st.fixed_dictionaries({}, optional={
    "image_urls": image_value, "seed": st.one_of(st.integers(-2, 2**40), HUGE, scalar),
    "resolution": st.one_of(st.sampled_from(["720P", "1080P", "4K"]), scalar),
    "number_of_frames": st.one_of(st.sampled_from([121, 241, 0]), scalar),
    "prompt": st.one_of(template, scalar), "resolutoin": scalar,
}) | scalar
run = st.fixed_dictionaries({}, optional={
    "concurrency": st.one_of(st.integers(-1, 20), HUGE, scalar), "budget": scalar,
    "max_attempts": scalar, "fail_fast": scalar, "max_failures": scalar,
    "allow_unknown_price": scalar, "output": st.one_of(hostile_text, text),
    "local_images": st.one_of(st.sampled_from(["data_uri", "refuse"]), scalar),
    "price": st.one_of(st.fixed_dictionaries({"unit": st.sampled_from(["second", "output", "x"]),
                                               "usd": st.one_of(scalar, st.dictionaries(
                                                   text, scalar, max_size=2))},
                                              optional={"by": scalar}), scalar),
    "polling": st.one_of(st.dictionaries(st.sampled_from(["initial", "max", "timeout", "x"]),
                                         scalar, max_size=3), scalar),
    "concurency": scalar,
}) | scalar
name = st.one_of(st.sampled_from(["harbor", "a.b_c-1", "..", ".", "-x", "a/b", "a" * 101,
                                  "ｈａｒｂｏｒ", "con", "a\\b"]),
                 st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True), scalar)
manifest = st.fixed_dictionaries(
    {"name": name, "model": st.one_of(st.just(MODEL), st.sampled_from(
        ["../../../etc", "/etc", "acme/x", MODEL + "/", MODEL + "\x00"]), scalar)},
    optional={
        "backend": st.one_of(st.sampled_from(["runcomfy", "sim"]), scalar),
        "description": st.one_of(text, scalar),
        "prompt": st.one_of(template, st.fixed_dictionaries({"file": st.one_of(
            st.sampled_from(["prompt.j2", "../prompt.j2", "/etc/passwd", "missing.j2", "sub",
                             "img.png", "link.png"]), text)}), scalar),
        "inputs": inputs,
        "vars": st.one_of(st.dictionaries(identifier, anything, max_size=3), scalar),
        "matrix": matrix,
        "repeat": st.one_of(st.integers(-1, 3), st.just(1001), HUGE, scalar),
        "run": run,
        "promt": scalar,
    })

# Plausible manifests: valid in shape, so that expansion, templates, images and validation are
# reached; each field is swapped for a hostile value now and then. (Hypothesis favours small
# integers, so the plain choice is always the one at 0.)
plain_text = st.text(st.characters(categories=("L", "N", "Zs", "P")), max_size=10)
var_name = st.sampled_from(["light", "subject", "mood", "caption", "image"])
plain_value = st.one_of(st.integers(-3, 300), plain_text, st.sampled_from(
    ["720P", "1080P", 121, 241, "dawn", "img.png", "small.png", "photo.jpg", True]))
plain_axis = st.one_of(
    st.lists(plain_value, min_size=1, max_size=3),
    st.fixed_dictionaries({"from": st.integers(0, 3), "to": st.integers(0, 5)},
                          optional={"step": st.integers(1, 2)}))
plain_matrix = st.fixed_dictionaries({}, optional={
    "light": plain_axis, "subject": plain_axis, "image": st.lists(image, min_size=1, max_size=2),
    "seed": st.one_of(plain_axis, st.fixed_dictionaries({"random": st.integers(1, 3)})),
    "resolution": st.lists(st.sampled_from(["720P", "1080P", "4K", 720]), min_size=1,
                           max_size=2),
    "number_of_frames": st.lists(st.sampled_from([121, 241, 120]), min_size=1, max_size=2),
    "prompt": st.lists(template, min_size=1, max_size=2),
    "image_urls": st.lists(st.lists(image, min_size=1, max_size=1), min_size=1, max_size=2),
    "exclude": st.lists(st.dictionaries(var_name | st.just("seed"), plain_value, min_size=1,
                                        max_size=2), max_size=2),
    "include": st.lists(st.dictionaries(var_name | st.just("seed"), plain_value, min_size=1,
                                        max_size=2), max_size=2),
    "rows": st.one_of(st.lists(st.dictionaries(var_name, plain_value, min_size=1, max_size=2),
                               min_size=1, max_size=3),
                      st.sampled_from(["rows.csv", "rows.jsonl", {"file": "rows.csv"}])),
})


@st.composite
def plausible(draw: st.DrawFn) -> dict:
    """A manifest built from the real keys, with at most a few hostile fields."""
    def pick(good: st.SearchStrategy, bad: st.SearchStrategy) -> object:
        return draw(bad) if draw(st.integers(0, 99)) >= 92 else draw(good)

    out: dict = {"name": pick(st.from_regex(r"[a-z][a-z0-9._-]{0,12}", fullmatch=True), name),
                 "model": pick(st.just(MODEL), scalar)}
    out["prompt"] = pick(template | st.just({"file": "prompt.j2"}), scalar | template)
    out["inputs"] = pick(st.fixed_dictionaries(
        {"image_urls": st.lists(image, min_size=1, max_size=1)},
        optional={"seed": st.integers(-1, 2**31), "resolution": st.sampled_from(["720P", "4K"])}),
        inputs)
    if draw(st.booleans()):
        out["vars"] = pick(st.dictionaries(var_name, plain_value, max_size=3), anything)
    if draw(st.integers(0, 3)):
        out["matrix"] = pick(plain_matrix, matrix)
    if draw(st.integers(0, 4)) == 0:
        out["repeat"] = pick(st.integers(1, 3), scalar)
    if draw(st.integers(0, 3)) == 0:
        out["backend"] = pick(st.sampled_from(["runcomfy", "sim"]), scalar)
    if draw(st.integers(0, 3)) == 0:
        out["run"] = pick(st.fixed_dictionaries({}, optional={
            "concurrency": st.integers(1, 8), "budget": st.floats(0.5, 100),
            "local_images": st.sampled_from(["data_uri", "refuse"]),
            "price": st.just({"unit": "second", "by": "resolution",
                              "usd": {"720P": 0.05, "1080P": 0.1}}),
            "polling": st.just({"initial": 1, "max": 2})}), run)
    return out


ALIAS_BOMB = ("bomb_a: &a [x, x, x, x, x, x, x, x, x, x]\n"
              "bomb_b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
              "bomb_c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
              "bomb_d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
              "bomb_e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
              "bomb_f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n")
MUTATIONS = [
    lambda t, n: t + "name: again\n",                                       # duplicate key
    lambda t, n: t + "matrix: {}\nmatrix: {seed: [1]}\n",
    lambda t, n: ALIAS_BOMB + t,                                            # alias bomb
    lambda t, n: t + "vars: &v {x: 1}\ndescription: *v\n",                  # anchors
    lambda t, n: t + "bad: *nowhere\n",                                     # unknown alias
    lambda t, n: t + "vars: {deep: " + "[" * (n * 40) + "]" * (n * 40) + "}\n",  # nesting
    lambda t, n: t + "vars: {deep: " + "{a: " * (n * 40) + "1" + "}" * (n * 40) + "}\n",
    lambda t, n: t[: len(t) * n // 10],                                     # truncated
    lambda t, n: t + "\t- : [\n",                                           # syntax error
    lambda t, n: t + "<<: {name: merged}\n",
    lambda t, n: t + "? [a, b]\n: complex key\n",
    lambda t, n: t + "when: 2024-13-45\nbig: " + "9" * 5000 + "\n",
    lambda t, n: t + "vars: {day: 2024-01-02, at: 2024-01-02 10:00:00, raw: !!binary aGk=}\n",
    lambda t, n: t.replace("matrix:", "matrix:\n  day: [2024-01-02, 2001-02-03t04:05:06Z]", 1),
    lambda t, n: t + "tagged: !!python/object:os.system x\n",
    lambda t, n: "%YAML 1.1\n---\n" + t + "---\nsecond: doc\n",
]


def render(data: dict, unicode: bool) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=unicode, sort_keys=False, width=10**6)
    except (yaml.YAMLError, RecursionError):  # e.g. a value PyYAML cannot write
        return yaml.safe_dump({"name": "t", "model": MODEL}, sort_keys=False)


@st.composite
def manifest_bytes(draw: st.DrawFn) -> bytes:
    data = draw(manifest) if draw(st.integers(0, 3)) == 3 else draw(plausible())
    text_ = render(data, draw(st.booleans()))
    if draw(st.integers(0, 4)) == 4:  # a text mutation in about one example out of five
        index = draw(st.integers(0, len(MUTATIONS) - 1))
        text_ = MUTATIONS[index](text_, draw(st.integers(1, 9)))
    raw = text_.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 19)) == 19:  # now and then, random bytes somewhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    return raw


LINE = r"(?::\d+:\d+)?: \S"


def run_cli(folder: Path, raw: bytes) -> None:
    path = folder / "m.yaml"
    path.write_bytes(raw)
    for argv in (["validate", "--offline", str(path)],
                 ["plan", "--offline", "--json", "--out", str(folder.parent / "out"),
                  str(path)]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        stderr = err.getvalue()
        assert code in (0, 2), (argv[0], code, stderr)
        assert "Traceback" not in stderr + out.getvalue(), stderr
        assert "internal error" not in stderr, stderr
        if code == 2:
            lines = stderr.splitlines()
            assert lines, f"{argv[0]} exited 2 without saying why"
            pattern = re.compile(re.escape(str(folder)) + r"/[^:\n]+" + LINE)
            for line in lines:
                assert pattern.match(line), (argv[0], line)


@settings(FUZZ)
@given(raw=manifest_bytes())
def test_generated_manifests_exit_0_or_2_with_located_lines(folder: Path, raw: bytes) -> None:
    """Every generated manifest: exit 0 or 2, no traceback, each error line names file:line."""
    run_cli(folder, raw)


@settings(FUZZ, max_examples=max(EXAMPLES * 3 // 20, 15))
@given(raw=st.one_of(st.binary(max_size=200),
                     st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_random_bytes_exit_0_or_2_with_located_lines(folder: Path, raw: bytes) -> None:
    """Random bytes and text as a manifest: a located one-line answer, never a traceback."""
    run_cli(folder, raw)
