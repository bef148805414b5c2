#!/usr/bin/env bash
# The project's full check (the README's second command, and what CI runs through .ci/run):
# Debian packages, formatting, lints, debug and release builds, unit and integration tests,
# the Debian package (cargo deb from the release build, installed with dpkg -i, used by name
# and removed again by tests/cli/package.rs; needs root, skipped with a message elsewhere unless
# CI=true), a short fuzz run of the URI and PEM-URI parsers (a new seed each time; the full 10 million
# input run is `cargo run --release --example fuzz`), scripts/valgrind.sh (memcheck over
# signing, store listing and TLS through the provider),
# scripts/demo.sh, so that the README's first command is proven on every run, and finally the
# compatibility matrix, scripts/matrix.sh: OpenSSL 3.0 (this machine), 3.5 and 4.0 (Debian 13
# roots, prepared once into MATRIX_CACHE, default /var/cache/pkcs11-ossl-matrix, then reused)
# × SoftHSM2, opencryptoki, TPM 2.0 (swtpm) and a token behind p11-kit server.
#
# The demo adds a few seconds on top of the release build this script makes anyway; set
# SKIP_DEMO=1 to leave it out. Its output goes to target/demo (or DEMO_DIR). The matrix needs
# root (chroot, mounts); on a fresh machine preparing its two roots takes a few minutes each.
# The matrix runs only with MATRIX=1 for now (see issue 14); without root it is skipped with a
# message saying so.
#
# Usage: scripts/test.sh        (from any directory)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$script_dir")
cd "$repo"

started=$(date +%s)
step_started=$started
current_step=""
# Output of `cargo test` and of the demo, kept to count what ran.
run_log=$(mktemp)

# Prints which step failed, so that CI logs say more than the last tool's output.
on_exit() {
    local status=$?
    rm -f "$run_log"
    if [ "$status" -ne 0 ] && [ -n "$current_step" ]; then
        printf '\ntest.sh: FAILED at step "%s" (exit status %d) after %ds\n' \
            "$current_step" "$status" $(($(date +%s) - started)) >&2
    fi
}
trap on_exit EXIT

step() {
    local now
    now=$(date +%s)
    if [ -n "$current_step" ]; then
        printf '    (%s took %ds)\n' "$current_step" $((now - step_started))
    fi
    current_step=$1
    step_started=$now
    printf '\n==> %s\n' "$1"
}

step "install dependencies (scripts/install-deps.sh)"
bash scripts/install-deps.sh
# install-deps may have found cargo only in ~/.cargo/bin (rustup without a login shell).
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$cargo_bin/cargo" ]; then
    PATH="$cargo_bin:$PATH"
fi
for component in fmt clippy; do
    cargo "$component" --version >/dev/null 2>&1 || {
        echo "test.sh: 'cargo $component' is missing; run: rustup component add rustfmt clippy" >&2
        exit 1
    }
done

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --locked --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "cargo build --locked"
cargo build --locked

step "cargo build --release --locked"
cargo build --release --locked

step "cargo test --locked"
cargo test --locked 2>&1 | tee -a "$run_log"

# The .deb from the release build above, installed, used and removed by tests/cli/package.rs
# (an ignored test, run here). dpkg -i needs root: without it, or without dpkg, the step says
# why it is skipped; with CI=true that is a failure.
package_test() {
    local why="" target_dir deb
    if ! command -v dpkg >/dev/null 2>&1; then
        why="dpkg is not installed (not a Debian system)"
    elif [ "$(id -u)" -ne 0 ]; then
        why="installing a .deb needs root"
    fi
    if [ -n "$why" ]; then
        if [ "${CI:-}" = true ]; then
            echo "test.sh: CI=true: the package test must run, but $why" >&2
            return 1
        fi
        echo "test.sh: package test SKIPPED: $why (run scripts/test.sh as root; CI=true makes this a failure)"
        return 0
    fi
    target_dir=${CARGO_TARGET_DIR:-$repo/target}
    case $target_dir in
    /*) ;;
    *) target_dir=$repo/$target_dir ;;
    esac
    deb=$target_dir/debian/pkcs11-ossl.deb
    cargo deb --no-build --output "$deb"
    P11RS_DEB=$deb cargo test --locked --test provider package_deb -- --ignored 2>&1 |
        tee -a "$run_log"
}

step "Debian package (cargo deb --no-build, dpkg -i, sign by name, dpkg -r)"
package_test

step "fuzz smoke run (cargo run --release --example fuzz -- 1000000)"
cargo run --locked --release --example fuzz -- 1000000 "$(date +%s)" 2>&1 | tail -n 1

step "scripts/valgrind.sh"
bash scripts/valgrind.sh 2>&1 | tee -a "$run_log"

if [ "${SKIP_DEMO:-0}" = 1 ]; then
    step "scripts/demo.sh skipped (SKIP_DEMO=1)"
else
    step "scripts/demo.sh (DEMO_DIR=${DEMO_DIR:-$repo/target/demo})"
    DEMO_DIR=${DEMO_DIR:-$repo/target/demo} bash scripts/demo.sh 2>&1 | tee -a "$run_log"
fi

if [ "${MATRIX:-0}" != 1 ]; then
    # Not yet part of the default run: after the issue-11/12/13 merges it has not been
    # re-validated on OpenSSL 3.5 and 4.0 (issue 14 is still open). Run it with MATRIX=1.
    step "scripts/matrix.sh skipped (set MATRIX=1 to run the compatibility matrix)"
elif [ "$(id -u)" -ne 0 ]; then
    step "scripts/matrix.sh skipped: it needs root (chroot, mounts); run: sudo scripts/matrix.sh"
else
    step "scripts/matrix.sh (compatibility matrix: OpenSSL 3.0/3.5/4.0 x 4 token stacks)"
    bash scripts/matrix.sh 2>&1 | tee -a "$run_log"
fi

step "done"
current_step=""
# Every step passed (set -e), so nothing failed; count the tests and demo checks that ran.
ran=$(sed -n -e 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' -e 's/^demo: \([0-9]*\) passed.*/\1/p' \
    -e 's/^\([0-9]*\) passed, 0 failed$/\1/p' -e 's/^valgrind: \([0-9]*\) passed.*/\1/p' \
    -e 's/^matrix: \([0-9]*\) passed.*/\1/p' \
    "$run_log" | awk '{ total += $1 } END { print total + 0 }')
printf 'test.sh: all steps passed in %ds\n' $(($(date +%s) - started))
printf 'summary: %d passed, 0 failed\n' "$ran"
