#!/usr/bin/env bash
# Single entry point for acnet-proto development and CI.
#   ./dev.sh setup            system packages + .venv with the project installed
#   ./dev.sh test [ARGS...]   setup, ruff, then pytest ARGS (exit status of pytest)
#   ./dev.sh demo [ARGS...]   setup, then `acnet-proto demo`
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
VENV=.venv
STAMP=$VENV/.installed-pyproject.sha256

say() { echo "dev.sh: $*" >&2; }

setup() {
    say "checking system packages"
    ./scripts/install-system-deps

    # A venv whose interpreter vanished (e.g. pyenv version removed) is rebuilt, not reused.
    if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
        say "creating $VENV"
        rm -rf "$VENV"
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || { say "python3 >= 3.11 is required"; exit 1; }
        python3 -m venv "$VENV"
    fi

    local want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [[ -f $STAMP && $(<"$STAMP") == "$want" ]]; then
        say "dependencies up to date"
    else
        say "installing acnet-proto[all,qt,test] into $VENV (first run takes a few minutes)"
        rm -f "$STAMP"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[all,qt,test]"
        echo "$want" >"$STAMP"
    fi
    own_scripts
}

# pacsys (a test dependency, for interop tests) installs acget, acput, acmonitor and acinfo
# too, and whichever package was installed last owns them. Checked on every setup, even when
# the dependencies are up to date: a later `pip install` of pacsys takes them back.
own_scripts() {
    local name foreign=()
    for name in acnet-proto acget acput acmonitor acinfo; do
        grep -qs 'acnet_proto\.adapters\.cli' "$VENV/bin/$name" || foreign+=("$name")
    done
    if [[ ${#foreign[@]} -gt 0 ]]; then
        say "reinstalling acnet-proto's own ${foreign[*]} (another package's were in $VENV/bin)"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
    fi
}

run_tests() {
    local ruff_rc=0 rc=0
    say "ruff check . && ruff format --check ."
    "$VENV/bin/ruff" check . || ruff_rc=$?
    "$VENV/bin/ruff" format --check . || ruff_rc=$?
    say "pytest $*"
    "$VENV/bin/python" -m pytest "$@" || rc=$?
    if [[ $rc -eq 5 ]]; then
        say "FAILED: pytest collected no tests (exit 5)"
    elif [[ $rc -eq 0 && $ruff_rc -ne 0 ]]; then
        say "FAILED: tests passed but ruff found problems"
        rc=1
    elif [[ $ruff_rc -ne 0 ]]; then
        say "ruff also found problems"
    fi
    return "$rc"
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
    setup) setup ;;
    test) setup; run_tests "$@" ;;
    demo) setup; say "acnet-proto demo"; exec "$VENV/bin/acnet-proto" demo "$@" ;;
    *)
        echo "usage: $0 {setup|test [pytest args...]|demo [args...]}" >&2
        exit 2
        ;;
esac
