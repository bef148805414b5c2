# shellcheck shell=bash
# The Debian 13 roots of scripts/matrix.sh (sourced, not run): preparing them once in the cache
# directory, and running a command inside one (chroot) with the mounts it needs.
#
#   3.5: Debian 13 (trixie) as released: OpenSSL 3.5, rustc/cargo 1.85, SoftHSM2, ...
#   4.0: a copy of the 3.5 root plus experimental's openssl, libssl4 and libssl-dev 4.0.x
#        (libssl3t64 stays: SoftHSM2, opencryptoki, nginx, ... link libcrypto.so.3).
#
# Layout under $MATRIX_CACHE (default /var/cache/pkcs11-ossl-matrix), never inside the clone:
#   roots/trixie-3.5, roots/trixie-4.0   the root file systems; `.matrix-root` in each records
#                                        what it was made from (rebuilt when that changes)
#   target/3.5, target/4.0               CARGO_TARGET_DIR of the builds in each root
#   cargo-home                           CARGO_HOME shared by the roots (crate downloads)
#   runs/<version>/<token>/              results and logs of the last run of each cell
# A root is built into <name>.tmp and renamed when complete, so an interrupted preparation
# never leaves a root that looks ready.
#
# Uses from scripts/matrix.sh: repo, MATRIX_CACHE, MATRIX_MIRROR, ROOT_ENV, ROOT_TARGET,
# ROOT_OUT, say, die.
# shellcheck disable=SC2154

# What every root holds. Why: rustc cargo libclang-dev libssl-dev pkg-config gcc libc6-dev
# build the provider (bindgen over this root's OpenSSL headers); openssl softhsm2 opensc
# opensc-pkcs11 nginx haproxy curl python3 libp11-kit-dev are what `cargo test --test provider`
# drives; opencryptoki, swtpm, swtpm-tools, tpm2-tools, libtpm2-pkcs11-1, libtpm2-pkcs11-tools,
# libtss2-tcti-swtpm0t64, tpm2-abrmd, libtss2-tcti-tabrmd0, dbus-daemon, p11-kit and
# p11-kit-modules are the other token stacks; util-linux (unshare), procps (pkill), binutils
# (readelf) and ca-certificates are used by the scripts and cargo.
readonly ROOT_PACKAGES=(
    rustc cargo libclang-dev libssl-dev pkg-config gcc libc6-dev
    openssl softhsm2 opensc opensc-pkcs11 nginx haproxy curl python3 libp11-kit-dev
    opencryptoki swtpm swtpm-tools tpm2-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools
    libtss2-tcti-swtpm0t64 tpm2-abrmd libtss2-tcti-tabrmd0 dbus-daemon p11-kit p11-kit-modules
    util-linux procps binutils ca-certificates
)
# Experimental's OpenSSL 4.0 packages for the 4.0 root (openssl-provider-legacy: libssl4's
# dependency, named so that apt takes it from experimental too).
readonly OPENSSL4_PACKAGES=(openssl libssl4 libssl-dev openssl-provider-legacy)
# Bump when the way roots are made changes, so that existing roots are rebuilt.
readonly ROOT_RECIPE=1
readonly ROOT_SUITE=trixie

# Apt options for every download: retries for a flaky network, and no Valid-Until check
# (experimental's Release file on the mirror is past its Valid-Until date).
readonly APT_OPTIONS=(-o Acquire::Retries=5 -o Acquire::http::Timeout=60
    -o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false)

root_dir() { printf '%s/roots/%s-%s\n' "$MATRIX_CACHE" "$ROOT_SUITE" "$1"; }

# What a root of $1 (3.5 or 4.0) is made from; a root whose .matrix-root differs is rebuilt.
root_recipe() {
    printf 'recipe=%s suite=%s mirror=%s version=%s\npackages=%s\n' "$ROOT_RECIPE" \
        "$ROOT_SUITE" "$MATRIX_MIRROR" "$1" "${ROOT_PACKAGES[*]}"
    if [ "$1" = 4.0 ]; then
        printf 'experimental=%s\n' "${OPENSSL4_PACKAGES[*]}"
    fi
}

root_ready() {
    local dir
    dir=$(root_dir "$1")
    [ -f "$dir/.matrix-root" ] && [ "$(cat "$dir/.matrix-root")" = "$(root_recipe "$1")" ]
}

# Runs "$@" up to 3 times (network downloads), saying why it tries again.
with_retries() {
    local attempt status
    for attempt in 1 2 3; do
        status=0
        "$@" || status=$?
        if [ "$status" -eq 0 ]; then
            return 0
        fi
        if [ "$attempt" -lt 3 ]; then
            say "attempt $attempt of 3 failed (exit status $status): $*; retrying in 10 s"
            sleep 10
        fi
    done
    say "gave up after 3 attempts: $*"
    return "$status"
}

# prepare_root VERSION: makes the root of VERSION (3.5 or 4.0) unless it is ready; the 4.0
# root is made from the 3.5 root, which is prepared first. Holds $MATRIX_CACHE/.lock meanwhile,
# so that two runs never build the same root.
prepare_root() {
    local version=$1 dir started lock_fd
    if [ "$version" = 4.0 ]; then
        prepare_root 3.5
    fi
    dir=$(root_dir "$version")
    exec {lock_fd}>"$MATRIX_CACHE/.lock"
    flock "$lock_fd"
    if root_ready "$version"; then
        say "root for OpenSSL $version: $dir (ready, reused)"
        exec {lock_fd}>&-
        return 0
    fi
    started=$(date +%s)
    say "root for OpenSSL $version: building $dir"
    rm -rf "$dir" "$dir.tmp" "$MATRIX_CACHE/target/$version"
    mkdir -p "$MATRIX_CACHE/roots"
    case $version in
    3.5) build_trixie_root "$dir.tmp" ;;
    4.0) build_openssl4_root "$dir.tmp" ;;
    *) die "no root for OpenSSL $version" ;;
    esac
    root_recipe "$version" >"$dir.tmp/.matrix-root"
    mv "$dir.tmp" "$dir"
    say "root for OpenSSL $version ready in $(($(date +%s) - started)) s: $(in_root "$version" \
        openssl version)"
    exec {lock_fd}>&-
}

build_trixie_root() {
    local tmp=$1 packages
    packages=$(
        IFS=,
        printf '%s' "${ROOT_PACKAGES[*]}"
    )
    command -v mmdebstrap >/dev/null 2>&1 ||
        die "mmdebstrap is missing (apt-get install mmdebstrap)"
    # mmdebstrap installs a policy-rc.d while it installs, so that no service (nginx, haproxy,
    # pkcsslotd, tpm2-abrmd) starts inside the root.
    # shellcheck disable=SC2317 # called through with_retries
    attempt_trixie_root() {
        rm -rf "$tmp"
        mmdebstrap --mode=root --variant=apt --components=main \
            --aptopt='Acquire::Retries "5"' --aptopt='APT::Install-Recommends "false"' \
            --include="$packages" "$ROOT_SUITE" "$tmp" "$MATRIX_MIRROR"
    }
    with_retries attempt_trixie_root ||
        die "mmdebstrap could not make the $ROOT_SUITE root from $MATRIX_MIRROR (see above)"
}

build_openssl4_root() {
    local tmp=$1 base
    base=$(root_dir 3.5)
    root_ready 3.5 || die "the 3.5 root $base is not ready"
    say "copying $base (OpenSSL 4.0 packages go on top)"
    rm -rf "$tmp"
    cp -a --reflink=auto "$base" "$tmp"
    rm -f "$tmp/.matrix-root"
    cat >"$tmp/etc/apt/sources.list.d/experimental.sources" <<EOF
Types: deb
URIs: $MATRIX_MIRROR
Suites: experimental
Components: main
Check-Valid-Until: no
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    local wanted=() pkg
    for pkg in "${OPENSSL4_PACKAGES[@]}"; do
        wanted+=("$pkg/experimental")
    done
    with_retries run_in_root "$tmp" apt-get "${APT_OPTIONS[@]}" update -q ||
        die "apt-get update in the 4.0 root failed (experimental from $MATRIX_MIRROR)"
    with_retries run_in_root "$tmp" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${APT_OPTIONS[@]}" install -y -q "${wanted[@]}" ||
        die "could not install ${wanted[*]} in the 4.0 root"
    run_in_root "$tmp" apt-get clean
    local got
    got=$(run_in_root "$tmp" openssl version)
    case $got in
    "OpenSSL 4."*) ;;
    *) die "the 4.0 root's openssl reports '$got'" ;;
    esac
}

# in_root VERSION COMMAND...: runs COMMAND inside the root of VERSION.
in_root() {
    local version=$1
    shift
    run_in_root "$(root_dir "$version")" "$@"
}

# run_in_root DIR COMMAND...: runs COMMAND in a chroot of DIR, in a private mount namespace
# (unshare), so that every mount made for it (/proc, /sys, /dev, /dev/pts, a private /dev/shm,
# the clone at /src read-only, the cargo home and target, the cell output at /matrix-out)
# disappears when it ends, whatever way it ends; they are also unmounted explicitly. Processes
# left running inside the root are killed afterwards. Environment: only what is listed here
# and ROOT_ENV (an array of NAME=value).
run_in_root() {
    local dir=$1 status=0
    shift
    mkdir -p "$dir/src" "$dir/matrix-out" "$dir/root/.cargo" "$dir/root/target" \
        "$dir/etc/pkcs11-ossl-matrix"
    # cargo inside the root reaches the crate registry through the same TLS setup as the host
    # (which may have its own CA, e.g. an egress proxy's).
    cp "${MATRIX_HOST_CA:-/etc/ssl/certs/ca-certificates.crt}" \
        "$dir/etc/pkcs11-ossl-matrix/host-ca.crt" 2>/dev/null || true
    cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
    local version_dir
    version_dir=${ROOT_TARGET:-$MATRIX_CACHE/target/scratch}
    mkdir -p "$MATRIX_CACHE/cargo-home" "$version_dir" "${ROOT_OUT:-$MATRIX_CACHE/runs/scratch}"
    unshare --mount --propagation private -- bash "$repo/scripts/matrix/inroot.sh" "$dir" \
        "$repo" "$MATRIX_CACHE/cargo-home" "$version_dir" \
        "${ROOT_OUT:-$MATRIX_CACHE/runs/scratch}" "${ROOT_ENV[@]}" -- "$@" </dev/null ||
        status=$?
    return "$status"
}
