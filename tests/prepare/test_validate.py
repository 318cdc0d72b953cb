"""Request validation: the model schema, its custom image rules on both sides, formats, URLs."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
from imagefiles import MODEL, data_uri, image_bytes, write_image, write_manifest

from pipeline.errors import ManifestError
from pipeline.prepare.plan import build_plan, validate_files

MIB = 1024 * 1024


def job(folder: Path, image: str = "img.png", *, extra: str = "", prompt: str = "a boat") -> Path:
    return write_manifest(folder, f"name: t\nmodel: {MODEL}\nprompt: {prompt!r}\n"
                                  f"inputs:\n  image_urls: [{image!r}]\n  seed: 1\n{extra}")


def problems_for(folder: Path, **kwargs) -> list[str]:
    try:
        build_plan(job(folder, **kwargs))
    except ManifestError as exc:
        return exc.lines()
    return []


# (width, height, format, bytes or None, expected message or None)
RULES = [
    pytest.param(640, 480, "PNG", int(4.6 * MIB), None, id="size-4.6MB-ok"),
    pytest.param(640, 480, "PNG", int(4.8 * MIB), "File size must be less than 4.7 MB.",
                 id="size-4.8MB-too-big"),
    pytest.param(4096, 2000, "PNG", None, None, id="width-4096-ok"),
    pytest.param(4097, 2000, "PNG", None, "Maximum resolution is 4096×4096.", id="width-4097"),
    pytest.param(2000, 4096, "PNG", None, None, id="height-4096-ok"),
    pytest.param(2000, 4097, "PNG", None, "Maximum resolution is 4096×4096.", id="height-4097"),
    pytest.param(320, 400, "PNG", None, None, id="short-side-320-ok"),
    pytest.param(319, 400, "PNG", None, "The shortest side must be at least 320 px.",
                 id="short-side-319"),
    pytest.param(960, 320, "PNG", None, None, id="ratio-3.0-ok"),
    pytest.param(1120, 320, "PNG", None, "The long-to-short side ratio must be within 3:1.",
                 id="ratio-3.5"),
    pytest.param(331, 1000, "PNG", None, None, id="ratio-0.331-ok"),
    pytest.param(320, 980, "PNG", None,
                 "The long-to-short side ratio must be greater than 0.33.", id="ratio-0.327"),
    pytest.param(640, 480, "JPEG", None, None, id="jpeg-ok"),
    pytest.param(640, 480, "GIF", None, "the model takes JPEG or PNG", id="gif-refused"),
    pytest.param(640, 480, "WEBP", None, "the model takes JPEG or PNG", id="webp-refused"),
]


@pytest.mark.parametrize("width,height,fmt,size,expected", RULES)
def test_image_rules_on_both_sides_of_their_bounds(tmp_path: Path, width: int, height: int,
                                                   fmt: str, size: int | None,
                                                   expected: str | None) -> None:
    """Each of the schema's image rules passes at its bound and fails just past it."""
    write_image(tmp_path / "img.png", width, height, fmt, pad_to=size)
    lines = problems_for(tmp_path)
    if expected is None:
        assert lines == []
    else:
        assert len(lines) == 1, lines
        assert expected in lines[0]
        assert lines[0].startswith(f"{tmp_path / 'job.yaml'}:5:16: image_urls[0] 'img.png'")


def test_format_is_judged_by_content_not_name(tmp_path: Path) -> None:
    """A PNG named .jpg is accepted; a text file named .png is refused."""
    write_image(tmp_path / "really-png.jpg", 640, 480, "PNG")
    assert problems_for(tmp_path, image="really-png.jpg") == []
    (tmp_path / "fake.png").write_text("hello")
    [line] = problems_for(tmp_path, image="fake.png")
    assert "not a readable image" in line


@pytest.mark.parametrize("content,expected", [
    (b"", "empty (0 bytes)"),
    (image_bytes(640, 480, "PNG")[:200], "broken or truncated"),
])
def test_empty_and_truncated_files(tmp_path: Path, content: bytes, expected: str) -> None:
    """A 0-byte file and a truncated PNG each give one clear message."""
    (tmp_path / "img.png").write_bytes(content)
    [line] = problems_for(tmp_path)
    assert expected in line


def test_missing_image_and_escaping_path(tmp_path: Path) -> None:
    """A missing file and a path leaving the manifest's folder are refused with the reason."""
    [line] = problems_for(tmp_path, image="nope.png")
    assert "file not found" in line
    [line] = problems_for(tmp_path, image="../outside.png")
    assert "outside the manifest's folder" in line


def test_data_uris_are_checked_like_files(tmp_path: Path) -> None:
    """A data: URI is decoded and held to the same rules; a malformed one is refused."""
    assert problems_for(tmp_path, image=data_uri(640, 480)) == []
    [line] = problems_for(tmp_path, image=data_uri(300, 480))
    assert "shortest side must be at least 320" in line
    [line] = problems_for(tmp_path, image="data:image/png;base64,@@@")
    assert "invalid base64" in line


def test_prompt_limit_from_the_schema_description(tmp_path: Path) -> None:
    """The prompt must be less than 800 characters: 799 passes, 800 and 801 fail."""
    write_image(tmp_path / "img.png")
    assert problems_for(tmp_path, prompt="x" * 799) == []
    for n in (800, 801):
        [line] = problems_for(tmp_path, prompt="x" * n)
        assert f"prompt is {n} characters" in line and "\"less than 800 characters\"" in line


def test_enum_type_and_item_count_errors_name_the_field(tmp_path: Path) -> None:
    """Enum errors list the allowed values; type and count errors say what was expected."""
    write_image(tmp_path / "img.png")
    path = write_manifest(tmp_path, f"""
        name: t
        model: {MODEL}
        prompt: hi
        inputs:
          image_urls: [img.png, img.png]
          number_of_frames: 120
          seed: "abc"
        matrix:
          resolution: [720P, 4K]
        """)
    with pytest.raises(ManifestError) as info:
        build_plan(path)
    text = "\n".join(info.value.lines())
    assert ":5:15: image_urls: takes exactly 1 item (got 2)" in text
    assert ":6:21: number_of_frames: 120 is not one of 121, 241" in text
    assert ":7:9: seed: expected integer, got str 'abc'" in text
    assert ":9:22: resolution: '4K' is not one of 720P, 1080P" in text


def test_missing_required_prompt(tmp_path: Path) -> None:
    """A job with no prompt anywhere is told the prompt is required."""
    write_image(tmp_path / "img.png")
    path = write_manifest(tmp_path, f"name: t\nmodel: {MODEL}\ninputs:\n  image_urls: [img.png]\n")
    with pytest.raises(ManifestError, match="missing required input 'prompt'"):
        build_plan(path)


def test_one_bad_image_in_ten_thousand_cells_is_one_line(tmp_path: Path) -> None:
    """A bad image shared by 10,000 cells is reported once, with the cells it affects counted."""
    write_image(tmp_path / "img.png", 300, 300)
    path = write_manifest(tmp_path, f"name: t\nmodel: {MODEL}\nprompt: hi\n"
                                    "inputs:\n  image_urls: [img.png]\n"
                                    "matrix:\n  seed: {from: 1, to: 10000}\n")
    with pytest.raises(ManifestError) as info:
        build_plan(path)
    [line] = info.value.lines()
    assert "shortest side must be at least 320" in line and "affects 10000 cells" in line


class _Images(http.server.BaseHTTPRequestHandler):
    hits: dict[str, int] = {}
    files = {"/ok.png": image_bytes(640, 480), "/small.jpg": image_bytes(200, 200, "JPEG")}

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits[self.path] = type(self).hits.get(self.path, 0) + 1
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def image_server():
    _Images.hits = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_images_are_fetched_once_and_checked(tmp_path: Path, image_server: str) -> None:
    """Remote images are fetched once per distinct URL and held to the same rules."""
    path = write_manifest(tmp_path, f"""
        name: t
        model: {MODEL}
        prompt: hi
        matrix:
          image_urls: [["{image_server}/ok.png"], ["{image_server}/small.jpg"],
                       ["{image_server}/missing.png"], ["{image_server}/loop"]]
          seed: {{from: 1, to: 50}}
        """)
    with pytest.raises(ManifestError) as info:
        build_plan(path)
    text = "\n".join(info.value.lines())
    assert "small.jpg': The shortest side must be at least 320 px. (it is 200)" in text
    assert "missing.png': fetching it answered HTTP 404" in text
    assert "loop': too many redirects" in text
    assert "ok.png" not in text
    assert _Images.hits["/ok.png"] == 1 and _Images.hits["/small.jpg"] == 1


def test_offline_skips_remote_images_with_a_warning(tmp_path: Path, image_server: str) -> None:
    """With fetching off, remote images are not looked at and the plan says so."""
    path = job(tmp_path, image=f"{image_server}/small.jpg")
    plan = build_plan(path, fetch_remote=False)
    assert any("not fetched (offline)" in str(w) for w in plan.warnings)
    assert _Images.hits == {}


def test_validate_files_reports_all_manifests_together(tmp_path: Path) -> None:
    """Problems of several manifests come out together; valid ones are summarised."""
    write_image(tmp_path / "img.png")
    good = job(tmp_path)
    bad = write_manifest(tmp_path, f"name: t\nmodel: {MODEL}\nprompt: hi\n"
                                   "inputs:\n  image_urls: [nope.png]\n", name="bad.yaml")
    report = validate_files([good, bad])
    assert report.failed
    line, ok = report.lines()
    assert line.startswith(f"{bad}:5:16:") and "file not found" in line
    assert ok.startswith(f"{good}: ok, ")
