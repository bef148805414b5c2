#!/usr/bin/env bash
# Installs pkcs11-ossl without a package manager (README "Install"; on Debian the .deb from
# `cargo deb` installs the same files): the provider as `pkcs11.so` in an OpenSSL modules
# directory, so that an openssl.cnf provider entry named `pkcs11` needs no `module =` line; the
# `pkcs11-ossl` helper; the man pages pkcs11-ossl(1) and pkcs11-ossl(7); and the example
# configuration.
#
# Usage: scripts/install.sh [--prefix DIR] [--build-dir DIR]
#   (no --prefix)    the provider into the modules directory `openssl version -m` reports (or
#                    $OPENSSL_MODULES), everything else under /usr/local; needs root.
#   --prefix DIR     everything under DIR: DIR/lib/ossl-modules/pkcs11.so, DIR/bin/pkcs11-ossl,
#                    DIR/share/man/man1, DIR/share/man/man7, DIR/share/doc/pkcs11-ossl.
#                    OpenSSL then finds the provider with OPENSSL_MODULES=DIR/lib/ossl-modules.
#   --build-dir DIR  take libpkcs11_ossl.so and pkcs11-ossl from DIR instead of running
#                    `cargo build --release --locked` (whose output is $CARGO_TARGET_DIR/release).
# Prints every file it installed.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$script_dir")

say() { printf 'install.sh: %s\n' "$*"; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n 's/^# \{0,1\}//; /^Usage:/,/^Prints/p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

prefix=""
build_dir=""
while [ "$#" -gt 0 ]; do
    case $1 in
    --prefix)
        [ "$#" -ge 2 ] || usage
        prefix=$2
        shift 2
        ;;
    --prefix=*)
        prefix=${1#--prefix=}
        shift
        ;;
    --build-dir)
        [ "$#" -ge 2 ] || usage
        build_dir=$2
        shift 2
        ;;
    --build-dir=*)
        build_dir=${1#--build-dir=}
        shift
        ;;
    -h | --help) usage ;;
    *)
        printf 'install.sh: unknown argument: %s\n' "$1" >&2
        usage
        ;;
    esac
done

if [ -z "$build_dir" ]; then
    say "building (cargo build --release --locked)"
    (cd "$repo" && cargo build --release --locked) || die "cargo build failed"
    target_dir=${CARGO_TARGET_DIR:-$repo/target}
    case $target_dir in
    /*) ;;
    *) target_dir=$repo/$target_dir ;;
    esac
    build_dir=$target_dir/release
fi
library=$build_dir/libpkcs11_ossl.so
helper=$build_dir/pkcs11-ossl
[ -f "$library" ] || die "$library not found"
[ -f "$helper" ] || die "$helper not found"

if [ -n "$prefix" ]; then
    case $prefix in
    /*) ;;
    *) prefix=$(pwd -P)/$prefix ;;
    esac
    modules_dir=$prefix/lib/ossl-modules
    base=$prefix
else
    modules_dir=${OPENSSL_MODULES:-}
    if [ -z "$modules_dir" ]; then
        # `MODULESDIR: "/usr/lib/x86_64-linux-gnu/ossl-modules"`
        modules_dir=$(OPENSSL_CONF=/dev/null openssl version -m 2>/dev/null |
            sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p') || true
    fi
    [ -n "$modules_dir" ] ||
        die "cannot find OpenSSL's modules directory (openssl version -m); use --prefix DIR"
    base=/usr/local
fi

installed=()
put() { # put MODE SOURCE DESTINATION
    install -D -m "$1" "$2" "$3" || die "cannot install $3"
    installed+=("$3")
}
put 644 "$library" "$modules_dir/pkcs11.so"
put 755 "$helper" "$base/bin/pkcs11-ossl"
put 644 "$repo/man/pkcs11-ossl.1" "$base/share/man/man1/pkcs11-ossl.1"
put 644 "$repo/man/pkcs11-ossl.7" "$base/share/man/man7/pkcs11-ossl.7"
put 644 "$repo/openssl.cnf.example" "$base/share/doc/pkcs11-ossl/openssl.cnf.example"

say "installed:"
printf '    %s\n' "${installed[@]}"
if [ -n "$prefix" ]; then
    cat <<EOF
install.sh: OpenSSL finds the provider by the name 'pkcs11' with
    export OPENSSL_MODULES=$modules_dir
  or, without that, with 'module = $modules_dir/pkcs11.so' in the provider section.
  Man pages: MANPATH=$base/share/man man 7 pkcs11-ossl
EOF
else
    say "an openssl.cnf provider entry named 'pkcs11' now needs no 'module =' line;" \
        "see $base/share/doc/pkcs11-ossl/openssl.cnf.example and 'pkcs11-ossl doctor'"
fi
