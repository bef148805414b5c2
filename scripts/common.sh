# shellcheck shell=bash
# Shell functions shared by scripts/demo.sh and scripts/valgrind.sh (sourced, not run).

# write_openssl_cnf FILE PROVIDER_SO PKCS11_MODULE PIN_FILE [COMMENT]
# Writes an openssl.cnf that activates the default provider and this provider for PKCS11_MODULE,
# with the user PIN read from PIN_FILE (the file names it; the PIN itself is never written here).
write_openssl_cnf() {
    local file=$1 provider_so=$2 module=$3 pin_file=$4 comment=${5:-}
    {
        if [ -n "$comment" ]; then
            printf '# %s\n' "$comment"
        fi
        cat <<EOF
openssl_conf = openssl_init

[openssl_init]
providers = provider_sect

[provider_sect]
default = default_sect
pkcs11 = pkcs11_sect

[default_sect]
activate = 1

[pkcs11_sect]
module = $provider_so
pkcs11-module-path = $module
pkcs11-module-token-pin = file:$pin_file
# SoftHSM2 must not be finalised from OpenSSL's exit handlers.
pkcs11-module-quirks = no-deinit
activate = 1
EOF
    } >"$file"
}

# find_softhsm_module: prints the SoftHSM2 PKCS#11 module: $SOFTHSM2_MODULE when set (and a
# file), else the first of the usual install places; fails when there is none.
find_softhsm_module() {
    local candidate
    if [ -n "${SOFTHSM2_MODULE:-}" ]; then
        [ -f "$SOFTHSM2_MODULE" ] && printf '%s\n' "$SOFTHSM2_MODULE"
        return
    fi
    for candidate in /usr/lib/softhsm/libsofthsm2.so \
        "/usr/lib/$(uname -m)-linux-gnu/softhsm/libsofthsm2.so" \
        /usr/lib64/pkcs11/libsofthsm2.so \
        /usr/local/lib/softhsm/libsofthsm2.so; do
        if [ -f "$candidate" ]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# build_provider REPO: `cargo build --release --locked` in REPO (honouring CARGO_TARGET_DIR),
# then prints the path of the built libpkcs11_ossl.so; fails if the build or the file fails.
build_provider() {
    local repo=$1 target_dir
    (cd "$repo" && cargo build --release --locked) >&2 || return 1
    target_dir=${CARGO_TARGET_DIR:-$repo/target}
    case $target_dir in
    /*) ;;
    *) target_dir=$repo/$target_dir ;;
    esac
    [ -f "$target_dir/release/libpkcs11_ossl.so" ] || return 1
    printf '%s\n' "$target_dir/release/libpkcs11_ossl.so"
}

# openssl_at_least_3_5: true when the `openssl` on PATH is OpenSSL 3.5 or newer (its tools print
# some things differently from 3.0, e.g. TLS signature scheme names).
openssl_at_least_3_5() {
    local version major minor
    version=$(OPENSSL_CONF=/dev/null openssl version 2>/dev/null | awk '{ print $2 }')
    major=${version%%.*}
    minor=${version#*.}
    minor=${minor%%.*}
    [ -n "$major" ] && [ -n "$minor" ] || return 1
    [ "$major" -gt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -ge 5 ]; }
}
