#!/usr/bin/env bash
# The course's two commands (see README.md):
#   bash course.sh lab    set everything up, then open the course in JupyterLab
#   bash course.sh test   set everything up, then run the whole test suite (quick profile)
# and, for instructors (INSTRUCTORS.md), the set-up alone:
#   bash course.sh setup  set everything up (the venv with torch, course_lib and JupyterLab)
# Set-up is idempotent: a second run reuses the virtual environment and the data it finds.
#
# Environment variables:
#   PYTHON        the interpreter that creates the venv (default: python3.11, else python3)
#   COURSE_VENV   where the venv lives (default: .venv in this folder)
#   LAB_PORT      JupyterLab's port (default 8888)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=${COURSE_VENV:-.venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
PIP_QUIET=(--quiet --disable-pip-version-check)

say() { printf '\n==> %s\n' "$*"; }

make_venv() {
    if [ -x "$VENV/bin/python" ]; then
        return
    fi
    say "Creating the virtual environment $VENV with $("$PYTHON" --version)"
    if "$PYTHON" -c "import torch" 2>/dev/null; then
        # torch is already installed for this interpreter (as on Colab or a prepared machine):
        # let the venv see it rather than installing a second copy.
        "$PYTHON" -m venv --system-site-packages "$VENV"
    else
        "$PYTHON" -m venv "$VENV"
    fi
}

get_uv() {
    # uv installs the requirements two to three times faster than pip (parallel downloads and
    # unpacking). Only in a venv of its own: in one that sees the system's packages, uv would not
    # count a system torch as installed and could fetch another. Without uv, pip does the work.
    if [ ! -x "$VENV/bin/uv" ] && grep -q "include-system-site-packages = false" "$VENV/pyvenv.cfg"; then
        "$VENV/bin/python" -m pip install "${PIP_QUIET[@]}" uv || true
    fi
}

installer() {
    if [ -x "$VENV/bin/uv" ]; then
        # --compile-bytecode: pip's default; without it every import of torch recompiles its
        # sources when PYTHONDONTWRITEBYTECODE is set.
        "$VENV/bin/uv" pip install --quiet --compile-bytecode --python "$VENV/bin/python" "$@"
    else
        "$VENV/bin/python" -m pip install "${PIP_QUIET[@]}" "$@"
    fi
}

install_torch() {
    if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        say "torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') is present; leaving it as it is"
        return
    fi
    local pip=("$VENV/bin/python" -m pip install "${PIP_QUIET[@]}")
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        say "Installing torch with CUDA (a GPU is present)"
        "${pip[@]}" torch
        return
    fi
    # No GPU: a CPU build is all the course needs. Prefer one that already lies on this machine
    # (pip's find-links), which costs no download; otherwise take PyTorch's CPU-only index, which
    # is a few hundred MB instead of the multi-GB CUDA build.
    local local_wheel
    local_wheel=$("$VENV/bin/python" -m pip install --dry-run --no-index --no-deps --quiet \
        --report - torch 2>/dev/null |
        "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["install"][0]["download_info"]["url"])' \
        2>/dev/null || true)
    if [ -n "$local_wheel" ]; then
        say "Installing the CPU build of torch found on this machine (${local_wheel##*/})"
        installer "torch @ $local_wheel"
    else
        say "Installing the CPU build of torch from PyTorch's CPU index"
        "${pip[@]}" torch --index-url https://download.pytorch.org/whl/cpu \
            --extra-index-url https://pypi.org/simple
    fi
}

setup() {
    make_venv
    get_uv
    install_torch
    say "Installing course_lib and the course's requirements"
    installer -r requirements.txt "$@"
}

make_data() {
    say "Generating the course data (kept when already valid)"
    COURSE_PROFILE=quick "$VENV/bin/python" data_scripts/make_data.py --profile quick
}

case "${1:-}" in
lab)
    setup
    make_data
    say "Opening the course in JupyterLab (Ctrl-C stops it)"
    root_flag=()
    [ "$(id -u)" = 0 ] && root_flag=(--allow-root)
    exec "$VENV/bin/jupyter-lab" "${root_flag[@]}" --ServerApp.root_dir=notebooks \
        --ServerApp.port="${LAB_PORT:-8888}" "${@:2}"
    ;;
setup)
    setup
    say "Set up. Activate the environment with: . $VENV/bin/activate"
    ;;
test)
    setup -r requirements-dev.txt
    say "Running the test suite (unit tests, and every chapter as Colab opens it, quick profile)"
    export COURSE_PROFILE=quick
    # Two pytest workers share the 2 cores: one thread each, or the workers fight over them.
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
    # The chapters make their own data in empty folders (tests/test_chapters.py), as on Colab;
    # work stealing keeps both workers busy until the last chapter ends.
    exec "$VENV/bin/python" -m pytest -n 2 --dist worksteal tests "${@:2}"
    ;;
*)
    echo "usage: bash course.sh lab|test|setup [extra arguments for jupyter-lab or pytest]" >&2
    exit 2
    ;;
esac
