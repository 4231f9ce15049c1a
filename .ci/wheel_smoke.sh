#!/usr/bin/env bash
# The package as a user installs it: builds the sdist and, from it, the wheel; installs the wheel
# (not editable) with its dependencies from the registry into a fresh virtual environment, and runs
# .ci/wheel_smoke.py there from a temporary folder outside the checkout (import, `fastdl info`,
# one training step on each CPU backend, mypy on a user's file).
#
#     .ci/wheel_smoke.sh            # needs `build` and setuptools>=77 (the test extra) and the registry
#     KEEP=1 .ci/wheel_smoke.sh     # keeps the temporary folder (venv, wheel) and prints its path
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastdl-wheel.XXXXXX")"
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$WORK"' EXIT; else echo "wheel smoke folder: $WORK"; fi
start=$SECONDS
# --no-isolation: the build tools of the test extra, no download; the wheel is built from the sdist
python -m build --no-isolation --outdir "$WORK/dist" "$ROOT" > "$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; exit 1; }
python -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --disable-pip-version-check "$WORK"/dist/*.whl mypy \
    > "$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; exit 1; }
cd "$WORK"
# a fresh Numba cache: every kernel the step needs is compiled, as on a user's first run
env -u PYTHONPATH NUMBA_CACHE_DIR="$WORK/numba-cache" PYTHONNOUSERSITE=1 \
    "$WORK/venv/bin/python" "$ROOT/.ci/wheel_smoke.py" "$ROOT"
echo "wheel smoke test passed in $((SECONDS - start)) s"
