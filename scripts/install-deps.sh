#!/usr/bin/env bash
# Installs what building and testing pkcs11-ossl needs on Debian 12 (bookworm), then checks that a
# Rust toolchain new enough for edition 2024 is on PATH.
#
# Idempotent: packages that are already installed are left alone, and `apt-get update` only runs
# when something is missing. The downloads are Debian packages through apt-get and, once Rust is
# found, cargo-deb (pinned, `cargo install --locked`) from crates.io when it is missing; the Rust
# toolchain itself is not installed here (use rustup, see the hint printed on failure).
#
# Usage: scripts/install-deps.sh [PACKAGE...]   (root, or a user allowed to run sudo)
#   PACKAGE...  more Debian packages to install the same way (scripts/matrix.sh's token stacks)
set -euo pipefail

# Why each package is here:
#   libclang-dev          bindgen (build.rs) loads libclang and needs clang's own headers
#   libssl-dev pkg-config openssl-sys finds the OpenSSL 3 headers and libcrypto through pkg-config
#   gcc libc6-dev         the `cc` build dependency compiles the small C error shim; also the linker
#   softhsm2              the software token used by the tests and the demo (libsofthsm2.so)
#   opensc                pkcs11-tool: makes keys on the token and reads public keys back
#   openssl               the CLI that the tests and the demo drive through the provider
#   ca-certificates       cargo needs them to fetch crates over HTTPS
#   nginx haproxy curl    the unmodified TLS programs tests/cli/programs.rs runs with token keys
#   python3               its `ssl` module (Debian's, linked to the system libssl) is one of them
#   libengine-pkcs11-openssl  libp11's ENGINE, the comparison column of `cargo bench --bench sign`
#   valgrind              scripts/valgrind.sh: memcheck over signing, store listing and TLS
#   libp11-kit-dev        pkcs11.h for the fault-injecting test module (tests/faultmod/faultmod.c)
#   groff-base man-db     tests/docs.rs renders the man pages (groff -ww, man --warnings)
#   dpkg-dev              dpkg-shlibdeps, which cargo-deb uses for the package's Depends
#   p11-kit p11-kit-modules  `p11-kit server` and p11-kit-client.so: a token in another process
#                         (tests/cli/remote.rs)
# nginx and haproxy come with system services; the tests start their own instances on loopback
# ports and never use or need the system ones, so the install does not start them (see below).
PACKAGES=(
    libclang-dev
    libssl-dev
    pkg-config
    gcc
    libc6-dev
    softhsm2
    opensc
    openssl
    ca-certificates
    nginx
    haproxy
    curl
    python3
    libengine-pkcs11-openssl
    valgrind
    libp11-kit-dev
    groff-base
    man-db
    dpkg-dev
    p11-kit
    p11-kit-modules
)
PACKAGES+=("$@")
readonly PACKAGES
# The commands the other scripts call, checked where dpkg is not available.
readonly COMMANDS=(pkg-config cc softhsm2-util pkcs11-tool openssl nginx haproxy curl python3 groff)
readonly MIN_RUST_MAJOR=1
readonly MIN_RUST_MINOR=85
# cargo-deb builds the .deb (scripts/test.sh, README "Install"). 3.8.0 builds with Rust 1.85 and
# later (checked with 1.95); CARGO_DEB_VERSION overrides the pin.
readonly CARGO_DEB_VERSION=${CARGO_DEB_VERSION:-3.8.0}

say() { printf 'install-deps: %s\n' "$*"; }
die() {
    printf 'install-deps: error: %s\n' "$*" >&2
    exit 1
}

package_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# Runs a command as root: directly when we are root, else through sudo (non-interactively, so that
# CI fails clearly instead of hanging on a password prompt).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@" || die "sudo failed; run this script as root or allow '$1' through sudo"
    else
        die "not root and sudo is not installed; as root run: apt-get install ${PACKAGES[*]}"
    fi
}

install_debian_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "all Debian packages present (${PACKAGES[*]})"
        return
    fi
    say "installing: ${missing[*]}"
    # Retries for a flaky network: apt's own per download, and the whole step up to 3 times.
    local attempt
    for attempt in 1 2 3; do
        if as_root env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=5 update -q; then
            break
        fi
        [ "$attempt" -lt 3 ] || die "apt-get update failed 3 times (network? mirror?)"
        say "apt-get update failed (attempt $attempt of 3); retrying in 10 s"
        sleep 10
    done
    block_service_starts
    for attempt in 1 2 3; do
        if as_root env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=5 \
            install -y -q --no-install-recommends "${missing[@]}"; then
            break
        fi
        [ "$attempt" -lt 3 ] || die "apt-get install ${missing[*]} failed 3 times"
        say "apt-get install failed (attempt $attempt of 3); retrying in 10 s"
        sleep 10
    done
    unblock_service_starts
}

# Debian's nginx and haproxy packages start their services on install (invoke-rc.d), which would
# bind ports 80/443 on a CI machine for nothing. invoke-rc.d asks /usr/sbin/policy-rc.d first;
# exit code 101 means "action forbidden". Put one there for the duration of the install unless the
# system already has its own (container images often do), and remove only the one we wrote.
readonly POLICY_RC=/usr/sbin/policy-rc.d
policy_rc_ours=0
block_service_starts() {
    if [ -e "$POLICY_RC" ]; then
        return
    fi
    as_root sh -c "printf '#!/bin/sh\\nexit 101\\n' > $POLICY_RC && chmod 755 $POLICY_RC"
    policy_rc_ours=1
    trap unblock_service_starts EXIT
}

unblock_service_starts() {
    if [ "$policy_rc_ours" -eq 1 ]; then
        as_root rm -f "$POLICY_RC"
        policy_rc_ours=0
    fi
}

check_commands_only() {
    local missing=() cmd
    for cmd in "${COMMANDS[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    if [ "${#missing[@]}" -ne 0 ]; then
        die "no apt-get here and these commands are missing: ${missing[*]}." \
            "Install your system's packages for: ${PACKAGES[*]}"
    fi
    say "no apt-get (not Debian?); required commands found, assuming libraries are installed"
}

check_rust() {
    # rustup puts cargo in ~/.cargo/bin, which non-login shells (CI) often lack on PATH.
    local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$cargo_bin/cargo" ]; then
        PATH="$cargo_bin:$PATH"
        say "note: using $cargo_bin (add it to PATH)"
    fi
    local hint="install Rust ${MIN_RUST_MAJOR}.${MIN_RUST_MINOR} or newer with rustup:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
    . \"\$HOME/.cargo/env\"
(Debian 12's own rustc package is too old for edition 2024.)"
    command -v cargo >/dev/null 2>&1 || die "cargo not found; $hint"
    command -v rustc >/dev/null 2>&1 || die "rustc not found; $hint"

    local version major minor
    version=$(rustc --version) || die "'rustc --version' failed; $hint"
    # "rustc 1.85.0 (4d91de4e4 2025-02-17)" -> 1 and 85
    if [[ "$version" =~ ^rustc\ ([0-9]+)\.([0-9]+) ]]; then
        major=${BASH_REMATCH[1]}
        minor=${BASH_REMATCH[2]}
    else
        die "cannot parse '$version'; $hint"
    fi
    if [ "$major" -lt "$MIN_RUST_MAJOR" ] ||
        { [ "$major" -eq "$MIN_RUST_MAJOR" ] && [ "$minor" -lt "$MIN_RUST_MINOR" ]; }; then
        die "$version is too old (edition 2024 needs ${MIN_RUST_MAJOR}.${MIN_RUST_MINOR}); $hint
(with rustup already installed: rustup update stable)"
    fi
    say "found $version, $(cargo --version)"
}

# cargo-deb, pinned: `cargo install` compiles it (about 2 minutes on 2 cores) only when the
# pinned version is not already on PATH.
install_cargo_deb() {
    local found
    found=$(cargo deb --version 2>/dev/null || true)
    if [ "$found" = "cargo-deb $CARGO_DEB_VERSION" ]; then
        say "found $found"
        return
    fi
    say "installing cargo-deb $CARGO_DEB_VERSION${found:+ (found: $found)}"
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet ||
        die "cargo install cargo-deb --version $CARGO_DEB_VERSION --locked failed"
}

if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
    install_debian_packages
else
    check_commands_only
fi
check_rust
# The .deb is built and tested only where dpkg is.
if command -v dpkg >/dev/null 2>&1; then
    install_cargo_deb
fi
