#!/usr/bin/env bash
# The package works without the source tree: build the sdist and, from it, the wheel
# (python -m build), install the wheel into a fresh virtual environment outside the checkout,
# and run the demo from a copy of jobs/demo.yaml (and its image) in an empty folder. The
# schemas, the report's templates and the bundled model come from the wheel; so does the
# licence file. `pipx install .` installs the same wheel the same way. Called by .ci/run.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; echo "check_wheel: python -m build failed" >&2; exit 1; }
wheel="$(ls "$work"/dist/*.whl)"
echo "check_wheel: built $(basename "$wheel") and $(cd "$work/dist" && ls ./*.tar.gz)"

# What must be inside the wheel.
"$python" - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["pipeline/py.typed", "pipeline/_schemas/manifest.schema.json",
        "pipeline/_schemas/report.schema.json",
        "pipeline/_schemas/models/bytedance/dreamina-3-0/image-to-video/input.schema.json",
        "pipeline/report/templates/report.html.j2"]
missing = [n for n in need if n not in names]
missing += [] if any(n.endswith(".dist-info/licenses/LICENSE") for n in names) else ["LICENSE"]
if missing:
    sys.exit(f"check_wheel: missing from the wheel: {', '.join(missing)}")
PY

"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log" >&2; echo "check_wheel: pip install of the wheel failed" >&2; exit 1; }
# An empty folder with nothing but the demo manifest and its image: no checkout near it.
demo="$work/empty"
mkdir -p "$demo/images"
cp "$repo/jobs/demo.yaml" "$demo/"
cp "$repo/jobs/images/harbor.jpg" "$demo/images/"
cd "$demo"
version="$("$work/venv/bin/python" -c 'import pipeline; print(pipeline.__version__)')"
test "$("$work/venv/bin/pipeline" --version)" = "pipeline $version"
test "$("$work/venv/bin/runcomfy-batch" --version)" = "pipeline $version"
"$work/venv/bin/python" - "$work/venv" <<'PY'
import sys
from pathlib import Path
import pipeline
from pipeline.models.catalogue import schemas_dir
venv = Path(sys.argv[1]).resolve()
for found in (Path(pipeline.__file__), schemas_dir()):
    if venv not in found.resolve().parents:
        sys.exit(f"check_wheel: {found} is not from the installed wheel in {venv}")
PY
env -u RUNCOMFY_API_TOKEN -u RUNCOMFY_BASE_URL -u PIPELINE_LEDGER \
  "$work/venv/bin/pipeline" run demo.yaml --progress plain
test -s outputs/demo/report.html && test -s outputs/demo/report.json
clips="$(ls outputs/demo/videos/*.mp4 | wc -l)"
test "$clips" -eq 4 || { echo "check_wheel: $clips clips, expected 4" >&2; exit 1; }
echo "check_wheel: ok: $(basename "$wheel") runs the demo from an empty folder ($clips clips)"
