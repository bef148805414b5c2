#!/usr/bin/env bash
# Runs a command in a chroot of a scripts/matrix.sh root (see root.sh, run_in_root, which starts
# this in a private mount namespace): mounts what the command needs, unmounts it all on exit.
#
# Usage: inroot.sh ROOT REPO CARGO_HOME TARGET OUT [NAME=value...] -- COMMAND...
set -euo pipefail
dir=$1 repo=$2 cargo_home=$3 target=$4 out=$5
shift 5
extra_env=()
while [ "$1" != -- ]; do
    extra_env+=("$1")
    shift
done
shift
mounted=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -l "${mounted[$i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
mnt() {
    local where=${*: -1}
    mount "$@"
    mounted+=("$where")
}
mnt -t proc proc "$dir/proc"
mnt -t sysfs -o ro sysfs "$dir/sys"
mnt --bind /dev "$dir/dev"
mnt -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$dir/dev/pts"
mnt -t tmpfs -o mode=1777 tmpfs "$dir/dev/shm"
mnt --bind "$repo" "$dir/src"
mount -o remount,bind,ro "$dir/src"
mnt --bind "$cargo_home" "$dir/root/.cargo"
mnt --bind "$target" "$dir/root/target"
mnt --bind "$out" "$dir/matrix-out"
status=0
chroot "$dir" /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" \
    CARGO_HOME=/root/.cargo CARGO_TARGET_DIR=/root/target CARGO_TERM_COLOR=never \
    CARGO_HTTP_CAINFO=/etc/pkcs11-ossl-matrix/host-ca.crt \
    SSL_CERT_FILE=/etc/pkcs11-ossl-matrix/host-ca.crt \
    CARGO_NET_RETRY=5 MATRIX_IN_ROOT=1 \
    "${extra_env[@]}" "$@" || status=$?
# Anything still running inside the root (a daemon a cell failed to stop) ends with it.
for proc in /proc/[0-9]*; do
    if [ "$(readlink "$proc/root" 2>/dev/null)" = "$dir" ]; then
        kill -9 "${proc#/proc/}" 2>/dev/null || true
    fi
done
exit "$status"
