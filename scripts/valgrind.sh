#!/usr/bin/env bash
# Memory check of pkcs11-ossl under valgrind (memcheck), driven through the stock `openssl` CLI.
#
# Builds the provider (cargo build --release), makes a throw-away SoftHSM2 token in a temporary
# directory with RSA-2048, P-256 and (when pkcs11-tool can make one) Ed25519 key pairs, and runs
# these `openssl` commands with the provider loaded from an openssl.cnf, each under valgrind:
#   - dgst -sha256 -sign with the RSA and P-256 token keys (pkeyutl -sign -rawin for Ed25519);
#   - storeutl 'pkcs11:token=vg' (listing every object on the token);
#   - s_server with a token key, serving one TLS handshake (TLS 1.3 with P-256, TLS 1.2 with RSA).
# Every valgrind run must exit 0: valgrind turns any invalid read/write, use of uninitialised
# memory, bad free or "definitely lost" leak that scripts/valgrind.supp does not suppress into exit
# status 99. Besides, each run must have done its job: signatures are verified WITHOUT valgrind and
# without the provider (OPENSSL_CONF=/dev/null), against public keys read from the token by
# pkcs11-tool; the TLS client (not under valgrind, default provider only) must complete the
# handshake, verify the certificate and get s_server's HTTP reply.
#
# scripts/valgrind.supp may only hide SoftHSM2's, OpenSSL's or libc's own errors; no entry names
# or matches a frame in libpkcs11_ossl.so, so an error in the provider's own code always fails. --keep-debuginfo=yes keeps the provider's
# function names in the reports even though OpenSSL dlclose()s it before valgrind's leak check.
#
# Usage: bash scripts/valgrind.sh        (from any directory; exit status 0 only if all runs pass)
# Environment: CARGO_TARGET_DIR (where cargo builds), SOFTHSM2_MODULE (path of libsofthsm2.so),
# VALGRIND_KEEP_DIR=1 (keep the temporary directory with all logs), VALGRIND_OPTS (extra valgrind
# options, read by valgrind itself; e.g. --gen-suppressions=all to draft suppressions).
# Needs: valgrind, openssl, softhsm2-util, pkcs11-tool (scripts/install-deps.sh), cargo.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$script_dir")
# shellcheck source=scripts/common.sh
. "$script_dir/common.sh"
readonly SUPPRESSIONS=$script_dir/valgrind.supp
readonly TOKEN_LABEL=vg
# Throw-away PINs for a token that lives only in the temporary directory.
readonly USER_PIN=1234
readonly SO_PIN=12345678
# Upper bound for one command under valgrind (valgrind slows OpenSSL down about 20-50 times).
readonly VALGRIND_TIMEOUT=300
readonly VALGRIND_ARGS=(
    --tool=memcheck
    --leak-check=full
    --errors-for-leak-kinds=definite
    --show-leak-kinds=definite
    --error-exitcode=99
    --suppressions="$SUPPRESSIONS"
    --track-origins=no
    --keep-debuginfo=yes
    --num-callers=30
)

started=$(date +%s)
say() { printf '==> %s\n' "$*"; }
die() {
    printf 'valgrind.sh: error: %s\n' "$*" >&2
    exit 1
}

for tool in valgrind openssl softhsm2-util pkcs11-tool timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; run scripts/install-deps.sh (valgrind: apt-get install valgrind)"
done
[ -f "$SUPPRESSIONS" ] || die "$SUPPRESSIONS is missing"

softhsm_module=$(find_softhsm_module) ||
    die "libsofthsm2.so not found; install softhsm2 or set SOFTHSM2_MODULE"

# ---------------------------------------------------------------------------------------------
# Temporary directory and the background TLS server are removed on any exit.
work=$(mktemp -d "${TMPDIR:-/tmp}/pkcs11-ossl-valgrind.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "${VALGRIND_KEEP_DIR:-0}" = 1 ]; then
        printf 'valgrind.sh: kept %s\n' "$work" >&2
    else
        rm -rf -- "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
say "building the provider (cargo build --release --locked)"
provider_so=$(build_provider "$repo") || die "cargo build --release failed (or made no libpkcs11_ossl.so)"

# ---------------------------------------------------------------------------------------------
say "creating SoftHSM2 token '$TOKEN_LABEL' in $work"
mkdir -p "$work/tokens" "$work/logs"
logs=$work/logs
export SOFTHSM2_CONF=$work/softhsm2.conf
cat >"$SOFTHSM2_CONF" <<EOF
directories.tokendir = $work/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
pin_file=$work/user-pin
(umask 077 && printf '%s\n' "$USER_PIN" >"$pin_file")
softhsm2-util --init-token --free --label "$TOKEN_LABEL" --so-pin "$SO_PIN" --pin "$USER_PIN" \
    >"$logs/init-token.log" 2>&1 || die "softhsm2-util --init-token failed: $(cat "$logs/init-token.log")"

p11tool() { pkcs11-tool --module "$softhsm_module" --token-label "$TOKEN_LABEL" "$@"; }
# Makes a key pair on the token; $1 label, $2 CKA_ID (hex), $3 pkcs11-tool --key-type.
make_key() {
    p11tool --login --pin "$USER_PIN" --keypairgen --key-type "$3" --id "$2" --label "$1" \
        >"$logs/keygen-$1.log" 2>&1
}
# Writes the token's public key $2 (CKA_ID) as PEM to $work/$1.pub.pem, without the provider.
export_public_key() {
    local raw=$work/$1.pub.raw inform=DER
    p11tool --read-object --type pubkey --id "$2" --output-file "$raw" >"$logs/export-$1.log" 2>&1 ||
        die "pkcs11-tool --read-object --id $2 failed: $(cat "$logs/export-$1.log")"
    # pkcs11-tool writes DER for RSA and EC keys but PEM for EdDSA keys.
    if head -c 10 "$raw" | grep -q -- '-----BEGIN'; then inform=PEM; fi
    OPENSSL_CONF=/dev/null openssl pkey -pubin -inform "$inform" -in "$raw" -out "$work/$1.pub.pem" ||
        die "cannot convert the $1 public key read from the token"
}

make_key rsa 01 rsa:2048 || die "RSA key generation failed: $(cat "$logs/keygen-rsa.log")"
make_key p256 02 EC:prime256v1 || die "P-256 key generation failed: $(cat "$logs/keygen-p256.log")"
export_public_key rsa 01
export_public_key p256 02
have_ed25519=""
if make_key ed25519 03 EC:edwards25519; then
    export_public_key ed25519 03
    have_ed25519=1
else
    printf '    this pkcs11-tool cannot make Ed25519 keys; the Ed25519 run is skipped\n'
fi

cnf=$work/openssl.cnf
write_openssl_cnf "$cnf" "$provider_so" "$softhsm_module" "$pin_file"
message=$work/message.txt
printf 'Signed under valgrind by a key that never left the token.\n' >"$message"

p11_openssl() { OPENSSL_CONF=$cnf timeout 60 openssl "$@"; }
plain_openssl() { OPENSSL_CONF=/dev/null openssl "$@"; }
uri_for() { printf 'pkcs11:token=%s;object=%s;type=private' "$TOKEN_LABEL" "$1"; }

# Makes sure the provider really is active: OpenSSL 3.0 silently skips a provider that fails to
# load, and the runs below must not pass by running nothing of ours.
p11_openssl list -providers >"$logs/providers.log" 2>&1 || die "openssl list -providers failed"
grep -q '^  pkcs11$' "$logs/providers.log" || die "the provider is not loaded: $(cat "$logs/providers.log")"

# ---------------------------------------------------------------------------------------------
# Runs. Each one prints a single PASS/FAIL line; failures also print the valgrind report.
passed=0
failed=()

# Summarises a valgrind log: errors, suppressed errors and definitely lost bytes.
vg_figures() {
    local errors suppressed lost
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$1" | tail -n 1)
    suppressed=$(sed -n 's/.*ERROR SUMMARY: .*(suppressed: \([0-9,]*\) from.*/\1/p' "$1" | tail -n 1)
    lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$1" | tail -n 1)
    printf '%s errors, %s suppressed, %s bytes definitely lost' "${errors:-?}" "${suppressed:-?}" "${lost:-0}"
}

join_problems() {
    local joined
    joined=$(printf '%s; ' "$@")
    printf '%s' "${joined%; }"
}

# Records the verdict of run $1. $2 is valgrind's exit status, $3 its log; further arguments are
# problems found by the run's own checks.
verdict() {
    local name=$1 status=$2 log=$3
    shift 3
    local problems=("$@")
    case $status in
    0) ;;
    99) problems+=("valgrind found errors") ;;
    124) problems+=("timed out after ${VALGRIND_TIMEOUT}s") ;;
    *) problems+=("exit status $status") ;;
    esac
    if [ "${#problems[@]}" -eq 0 ]; then
        passed=$((passed + 1))
        printf '  PASS  %-30s (%s)\n' "$name" "$(vg_figures "$log")"
        return 0
    fi
    failed+=("$name")
    printf '  FAIL  %-30s (%s; %s)\n' "$name" "$(vg_figures "$log")" "$(join_problems "${problems[@]}")"
    # The report without valgrind's banner, or the command's stderr when valgrind found nothing.
    if [ "$status" -eq 99 ]; then
        grep -v -e '^==[0-9]*== *$' "$log" | sed -n '/HEAP SUMMARY\|Invalid\|uninitialised\|lost in loss record\|^{/,$p' |
            sed 's/^/        | /'
    elif [ -s "$log.stderr" ]; then
        tail -n 15 "$log.stderr" | sed 's/^/        | /'
    fi
    return 1
}

# Runs `openssl "$@"` under valgrind with the provider loaded; output in $logs/$name.*.
# Sets vg_status and vg_log.
run_vg() {
    local name=$1
    shift
    vg_log=$logs/$name.vg
    vg_status=0
    OPENSSL_CONF=$cnf timeout "$VALGRIND_TIMEOUT" valgrind "${VALGRIND_ARGS[@]}" --log-file="$vg_log" \
        openssl "$@" >"$vg_log.stdout" 2>"$vg_log.stderr" </dev/null || vg_status=$?
}

sign_run() {
    local label=$1 sig=$work/$1.sig problems=()
    if [ "$label" = ed25519 ]; then
        # Ed25519 signs the message itself, not a digest of it.
        run_vg "sign-$label" pkeyutl -sign -rawin -inkey "$(uri_for "$label")" -in "$message" -out "$sig"
        plain_openssl pkeyutl -verify -rawin -pubin -inkey "$work/$label.pub.pem" -in "$message" \
            -sigfile "$sig" >"$logs/verify-$label.log" 2>&1 || problems+=("signature does not verify")
    else
        run_vg "sign-$label" dgst -sha256 -sign "$(uri_for "$label")" -out "$sig" "$message"
        plain_openssl dgst -sha256 -verify "$work/$label.pub.pem" -signature "$sig" "$message" \
            >"$logs/verify-$label.log" 2>&1 || problems+=("signature does not verify")
    fi
    verdict "sign with $label" "$vg_status" "$vg_log" "${problems[@]}"
}

storeutl_run() {
    local problems=() found
    run_vg storeutl storeutl "pkcs11:token=$TOKEN_LABEL"
    found=$(sed -n 's/^Total found: //p' "$vg_log.stdout")
    # One private and one public key per key pair.
    [ "${found:-0}" -ge 4 ] || problems+=("storeutl found ${found:-no} objects, expected at least 4")
    verdict "storeutl listing" "$vg_status" "$vg_log" "${problems[@]}"
}

# s_server under valgrind with the token key $1 serves one handshake of protocol $2 (tls1_3 or
# tls1_2) to s_client, which runs without valgrind and without the provider.
tls_run() {
    local label=$1 proto=$2 name=tls-$2-$1 cert=$work/$1.crt problems=() port="" deadline line
    local client=$logs/$name.client client_status=0
    if ! p11_openssl req -new -x509 -key "$(uri_for "$label")" -subj /CN=localhost -days 1 \
        -out "$cert" >"$logs/$name.req.log" 2>&1; then
        failed+=("$name")
        printf '  FAIL  %-30s (req -x509 with the token key failed: %s)\n' "$name" "$(tail -n 1 "$logs/$name.req.log")"
        return 1
    fi
    vg_log=$logs/$name.vg
    # Port 0: the kernel picks a free port and s_server prints it in its "ACCEPT host:port" line.
    OPENSSL_CONF=$cnf timeout "$VALGRIND_TIMEOUT" valgrind "${VALGRIND_ARGS[@]}" --log-file="$vg_log" \
        openssl s_server -key "$(uri_for "$label")" -cert "$cert" -accept 127.0.0.1:0 -naccept 1 -www \
        >"$vg_log.stdout" 2>"$vg_log.stderr" </dev/null &
    server_pid=$!
    # Wait (at most 120 s) for the server to listen; stop early if it dies.
    deadline=$(($(date +%s) + 120))
    while [ -z "$port" ] && [ "$(date +%s)" -lt "$deadline" ] && kill -0 "$server_pid" 2>/dev/null; do
        line=$(grep -m 1 '^ACCEPT ' "$vg_log.stdout" 2>/dev/null || true)
        if [ -n "$line" ]; then port=${line##*:}; else sleep 0.2; fi
    done
    if [ -n "$port" ]; then
        printf 'GET / HTTP/1.0\r\n\r\n' |
            OPENSSL_CONF=/dev/null timeout 120 openssl s_client -connect "127.0.0.1:$port" "-$proto" \
                -CAfile "$cert" -verify_return_error -ign_eof >"$client.out" 2>"$client.err" ||
            client_status=$?
        [ "$client_status" -eq 0 ] || problems+=("s_client exit status $client_status")
        grep -q 'Verify return code: 0 (ok)' "$client.out" || problems+=("certificate not verified")
        grep -q 'Cipher is ' "$client.out" || problems+=("no cipher negotiated")
        grep -q '^HTTP/1.0 200 ok' "$client.out" || problems+=("no HTTP reply from s_server")
    else
        problems+=("s_server did not start listening")
        kill "$server_pid" 2>/dev/null || true
    fi
    # -naccept 1: the server exits by itself after the handshake; `timeout` bounds the wait.
    vg_status=0
    wait "$server_pid" || vg_status=$?
    server_pid=""
    verdict "s_server ${proto/tls1_/TLS 1.} with $label key" "$vg_status" "$vg_log" "${problems[@]}"
}

say "running openssl under valgrind (each run takes several seconds)"
sign_run rsa || true
sign_run p256 || true
if [ -n "$have_ed25519" ]; then sign_run ed25519 || true; fi
storeutl_run || true
tls_run p256 tls1_3 || true
tls_run rsa tls1_2 || true

# ---------------------------------------------------------------------------------------------
echo
printf 'valgrind: %d passed, %d failed in %ds\n' "$passed" "${#failed[@]}" $(($(date +%s) - started))
if [ "${#failed[@]}" -ne 0 ]; then
    printf '  FAILED: %s\n' "${failed[@]}"
    echo "Rerun with VALGRIND_KEEP_DIR=1 to keep the logs; VALGRIND_OPTS=--gen-suppressions=all drafts suppressions."
    exit 1
fi
