#!/usr/bin/env bash
# The compatibility matrix (issue 14): OpenSSL 3.0, 3.5 and 4.0 × the token stacks SoftHSM2,
# opencryptoki's soft token, TPM 2.0 (tpm2-pkcs11 on swtpm) and SoftHSM2 behind p11-kit server
# (through p11-kit-client.so, the shape of a network HSM). Everything comes from Debian packages:
#   3.0  the host (Debian 12): its OpenSSL, Rust toolchain and token packages;
#   3.5  a Debian 13 (trixie) root made with mmdebstrap: OpenSSL 3.5, rustc/cargo 1.85, ...;
#   4.0  the same root plus experimental's openssl, libssl4 and libssl-dev 4.0.x.
# The roots are prepared once in a cache directory outside the clone and reused (see
# scripts/matrix/root.sh). For each OpenSSL version the provider is built against that version
# (bindgen over its headers, through openssl-sys), its DT_NEEDED is checked to be that version's
# libcrypto, for 3.5 and 4.0 the host's `cargo clippy -D warnings` runs over that version's
# headers (the cfg(ossl_v340/v350) code), and then each token cell runs with that version's
# `openssl` and libraries
# (scripts/matrix/cell.sh): store listing, signatures with every key type the token offers,
# TLS 1.3, a wrong PIN, fork; the softhsm cell also runs the CLI integration tests
# (`cargo test --locked --test provider`). Prints a table and exits non-zero on any failure.
#
# Usage: scripts/matrix.sh [--openssl VERSION]... [--token TOKEN]... [--prepare-only]
#   --openssl  3.0, 3.5 or 4.0 (repeatable or comma-separated; default: all)
#   --token    softhsm, opencryptoki, tpm2, p11kit-remote (repeatable or comma-separated;
#              default: all)
#   --prepare-only  install packages and prepare the roots, run nothing
# Example: scripts/matrix.sh --openssl 3.5 --token softhsm        (one cell)
#
# Environment:
#   MATRIX_CACHE    cache directory for roots, builds and results
#                   (default /var/cache/pkcs11-ossl-matrix; never inside the clone)
#   MATRIX_MIRROR   Debian mirror for the roots (default http://deb.debian.org/debian)
#   MATRIX_REBUILD=1  rebuild the roots even when they are ready
#   CARGO_TARGET_DIR  where the host (3.0) build goes (default <repo>/target)
# Needs root (chroot, mounts, mount namespaces) and network access to the Debian mirror and
# crates.io for the first preparation.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$script_dir")
started=$(date +%s)

say() { printf 'matrix: %s\n' "$*"; }
die() {
    printf 'matrix: error: %s\n' "$*" >&2
    exit 2
}

readonly ALL_VERSIONS=(3.0 3.5 4.0)
readonly ALL_TOKENS=(softhsm opencryptoki tpm2 p11kit-remote)
# What the host (3.0) cells need beyond scripts/install-deps.sh's packages, and mmdebstrap for
# the roots.
readonly HOST_PACKAGES=(
    opencryptoki swtpm swtpm-tools tpm2-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools
    libtss2-tcti-swtpm0 tpm2-abrmd libtss2-tcti-tabrmd0 dbus-daemon
)
readonly ROOT_TOOLS=(mmdebstrap)

MATRIX_CACHE=${MATRIX_CACHE:-/var/cache/pkcs11-ossl-matrix}
MATRIX_MIRROR=${MATRIX_MIRROR:-http://deb.debian.org/debian}
ROOT_ENV=()
ROOT_TARGET=""
ROOT_OUT=""

# shellcheck source=scripts/matrix/root.sh
. "$script_dir/matrix/root.sh"

versions=()
tokens=()
prepare_only=0
add_list() {
    local -n list=$1
    local item allowed=$3
    local IFS=,
    for item in $2; do
        [[ " $allowed " == *" $item "* ]] || die "unknown ${1%s} '$item' (one of: $allowed)"
        [[ " ${list[*]} " == *" $item "* ]] || list+=("$item")
    done
}
while [ "$#" -gt 0 ]; do
    case $1 in
    --openssl)
        [ "$#" -ge 2 ] || die "--openssl needs a version"
        add_list versions "$2" "${ALL_VERSIONS[*]}"
        shift 2
        ;;
    --openssl=*)
        add_list versions "${1#*=}" "${ALL_VERSIONS[*]}"
        shift
        ;;
    --token)
        [ "$#" -ge 2 ] || die "--token needs a token name"
        add_list tokens "$2" "${ALL_TOKENS[*]}"
        shift 2
        ;;
    --token=*)
        add_list tokens "${1#*=}" "${ALL_TOKENS[*]}"
        shift
        ;;
    --prepare-only)
        prepare_only=1
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ "${#versions[@]}" -gt 0 ] || versions=("${ALL_VERSIONS[@]}")
[ "${#tokens[@]}" -gt 0 ] || tokens=("${ALL_TOKENS[@]}")
# In the order of the full matrix, whatever order the options came in.
ordered() {
    local -n chosen=$1
    local item
    for item in "${@:2}"; do
        [[ " ${chosen[*]} " != *" $item "* ]] || printf '%s\n' "$item"
    done
}
mapfile -t versions < <(ordered versions "${ALL_VERSIONS[@]}")
mapfile -t tokens < <(ordered tokens "${ALL_TOKENS[@]}")

[ "$(id -u)" -eq 0 ] || die "needs root (chroot, mounts and mount namespaces)"
case $MATRIX_CACHE in
/*) ;;
*) die "MATRIX_CACHE must be an absolute path" ;;
esac
case "$MATRIX_CACHE/" in
"$repo"/*) die "MATRIX_CACHE ($MATRIX_CACHE) must be outside the clone ($repo)" ;;
esac
mkdir -p "$MATRIX_CACHE"

# ---------------------------------------------------------------------------------------------
# Timing of each step, printed at the end.
declare -A step_seconds=()
step_order=()
timed() {
    local name=$1 t0 status=0
    shift
    t0=$(date +%s)
    "$@" || status=$?
    step_seconds[$name]=$(($(date +%s) - t0))
    step_order+=("$name")
    return "$status"
}

say "versions: ${versions[*]}; tokens: ${tokens[*]}; cache: $MATRIX_CACHE"

# ---------------------------------------------------------------------------------------------
# Packages on the host, roots.
host_packages=()
needs_roots=0
for version in "${versions[@]}"; do
    if [ "$version" = 3.0 ]; then
        host_packages+=("${HOST_PACKAGES[@]}")
    else
        needs_roots=1
    fi
done
if [ "$needs_roots" = 1 ]; then
    host_packages+=("${ROOT_TOOLS[@]}")
fi
timed "host packages" bash "$repo/scripts/install-deps.sh" "${host_packages[@]}" ||
    die "installing the host's packages failed (see above)"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$cargo_bin/cargo" ]; then
    PATH="$cargo_bin:$PATH"
fi

if [ -n "${MATRIX_REBUILD:-}" ]; then
    for version in "${versions[@]}"; do
        [ "$version" = 3.0 ] || rm -f "$(root_dir "$version")/.matrix-root"
    done
fi
for version in "${versions[@]}"; do
    [ "$version" != 3.0 ] || continue
    timed "root $version" prepare_root "$version" ||
        die "could not prepare the root for OpenSSL $version (see above)"
done
if [ "$prepare_only" = 1 ]; then
    for name in "${step_order[@]}"; do
        say "$(printf '%-24s %5d s' "$name" "${step_seconds[$name]}")"
    done
    say "prepared in $(($(date +%s) - started)) s"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Build per version, then the cells.

declare -A cell_result=() cell_seconds=() build_result=()
any_failure=0
host_target=${CARGO_TARGET_DIR:-$repo/target}
case $host_target in
/*) ;;
*) host_target=$repo/$host_target ;;
esac

# The DT_NEEDED libcrypto of a shared object.
needed_libcrypto() {
    readelf -d "$1" 2>/dev/null | sed -n 's/.*NEEDED.*\[\(libcrypto\.so[^]]*\)\].*/\1/p' | head -n 1
}

# build VERSION: builds the provider and the CLI tests for VERSION; sets `provider` (path as seen
# where the cells run) and `provider_host` (path on the host).
build() {
    local version=$1 log=$MATRIX_CACHE/runs/$1/build.log
    mkdir -p "$MATRIX_CACHE/runs/$version"
    if [ "$version" = 3.0 ]; then
        (cd "$repo" && CARGO_TARGET_DIR=$host_target cargo build --locked &&
            CARGO_TARGET_DIR=$host_target cargo test --locked --no-run --test provider) \
            >"$log" 2>&1 || return 1
        provider=$host_target/debug/libpkcs11_ossl.so
        provider_host=$provider
    else
        ROOT_TARGET=$MATRIX_CACHE/target/$version
        ROOT_OUT=$MATRIX_CACHE/runs/$version
        mkdir -p "$ROOT_TARGET"
        in_root "$version" bash -c 'cd /src && cargo build --locked &&
            cargo test --locked --no-run --test provider' >"$log" 2>&1 || return 1
        provider=/root/target/debug/libpkcs11_ossl.so
        provider_host=$ROOT_TARGET/debug/libpkcs11_ossl.so
    fi
}

# lint VERSION: the host's `cargo clippy -D warnings` over VERSION's OpenSSL headers, copied
# out of its root: code gated with cfg(ossl_v340)/cfg(ossl_v350) only compiles with those
# headers, and the roots' Debian clippy (1.85) differs from the host's (`cargo check` does not
# link, so the root's libraries are never loaded on the host). Returns 2 when the host has no
# clippy.
lint() {
    local version=$1 root headers multiarch log=$MATRIX_CACHE/runs/$1/clippy.log
    cargo clippy --version >/dev/null 2>&1 || return 2
    root=$(root_dir "$version")
    headers=$MATRIX_CACHE/headers/$version
    multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
    rm -rf "$headers"
    mkdir -p "$headers"
    cp -r "$root/usr/include/openssl" "$headers/"
    if [ -d "$root/usr/include/$multiarch/openssl" ]; then
        cp "$root/usr/include/$multiarch/openssl/"* "$headers/openssl/"
    fi
    (cd "$repo" && OPENSSL_INCLUDE_DIR=$headers OPENSSL_LIB_DIR=$root/usr/lib/$multiarch \
        OPENSSL_NO_PKG_CONFIG=1 CARGO_TARGET_DIR=$MATRIX_CACHE/target/clippy-$version \
        cargo clippy --locked --all-targets -- -D warnings) >"$log" 2>&1 || {
        tail -n 40 "$log" >&2
        return 1
    }
}

# The libcrypto the version's `openssl` binary loads, as a soname.
openssl_libcrypto() {
    if [ "$1" = 3.0 ]; then
        needed_libcrypto "$(command -v openssl)"
    else
        # shellcheck disable=SC2016 # expanded by the shell inside the root
        ROOT_OUT=$MATRIX_CACHE/runs/$1 in_root "$1" sh -c \
            'readelf -d "$(command -v openssl)" | sed -n "s/.*NEEDED.*\[\(libcrypto\.so[^]]*\)\].*/\1/p"'
    fi
}

openssl_version() {
    if [ "$1" = 3.0 ]; then
        openssl version
    else
        ROOT_OUT=$MATRIX_CACHE/runs/$1 in_root "$1" openssl version
    fi
}

# cell VERSION TOKEN: runs scripts/matrix/cell.sh; records "passed N, ..." in cell_result.
cell() {
    local version=$1 token=$2 out t0 status=0
    out=$MATRIX_CACHE/runs/$version/$token
    t0=$(date +%s)
    local suite=0
    [ "$token" != softhsm ] || suite=1
    if [ "$version" = 3.0 ]; then
        MATRIX_PROVIDER=$provider MATRIX_SRC=$repo MATRIX_SUITE=$suite \
            CARGO_TARGET_DIR=$host_target timeout 2400 \
            bash "$repo/scripts/matrix/cell.sh" "$token" "$out" || status=$?
    else
        ROOT_TARGET=$MATRIX_CACHE/target/$version
        ROOT_OUT=$MATRIX_CACHE/runs/$version
        ROOT_ENV=(MATRIX_PROVIDER="$provider" MATRIX_SRC=/src MATRIX_SUITE="$suite"
            MATRIX_IN_ROOT=1)
        in_root "$version" timeout 2400 bash /src/scripts/matrix/cell.sh "$token" \
            "/matrix-out/$token" || status=$?
        ROOT_ENV=()
    fi
    cell_seconds[$version/$token]=$(($(date +%s) - t0))
    local pass fail skip
    read -r pass fail skip < <(count_results "$out/results.tsv")
    if [ ! -s "$out/results.tsv" ]; then
        cell_result[$version/$token]="FAILED: no results (exit status $status)"
        any_failure=1
    elif [ "$status" -ne 0 ] || [ "$fail" -gt 0 ]; then
        cell_result[$version/$token]="FAILED: $fail failed, $pass passed, $skip skipped"
        any_failure=1
    else
        cell_result[$version/$token]="passed: $pass, skipped: $skip"
    fi
}

# "PASSED FAILED SKIPPED" counts of a results.tsv.
count_results() {
    awk -F'\t' '{ n[$1] += $2 } END { printf "%d %d %d\n", n["PASS"], n["FAIL"], n["SKIP"] }' \
        "$1" 2>/dev/null || printf '0 0 0\n'
}

for version in "${versions[@]}"; do
    say "=== OpenSSL $version: building the provider"
    if ! timed "build $version" build "$version"; then
        tail -n 30 "$MATRIX_CACHE/runs/$version/build.log" >&2
        build_result[$version]="FAILED (log: $MATRIX_CACHE/runs/$version/build.log)"
        any_failure=1
        for token in "${tokens[@]}"; do
            cell_result[$version/$token]="not run: the build failed"
        done
        continue
    fi
    # The provider must load the libcrypto of the programs that load it.
    expected_crypto=$(openssl_libcrypto "$version")
    got=$(needed_libcrypto "$provider_host")
    version_text=$(openssl_version "$version")
    if [ -z "$got" ] || [ "$got" != "$expected_crypto" ]; then
        build_result[$version]="FAILED: the provider needs ${got:-no libcrypto}, openssl ${expected_crypto:-?}"
        any_failure=1
        for token in "${tokens[@]}"; do
            cell_result[$version/$token]="not run: wrong libcrypto"
        done
        continue
    fi
    lint_text=""
    if [ "$version" != 3.0 ]; then
        lint_status=0
        timed "clippy $version" lint "$version" || lint_status=$?
        case $lint_status in
        0) lint_text=", clippy clean" ;;
        2) lint_text=", clippy not run (no cargo clippy on the host)" ;;
        *)
            build_result[$version]="FAILED: cargo clippy with these headers (log: $MATRIX_CACHE/runs/$version/clippy.log)"
            any_failure=1
            ;;
        esac
    fi
    if [ -z "${build_result[$version]:-}" ]; then
        build_result[$version]="ok, DT_NEEDED $got$lint_text (${version_text%% (*})"
    fi
    say "OpenSSL $version: ${build_result[$version]}"
    for token in "${tokens[@]}"; do
        say "=== OpenSSL $version × $token"
        timed "cell $version/$token" cell "$version" "$token" || true
        say "OpenSSL $version × $token: ${cell_result[$version/$token]} in ${cell_seconds[$version/$token]} s"
    done
done

# ---------------------------------------------------------------------------------------------
# The table.

printf '\n%s\n\n' "Compatibility matrix ($(date -u +%Y-%m-%d), results in $MATRIX_CACHE/runs/<version>/<token>/)"
printf '| OpenSSL | provider build |'
for token in "${tokens[@]}"; do printf ' %s |' "$token"; done
printf '\n|---|---|'
for token in "${tokens[@]}"; do printf -- '---|'; done
printf '\n'
for version in "${versions[@]}"; do
    printf '| %s | %s |' "$version" "${build_result[$version]:-not built}"
    for token in "${tokens[@]}"; do
        printf ' %s |' "${cell_result[$version/$token]:-not run}"
    done
    printf '\n'
done
printf '\nSkipped checks (what a token or a program lacks):\n'
skips=0
for version in "${versions[@]}"; do
    for token in "${tokens[@]}"; do
        results=$MATRIX_CACHE/runs/$version/$token/results.tsv
        [ -f "$results" ] || continue
        while IFS=$'\t' read -r status count name detail; do
            [ "$status" = SKIP ] || continue
            printf '  %-20s %s: %s\n' "$version/$token" "$name" "$detail"
            skips=$((skips + count))
        done <"$results"
    done
done
[ "$skips" -gt 0 ] || printf '  none\n'
printf '\nFailed checks:\n'
failures=0
for version in "${versions[@]}"; do
    for token in "${tokens[@]}"; do
        results=$MATRIX_CACHE/runs/$version/$token/results.tsv
        [ -f "$results" ] || continue
        while IFS=$'\t' read -r status count name detail; do
            [ "$status" = FAIL ] || continue
            printf '  %-20s %s: %s\n' "$version/$token" "$name" "$detail"
            failures=$((failures + count))
        done <"$results"
    done
done
[ "$failures" -gt 0 ] || printf '  none\n'
printf '\nTimes:\n'
for name in "${step_order[@]}"; do
    printf '  %-28s %5d s\n' "$name" "${step_seconds[$name]}"
done
printf '  %-28s %5d s\n' total $(($(date +%s) - started))
total_pass=0
total_fail=0
total_skip=0
for version in "${versions[@]}"; do
    for token in "${tokens[@]}"; do
        read -r pass fail skip < <(count_results "$MATRIX_CACHE/runs/$version/$token/results.tsv")
        total_pass=$((total_pass + pass))
        total_fail=$((total_fail + fail))
        total_skip=$((total_skip + skip))
    done
done
say "$total_pass passed, $total_fail failed, $total_skip skipped in $(($(date +%s) - started)) s"
if [ "$any_failure" -ne 0 ]; then
    say "FAILED (see the table and $MATRIX_CACHE/runs/)"
    exit 1
fi
say "all cells passed"
