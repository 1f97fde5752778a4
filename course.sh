#!/usr/bin/env bash
# The course's two commands (see README.md):
#   bash course.sh lab [JupyterLab's own arguments]   set up, then open the course in JupyterLab
#   bash course.sh test [pytest's own arguments]      set up, then run the whole test suite
# and, for instructors (INSTRUCTORS.md), the set-up alone:
#   bash course.sh setup  set everything up (the venv with torch, course_lib and JupyterLab)
# Set-up is idempotent: a second run reuses the virtual environment and the data it finds, and
# skips the installers when the requirements have not changed since the last successful install.
#
# Environment variables:
#   PYTHON        the interpreter that creates the venv (default: python3.11, else python3)
#   COURSE_VENV   where the venv lives (default: .venv in this folder)
#   LAB_PORT      JupyterLab's port when no port argument is given (default: JupyterLab's, 8888)
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
    # A stamp in the venv records what the last successful install was made from; while the
    # requirement files, pyproject.toml, the arguments and the interpreter stay the same, a
    # second start skips torch's check and pip (which take many seconds even with nothing to do).
    local stamp="$VENV/.course-setup-$1" wanted
    shift
    wanted=$(cat requirements*.txt pyproject.toml <(printf '%s\n' "$@" "$PYTHON") 2>/dev/null |
        sha256sum | cut -d' ' -f1)
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
        say "Requirements unchanged since the last set-up: skipping pip"
        return
    fi
    make_venv
    get_uv
    install_torch
    say "Installing course_lib and the course's requirements"
    installer -r requirements.txt "$@"
    echo "$wanted" >"$stamp"
}

install_nnunet() {
    # nnU-Net v2 for the tests that hand the course's datasets to it; without its dependencies
    # (see requirements-nnunet.txt), which requirements-dev.txt lists instead.
    say "Installing nnU-Net v2 (for the hand-off tests)"
    installer --no-deps -r requirements-nnunet.txt
}

make_data() {
    say "Generating the course data (kept when already valid)"
    COURSE_PROFILE=quick "$VENV/bin/python" data_scripts/make_data.py --profile quick
}

# Whether the arguments after the first set a JupyterLab option (`--port=1`, `--port 1`,
# `--ServerApp.port=1`, ...): course.sh then leaves that option to them.
given() {
    local option=$1 arg
    shift 2
    for arg in "$@"; do
        case "$arg" in
        --"$option" | --"$option"=* | --*."$option" | --*."$option"=*) return 0 ;;
        esac
    done
    return 1
}

# The browser tests (tests/test_widgets_browser.py) drive Debian's chromium; install it when it is
# missing and we may (root, apt-get), as on a fresh CI machine. Elsewhere those tests skip.
install_chromium() {
    if command -v chromium >/dev/null 2>&1 || [ "$(id -u)" != 0 ] ||
        ! command -v apt-get >/dev/null 2>&1; then
        return
    fi
    say "Installing chromium for the browser tests (apt-get)"
    local start=$SECONDS
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
        >/dev/null
    say "chromium installed in $((SECONDS - start)) s"
}

case "${1:-}" in
lab)
    setup lab
    make_data
    say "Opening the course in JupyterLab (Ctrl-C stops it)"
    lab_args=()
    [ "$(id -u)" = 0 ] && ! given allow-root "$@" && lab_args+=(--allow-root)
    given root_dir "$@" || given notebook-dir "$@" || given notebook_dir "$@" ||
        lab_args+=(--ServerApp.root_dir=notebooks)
    [ -n "${LAB_PORT:-}" ] && ! given port "$@" && lab_args+=(--ServerApp.port="$LAB_PORT")
    exec "$VENV/bin/jupyter-lab" "${lab_args[@]}" "${@:2}"
    ;;
setup)
    setup lab
    say "Set up. Activate the environment with: . $VENV/bin/activate"
    ;;
test)
    setup test -r requirements-dev.txt
    install_nnunet
    install_chromium
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
