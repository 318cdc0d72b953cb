"""A manifest may come from someone else: its templates, paths, names and sizes are bounded.

Templates cannot reach Python internals, allocate without bound or run without end (each
rendering has a step, time and size budget); files named by a manifest stay inside its project
(the folder holding .git; its own folder without one) unless the user passes
`--allow-outside-paths`; job names cannot leave the output folder; a matrix too large to run is
refused before anything is expanded. Every refusal is one located line.
"""

from __future__ import annotations

import contextlib
import io
import time
import tracemalloc
from pathlib import Path

import pytest
from imagefiles import MODEL, write_image, write_manifest

from pipeline.cli import main
from pipeline.prepare import plan as plan_module
from pipeline.prepare import render_limits as render_module
from pipeline.prepare.manifest import MAX_CELLS
from pipeline.prepare.plan import build_plan, validate_files

MIB = 1024 * 1024


def _no_drafting(*_: object, **__: object) -> None:
    raise AssertionError("cells were drafted: the manifest was not refused before expanding")


def _drafting_at_most(limit: int):
    """plan's `drafts`, failing the test once it has drafted more than `limit` cells."""
    real = plan_module.drafts

    def drafts(*args: object, **kwargs: object):
        for n, draft in enumerate(real(*args, **kwargs), 1):
            if n > limit:
                raise AssertionError(f"more than {limit} cells drafted: the range was built")
            yield draft
    return drafts


def problems(path: Path, **kwargs) -> list[str]:
    return validate_files([path], **kwargs).lines()


def prompt_job(folder: Path, template: str) -> Path:
    write_image(folder / "img.png")
    return write_manifest(folder, f"name: t\nmodel: {MODEL}\nprompt: {template!r}\n"
                                  "inputs: {image_urls: [img.png], seed: 1}\n")


SANDBOX = "template refused by the sandbox"
TEMPLATES = [  # (template, expected text)
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "access to attribute '__class__'"),
    ("{{ cycler.__init__.__globals__ }}", "undefined template variable 'cycler'"),
    ("{{ joiner() }}", "undefined template variable 'joiner'"),
    ("{{ namespace(x=1) }}", "undefined template variable 'namespace'"),
    ("{{ lipsum(10**9) }}", "undefined template variable 'lipsum'"),
    ("{{ self._TemplateReference__context }}", "access to attribute"),
    ("{{ self.__init__.__globals__ }}", "access to attribute '__init__'"),
    ("{{ range(10**9) | list | length }}", "Range too big"),
    ("{{ 'x' * 10**9 }}", "repetition would make"),
    ("{{ [1] * 10**9 }}", "repetition would make"),
    ("{{ ('x' * 1000000) ~ ('y' * 1000000) }}", "~ would make more than"),
    ("{{ '%999999999s' % 'x' }}", "%-formatting would make more than"),
    ("{{ '%*s' % (10**9, 'x') }}", "%-formatting would make more than"),
    ("{{ '%s' % ''.__class__ }}", "access to attribute '__class__'"),
    ("{{ '{0.__class__}'.format(1) }}", "access to attribute '__class__'"),
    ("{{ '{0.__class__.__mro__}'.format('') }}", "access to attribute '__class__'"),
    ("{{ '{:>999999999}'.format(1) }}", "format() would make more than"),
    ("{{ '{:{}}'.format(1, 10**9) }}", "format() would make more than"),
    ("{{ '%999999999d' | format(1) }}", "format would make more than"),
    ("{{ 'x'.ljust(10**9) }}", "ljust() width 1000000000 is larger than"),
    ("{{ ('x' * 100000).replace('x', 'y' * 1000) }}", "replace() would make more than"),
    ("{{ ('x' * 100000) | replace('x', 'y' * 1000) }}", "replace would make more than"),
    ("{{ ('y' * 1000).join('x' * 100000) }}", "join() would make more than"),
    ("{{ 'abc'.translate({97: 'z' * 10**5}) }}", "access to attribute 'translate'"),
    ("{{ 'x' | center(10**9) }}", "No filter named 'center'"),
    ("{{ [1, 2] | random }}", "No filter named 'random'"),
    ("{{ (10**100) ** 100 }}", "the power would be too large"),
    ("{% set s = 'x' * 500000 %}{% set a = [s, s] %}{{ [a, a, a] }}", "writes more than"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     SANDBOX),  # 1,000,000 steps or 2 s, whichever comes first
    ("{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}",
     "characters"),
    ("{% for i in range(100000) %}{% for j in range(1000) %}xxxxxxxxxx{% endfor %}{% endfor %}",
     "characters"),
    ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
     SANDBOX),
    ("{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}", "recursion too deep"),
    ("{% for i in [1] recursive %}{{ loop([1]) }}{% endfor %}", "recursive for loops"),
    ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "nested too deeply"),
    ("{% include '/etc/passwd' %}", "no loader"),
]


@pytest.mark.parametrize("template,expected", TEMPLATES, ids=[t[:40] for t, _ in TEMPLATES])
def test_hostile_template_is_refused_or_bounded(tmp_path: Path, template: str,
                                                expected: str) -> None:
    """Each sandbox escape or resource attack is one line at the prompt, in bounded time."""
    path = prompt_job(tmp_path, template)
    tracemalloc.start()
    start = time.monotonic()
    try:
        lines = problems(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - start
    assert elapsed < render_module.MAX_SECONDS + 3, elapsed
    assert peak < 64 * MIB, peak
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}:3:9: prompt: "), lines
    assert expected in lines[0], lines


def test_ordinary_templates_still_work(tmp_path: Path) -> None:
    """The bounds leave everyday template features alone."""
    template = ("{{ 'a b'.split() | join(', ') }} {{ 'ok' | upper }} {{ '%05d' | format(7) }} "
                "{{ '%s-%s' % (1, 2) }} {{ 'x' ~ 1 }} {{ '{:>4}'.format('r') }} "
                "{% for i in range(3) %}{{ loop.index }}{% endfor %} {{ 2 ** 10 }}")
    [cell] = build_plan(prompt_job(tmp_path, template)).cells
    assert cell.request["prompt"] == "a, b OK 00007 1-2 x1    r 123 1024"


# --- paths ------------------------------------------------------------------------------------
@pytest.fixture
def outside(tmp_path: Path) -> dict[str, Path]:
    """A job folder, and beside it (outside it) a valid image, prompt file and rows file."""
    job = tmp_path / "job"
    job.mkdir()
    files = {"image": write_image(tmp_path / "secret.png"),
             "prompt": tmp_path / "secret.j2", "rows": tmp_path / "secret.csv"}
    files["prompt"].write_text("a secret {{ 'prompt' }}")
    files["rows"].write_text("caption\na boat\n")
    for kind, file in files.items():
        (job / f"link-{kind}{file.suffix}").symlink_to(file)
    write_image(job / "img.png")
    return {"job": job, **files}


def path_job(job: Path, kind: str, name: str) -> Path:
    image, prompt, rows = "img.png", "prompt: a boat", ""
    if kind == "image":
        image = name
    elif kind == "prompt":
        prompt = f"prompt: {{file: {name!r}}}"
    else:
        prompt, rows = "prompt: '{{ caption }}'", f"matrix:\n  rows: {{file: {name!r}}}\n"
    return write_manifest(job, f"name: t\nmodel: {MODEL}\n{prompt}\n"
                               f"inputs: {{image_urls: [{image!r}], seed: 1}}\n{rows}")


ESCAPES = [("dotdot", "../secret{ext}"), ("deep-dotdot", "../../../../../../..{abs}"),
           ("absolute", "{abs}"), ("symlink", "link-{kind}{ext}")]
KINDS = {"image": (".png", "4:23", "image_urls[0]"), "prompt": (".j2", "3:16", ""),
         "rows": (".csv", "6:16", "")}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("how,pattern", ESCAPES, ids=[e[0] for e in ESCAPES])
def test_paths_cannot_leave_the_manifest_folder(outside: dict[str, Path], kind: str, how: str,
                                                pattern: str) -> None:
    """`..`, absolute paths and symlinks out of the folder are refused for images, prompt
    files and rows files alike, at the line naming them; `--allow-outside-paths` lets them in."""
    ext, where, _ = KINDS[kind]
    name = pattern.format(ext=ext, kind=kind, abs=outside[kind])
    path = path_job(outside["job"], kind, name)
    lines = problems(path)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}:{where}: "), lines
    assert any(word in lines[0] for word in ("outside the manifest's folder", "absolute path")), \
        lines
    assert "--allow-outside-paths" in lines[0]
    assert problems(path, allow_outside=True) == [f"{path}: ok, 1 cell"]


def test_passwd_is_never_read_as_rows_or_prompt(outside: dict[str, Path]) -> None:
    """`../../etc/passwd` is refused by where it points, before the file is opened."""
    for kind in ("prompt", "rows"):
        path = path_job(outside["job"], kind, "../../../../../../../../etc/passwd")
        [first, *_] = problems(path)
        assert "points outside the manifest's folder" in first and "root:" not in first


def test_cli_flag_allows_outside_paths(outside: dict[str, Path]) -> None:
    """`pipeline validate/plan --allow-outside-paths` accept a file outside the folder."""
    path = path_job(outside["job"], "image", str(outside["image"]))
    for argv in (["validate", "--offline", str(path)],
                 ["plan", "--offline", "--out", str(outside["job"] / "out"), str(path)]):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            assert main(argv) == 2
        assert "absolute path" in err.getvalue()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main([argv[0], "--allow-outside-paths", *argv[1:]]) == 0


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    """A project (a folder holding .git) with jobs/, and beside it images/, prompts/ and
    data/ holding an image, a prompt file and a rows file; outside the project, another image."""
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "jobs").mkdir()
    files = {"image": write_image(root / "images" / "a.png"),
             "prompt": root / "prompts" / "boat.j2", "rows": root / "data" / "rows.csv"}
    files["prompt"].parent.mkdir()
    files["prompt"].write_text("a boat {{ 'at dawn' }}")
    files["rows"].parent.mkdir()
    files["rows"].write_text("caption\na boat\n")
    write_image(root / "jobs" / "img.png")
    write_image(tmp_path / "secret.png")
    return {"root": root, "job": root / "jobs", **files}


@pytest.mark.parametrize("kind,name", [("image", "../images/a.png"),
                                       ("prompt", "../prompts/boat.j2"),
                                       ("rows", "../data/rows.csv")])
def test_files_anywhere_in_the_project_are_allowed(project: dict[str, Path], kind: str,
                                                   name: str) -> None:
    """An image, prompt file or rows file in the project root's folders (images/ beside jobs/)
    is read without --allow-outside-paths; so is an absolute path into the project."""
    assert problems(path_job(project["job"], kind, name)) == \
        [f"{project['job'] / 'job.yaml'}: ok, 1 cell"]
    assert problems(path_job(project["job"], kind, str(project[kind]))) == \
        [f"{project['job'] / 'job.yaml'}: ok, 1 cell"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_paths_cannot_leave_the_project(project: dict[str, Path], kind: str) -> None:
    """A path that leads out of the project root is refused, naming the project, at the line
    naming it; `--allow-outside-paths` still lets it in."""
    ext, where, _ = KINDS[kind]
    outside = project["root"].parent / f"secret{ext}"
    if kind != "image":
        outside.write_text("caption\na boat\n" if kind == "rows" else "a secret")
    for name in (f"../../secret{ext}", str(outside)):
        path = path_job(project["job"], kind, name)
        [line] = problems(path)
        assert line.startswith(f"{path}:{where}: ") and \
            f"outside the project {project['root']}" in line, line
        assert "--allow-outside-paths" in line
        assert problems(path, allow_outside=True) == [f"{path}: ok, 1 cell"]


# --- names and sizes ---------------------------------------------------------------------------
NAMES = ["..", ".", "-rf", "--out=/etc", "a/b", "../x", "a\\b", "", " t", "a" * 101,
         "ｈａｒｂｏｒ", "h\u0430rbor", "t\u202e", "t\x00", "~", "$HOME"]


@pytest.mark.parametrize("name", NAMES, ids=[repr(n)[:20] for n in NAMES])
def test_job_names_cannot_make_paths_outside_the_output_folder(tmp_path: Path,
                                                               name: str) -> None:
    """Names that are path tricks, options, too long or lookalikes are refused at `name:`."""
    path = write_manifest(tmp_path, f'name: "{name.encode("unicode_escape").decode()}"\n'
                                    f"model: {MODEL}\n")
    [line] = problems(path)
    assert line.startswith(f"{path}:1:7: name: ") and "must be letters, digits" in line, line


def test_astronomical_matrix_is_refused_before_expanding(tmp_path: Path, monkeypatch) -> None:
    """A product of axes far above the cell cap is refused before any cell is drafted, with
    its factors."""
    path = write_manifest(tmp_path, f"""
        name: t
        model: {MODEL}
        prompt: "{{{{ a }}}} {{{{ b }}}} {{{{ c }}}}"
        inputs: {{image_urls: [img.png]}}
        matrix:
          a: {{from: 1, to: 1000000}}
          b: {{from: 1, to: 1000000}}
          c: {{from: 1, to: 1000000}}
          seed: {{random: 100000}}
        repeat: 1000
        """)
    monkeypatch.setattr(plan_module, "drafts", _no_drafting)
    [line] = problems(path)
    assert line.startswith(f"{path}:5:1: the matrix makes "), line
    assert f"more than the limit of {MAX_CELLS:,}" in line
    assert "1,000,000 a x 1,000,000 b x 1,000,000 c x 100,000 seed x 1000 repeats" in line


def test_huge_range_is_refused_without_being_built(tmp_path: Path, monkeypatch) -> None:
    """`{from: 1, to: 10**12}` is one located line, before any cell is drafted."""
    write_image(tmp_path / "img.png")
    path = write_manifest(tmp_path, f"name: t\nmodel: {MODEL}\nprompt: x\n"
                                    "inputs: {image_urls: [img.png]}\n"
                                    "matrix:\n  seed: {from: 1, to: 1000000000000}\n")
    monkeypatch.setattr(plan_module, "drafts", _drafting_at_most(1))
    [line] = problems(path)
    assert line.startswith(f"{path}:6:9: matrix.seed: range of 1000000000000 values"), line


@pytest.mark.parametrize("line,expected", [
    ("[" * 100_000 + "]" * 100_000, "bad JSON: nested too deeply"),
    ('{"seed": ' + "9" * 5000 + "}", "bad JSON: Exceeds the limit"),
    ('{"seed": 1', "bad JSON: Expecting"),
])
def test_hostile_rows_file_lines_are_located(tmp_path: Path, line: str, expected: str) -> None:
    """A JSONL rows line that is too deep, too big a number or broken is one line at itself."""
    write_image(tmp_path / "img.png")
    (tmp_path / "rows.jsonl").write_text('{"seed": 1}\n' + line + "\n")
    path = write_manifest(tmp_path, f"name: t\nmodel: {MODEL}\nprompt: x\n"
                                    "inputs: {image_urls: [img.png]}\n"
                                    "matrix:\n  rows: rows.jsonl\n")
    [problem] = problems(path)
    assert problem.startswith(f"{tmp_path / 'rows.jsonl'}:2:") and expected in problem, problem


def test_oversized_prompt_file_is_refused_before_reading(tmp_path: Path) -> None:
    """A prompt file over 1 MB is refused by its size, not read and rendered."""
    write_image(tmp_path / "img.png")
    with open(tmp_path / "p.j2", "wb") as f:
        f.truncate(2 * MIB)
    path = write_manifest(tmp_path, f"name: t\nmodel: {MODEL}\nprompt: {{file: p.j2}}\n"
                                    "inputs: {image_urls: [img.png], seed: 1}\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:3:16: cannot read prompt file 'p.j2': larger than"), \
        problem


def test_expansion_as_a_whole_is_bounded_in_time(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Many cells with slow (but each bounded) templates stop at the expansion's own limit."""
    from pipeline.prepare import expand

    monkeypatch.setattr(expand, "MAX_EXPAND_SECONDS", 0.5)
    write_image(tmp_path / "img.png")
    path = write_manifest(tmp_path, f"""
        name: t
        model: {MODEL}
        prompt: "{{% for i in range(20000) %}}{{% endfor %}}{{{{ seed }}}}"
        inputs: {{image_urls: [img.png]}}
        matrix:
          seed: {{from: 1, to: 100000}}
        """)
    start = time.monotonic()
    [line] = problems(path)
    assert time.monotonic() - start < 10
    assert line.startswith(f"{path}:3:9: expanding took more than 0.5 s (stopped after "), line
