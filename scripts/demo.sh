#!/usr/bin/env bash
# End-to-end demo of pkcs11-ossl (the README's first command).
#
# Builds the provider, makes a throw-away SoftHSM2 token with five key pairs generated ON the token,
# and then uses those keys through the stock `openssl` CLI with the provider loaded from an
# openssl.cnf: listing (storeutl), signing (dgst, pkeyutl), a self-signed certificate (req -x509)
# and TLS 1.3 / TLS 1.2 handshakes (s_server). Every signature and handshake is checked by an
# `openssl` run that loads only the default provider, with public keys read from the token by
# pkcs11-tool, so a check cannot pass because of the provider checking itself.
#
# Output goes to ${DEMO_DIR:-$PWD/demo}, which is deleted and recreated on every run. Per-step logs
# are in <demo>/logs/. Exit status 0 only when every check passed.
#
# Environment: DEMO_DIR (output directory), SOFTHSM2_MODULE (path of libsofthsm2.so),
# CARGO_TARGET_DIR (where cargo puts target/), PKCS11_PROVIDER_DEBUG (provider debug log).
#
# Checks are chained as `check A && check B || true`: B runs only when A passed, and `|| true`
# only keeps `set -e` from ending the demo at the first failure (check records it).
# shellcheck disable=SC2015
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$script_dir")
# shellcheck source=scripts/common.sh
. "$script_dir/common.sh"
demo_dir=${DEMO_DIR:-$PWD/demo}
case $demo_dir in
/*) ;;
*) demo_dir=$PWD/$demo_dir ;;
esac

readonly TOKEN_LABEL=demo
# Demo PINs: the token lives in a scratch directory and holds nothing of value.
readonly USER_PIN=1234
# label, CKA_ID (hex), pkcs11-tool --key-type
readonly KEYS=(
    "rsa2048 01 rsa:2048"
    "rsa3072 02 rsa:3072"
    "p256    03 EC:prime256v1"
    "p384    04 EC:secp384r1"
    "ed25519 05 EC:edwards25519"
)
readonly OPENSSL_TIMEOUT=60
# Marker so that a rerun only ever deletes a directory this script made.
readonly MARKER=.pkcs11-ossl-demo

started=$(date +%s%N)
say() { printf '==> %s\n' "$*"; }
die() {
    printf 'demo: error: %s\n' "$*" >&2
    exit 1
}
elapsed() {
    local ms=$((($(date +%s%N) - started) / 1000000))
    printf '%d.%03ds' $((ms / 1000)) $((ms % 1000))
}

# ---------------------------------------------------------------------------------------------
# Background processes (TLS server, its output drain) are stopped on any exit.
server_pid=""
drain_pid=""
cleanup() {
    local pid
    for pid in "$server_pid" "$drain_pid"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Dependencies and build. Failures here are fatal: nothing after them can run.
say "checking dependencies"
bash "$script_dir/install-deps.sh"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$cargo_bin/cargo" ]; then
    PATH="$cargo_bin:$PATH"
fi

say "building the provider (cargo build --release --locked)"
provider_so=$(build_provider "$repo") || die "cargo build --release failed (or made no libpkcs11_ossl.so)"

softhsm_module=$(find_softhsm_module) ||
    die "libsofthsm2.so not found; install softhsm2 or set SOFTHSM2_MODULE"

# ---------------------------------------------------------------------------------------------
# Fresh demo directory.
if [ -e "$demo_dir" ]; then
    if [ -n "$(ls -A "$demo_dir" 2>/dev/null)" ] && [ ! -e "$demo_dir/$MARKER" ]; then
        die "$demo_dir exists, is not empty and was not made by this script; remove it or set DEMO_DIR"
    fi
    rm -rf -- "$demo_dir"
fi
mkdir -p "$demo_dir"/{tokens,keys,sigs,logs}
: >"$demo_dir/$MARKER"
logs=$demo_dir/logs
cnf=$demo_dir/openssl.cnf
pin_file=$demo_dir/user-pin
so_pin_file=$demo_dir/so-pin
message=$demo_dir/message.txt
export SOFTHSM2_CONF=$demo_dir/softhsm2.conf

# The provider under test (OPENSSL_CONF=demo/openssl.cnf) and a reference that can only use
# OpenSSL's built-in default provider (empty config). A hang in the provider ends as exit
# status 124 after OPENSSL_TIMEOUT seconds instead of stalling the demo (and CI).
p11_openssl() { OPENSSL_CONF=$cnf timeout "$OPENSSL_TIMEOUT" openssl "$@"; }
plain_openssl() { OPENSSL_CONF=/dev/null openssl "$@"; }
p11tool() { pkcs11-tool --module "$softhsm_module" --token-label "$TOKEN_LABEL" "$@"; }
fails() { ! "$@"; }
# For checks made of several commands: names the command that failed on stderr.
try() {
    local status=0
    "$@" || status=$?
    [ "$status" -eq 0 ] || printf 'command failed (status %d): %s\n' "$status" "$(show_command "$@")" >&2
    return "$status"
}

# ---------------------------------------------------------------------------------------------
# Checks: each runs one command (or one small function) with its output in logs/NN-name.{out,err},
# prints PASS or FAIL, and on failure the command and the end of its stderr. The demo carries on
# after a failure so that one run lists every problem.
step_no=0
passed=0
failed=()
last_log=""

# Prints a command the way a user would type it, with the env vars our wrappers set.
show_command() {
    local head=$1
    shift
    case $head in
    p11_openssl) printf 'OPENSSL_CONF=%q SOFTHSM2_CONF=%q openssl' "$cnf" "$SOFTHSM2_CONF" ;;
    plain_openssl) printf 'OPENSSL_CONF=/dev/null openssl' ;;
    p11tool) printf 'pkcs11-tool --module %q --token-label %q' "$softhsm_module" "$TOKEN_LABEL" ;;
    fails) printf '! ' && show_command "$@" && return ;;
    *) printf '%q' "$head" ;;
    esac
    [ $# -eq 0 ] || printf ' %q' "$@"
}

check() {
    local name=$1
    shift
    step_no=$((step_no + 1))
    last_log=$logs/$(printf '%02d' "$step_no")-${name//[^A-Za-z0-9_.-]/_}
    local status=0
    "$@" >"$last_log.out" 2>"$last_log.err" </dev/null || status=$?
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
        printf '  PASS  %s\n' "$name"
        return 0
    fi
    failed+=("$name")
    printf '  FAIL  %s (exit status %d%s)\n' "$name" "$status" \
        "$([ "$status" -ne 124 ] || echo ", timed out after ${OPENSSL_TIMEOUT}s")"
    printf '        command: %s\n' "$(show_command "$@")"
    printf '        logs:    %s.{out,err}\n' "$last_log"
    if [ -s "$last_log.err" ]; then
        tail -n 15 "$last_log.err" | sed 's/^/        | /'
    fi
    return 1
}

skip() {
    failed+=("$1 (skipped: $2)")
    printf '  SKIP  %s (%s)\n' "$1" "$2"
}

# Prints the summary; succeeds when every check passed.
summary() {
    echo
    printf 'Took %s; output, logs and demo token in %s\n' "$(elapsed)" "$demo_dir"
    if [ "${#failed[@]}" -ne 0 ]; then
        printf '  FAILED: %s\n' "${failed[@]}"
        echo "Hint: set PKCS11_PROVIDER_DEBUG=file:$demo_dir/provider-debug.log,level:2 and rerun for the provider's log."
        echo "DEMO FAIL"
    else
        echo "DEMO PASS"
    fi
    # One plain closing line, in the "N passed, N failed" form CI tools read.
    printf 'demo: %d passed, %d failed\n' "$passed" "${#failed[@]}"
    [ "${#failed[@]}" -eq 0 ]
}

# ---------------------------------------------------------------------------------------------
say "creating SoftHSM2 token '$TOKEN_LABEL' in $demo_dir/tokens"
cat >"$SOFTHSM2_CONF" <<EOF
# SoftHSM2 configuration for the pkcs11-ossl demo token (written by scripts/demo.sh).
directories.tokendir = $demo_dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
so_pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
(
    umask 077
    printf '%s\n' "$USER_PIN" >"$pin_file"
    printf '%s\n' "$so_pin" >"$so_pin_file"
)
softhsm2-util --init-token --free --label "$TOKEN_LABEL" --pin "$USER_PIN" --so-pin "$so_pin" \
    >"$logs/init-token.out" 2>&1 || die "softhsm2-util --init-token failed: $(cat "$logs/init-token.out")"
printf '    DEMO PINs (not secrets, do not reuse): user PIN %s in %s, SO PIN in %s\n' \
    "$USER_PIN" "$pin_file" "$so_pin_file"

say "generating key pairs on the token with pkcs11-tool --keypairgen"
for entry in "${KEYS[@]}"; do
    read -r label id key_type <<<"$entry"
    key_started=$(date +%s%N)
    p11tool --login --pin "$USER_PIN" --keypairgen --key-type "$key_type" \
        --label "$label" --id "$id" >"$logs/keygen-$label.out" 2>&1 ||
        die "pkcs11-tool --keypairgen --key-type $key_type failed: $(tail -n 5 "$logs/keygen-$label.out")"
    printf '    %-8s id=%s  %-16s %d ms\n' "$label" "$id" "$key_type" $((($(date +%s%N) - key_started) / 1000000))
done

write_openssl_cnf "$cnf" "$provider_so" "$softhsm_module" "$pin_file" \
    "OpenSSL configuration for the pkcs11-ossl demo (written by scripts/demo.sh)."
printf 'This message was signed by a key that never left the token.\n' >"$message"
printf '    wrote %s\n' "$cnf"

# ---------------------------------------------------------------------------------------------
# Public keys straight from the token, converted to PEM without our provider.

# Rebuilds a SubjectPublicKeyInfo from CKA_EC_POINT/CKA_EC_PARAMS as listed by pkcs11-tool.
# OpenSC 0.23 (Debian 12) fails `--read-object --type pubkey` for P-384 keys ("cannot create
# EVP_PKEY"), so the demo falls back to this for EC keys.
ec_spki_from_listing() {
    local label=$1 out=$2 fields point params curve
    fields=$(p11tool --list-objects --type pubkey | awk -v want="$label" '
        /^[^ ]/ { point = ""; params = "" }
        $1 == "EC_POINT:" { point = $2 }
        $1 == "EC_PARAMS:" { params = $2 }
        $1 == "label:" && $2 == want { print point, params; exit }')
    read -r point params <<<"$fields"
    [ -n "${point:-}" ] || {
        echo "no EC_POINT listed for $label" >&2
        return 1
    }
    # CKA_EC_POINT is a DER OCTET STRING around the point: drop its tag and length.
    case ${point:2:2} in
    81) point=${point:6} ;;
    82) point=${point:8} ;;
    *) point=${point:4} ;;
    esac
    case $params in
    06082a8648ce3d030107) curve=prime256v1 ;;
    06052b81040022) curve=secp384r1 ;;
    06052b81040023) curve=secp521r1 ;;
    *)
        echo "unexpected EC_PARAMS $params for $label" >&2
        return 1
        ;;
    esac
    cat >"$out.genconf" <<EOF
asn1 = SEQUENCE:spki
[spki]
algorithm = SEQUENCE:algorithm
key = FORMAT:HEX,BITSTRING:$point
[algorithm]
type = OID:id-ecPublicKey
curve = OID:$curve
EOF
    try plain_openssl asn1parse -genconf "$out.genconf" -noout -out "$out"
}

export_public_key() {
    local label=$1 id=$2 raw=$demo_dir/keys/$1.pub.raw inform=DER
    if ! try p11tool --read-object --type pubkey --id "$id" --output-file "$raw"; then
        echo "pkcs11-tool --read-object failed; rebuilding the key from its EC attributes" >&2
        ec_spki_from_listing "$label" "$raw" || return 1
    fi
    # pkcs11-tool writes DER for RSA/EC keys but PEM for EdDSA keys.
    if head -c 11 "$raw" | grep -q -- '-----BEGIN'; then inform=PEM; fi
    try plain_openssl pkey -pubin -inform "$inform" -in "$raw" -out "$demo_dir/keys/$label.pub.pem"
}

say "exporting public keys with pkcs11-tool (no provider involved)"
declare -A have_pub=()
for entry in "${KEYS[@]}"; do
    read -r label id _ <<<"$entry"
    if check "export $label public key" export_public_key "$label" "$id"; then
        have_pub[$label]=1
    fi
done

# ---------------------------------------------------------------------------------------------
say "provider checks (OPENSSL_CONF=$cnf)"

provider_is_active() {
    try p11_openssl list -providers -verbose || return 1
    # OpenSSL 3.0 silently skips a provider that fails to load, so look for it by name.
    if ! awk '/^  [^ ]/ { in_ours = ($1 == "pkcs11") } in_ours && /status: active/ { ok = 1 }
              END { exit !ok }' "$last_log.out"; then
        echo "the pkcs11 provider is not active; loading it by hand to show why:" >&2
        PKCS11_PROVIDER_MODULE=$softhsm_module plain_openssl list -providers -provider "$provider_so" >&2
        return 1
    fi
}
if ! check "provider loads from openssl.cnf" provider_is_active; then
    skip "every check through the provider" "provider not loaded"
    summary || exit 1
fi

if check "storeutl -keys 'pkcs11:token=$TOKEN_LABEL'" \
    p11_openssl storeutl -keys "pkcs11:token=$TOKEN_LABEL"; then
    found=$(sed -n 's/^Total found: //p' "$last_log.out")
    printf '        storeutl found %s key object(s)\n' "${found:-?}"
    if [ "${found:-0}" -lt "${#KEYS[@]}" ]; then
        failed+=("storeutl lists all ${#KEYS[@]} private keys (found ${found:-0})")
        printf '  FAIL  expected at least %d keys\n' "${#KEYS[@]}"
    fi
fi

uri_for() { printf 'pkcs11:token=%s;object=%s;type=private' "$TOKEN_LABEL" "$1"; }

same_public_key() {
    local label=$1
    try p11_openssl pkey -in "$(uri_for "$label")" -pubout -out "$demo_dir/keys/$label.provider.pub.pem" &&
        try cmp "$demo_dir/keys/$label.pub.pem" "$demo_dir/keys/$label.provider.pub.pem"
}

tampered=$demo_dir/message-changed.txt
sed 's/token/TOKEN/' "$message" >"$tampered"

for entry in "${KEYS[@]}"; do
    read -r label id key_type <<<"$entry"
    uri=$(uri_for "$label")
    pub=$demo_dir/keys/$label.pub.pem
    sig=$demo_dir/sigs/$label.sig
    printf '  -- %s (%s)\n' "$label" "$uri"
    if [ -z "${have_pub[$label]:-}" ]; then
        skip "$label: pkey -pubout, sign and verify" "no reference public key"
        continue
    fi
    check "$label: pkey -pubout equals the token's public key" same_public_key "$label" || true
    if [ "$label" = ed25519 ]; then
        # Ed25519 signs the message itself (no separate digest), hence pkeyutl -rawin.
        check "$label: pkeyutl -sign -rawin" \
            p11_openssl pkeyutl -sign -rawin -inkey "$uri" -in "$message" -out "$sig" &&
            check "$label: signature verifies (default provider)" \
                plain_openssl pkeyutl -verify -rawin -pubin -inkey "$pub" -in "$message" -sigfile "$sig" &&
            check "$label: changed message is rejected" \
                fails plain_openssl pkeyutl -verify -rawin -pubin -inkey "$pub" -in "$tampered" -sigfile "$sig" ||
            true
        continue
    fi
    check "$label: dgst -sha256 -sign" \
        p11_openssl dgst -sha256 -sign "$uri" -out "$sig" "$message" &&
        check "$label: signature verifies (default provider)" \
            plain_openssl dgst -sha256 -verify "$pub" -signature "$sig" "$message" &&
        check "$label: changed message is rejected" \
            fails plain_openssl dgst -sha256 -verify "$pub" -signature "$sig" "$tampered" ||
        true
    case $key_type in
    rsa:*)
        pss=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest)
        check "$label: dgst -sha384 -sign with RSA-PSS" \
            p11_openssl dgst -sha384 "${pss[@]}" -sign "$uri" -out "$sig.pss" "$message" &&
            check "$label: PSS signature verifies (default provider)" \
                plain_openssl dgst -sha384 "${pss[@]}" -verify "$pub" -signature "$sig.pss" "$message" ||
            true
        ;;
    esac
done

# The same key found by CKA_ID (binary, percent-encoded) instead of by label.
if [ -n "${have_pub[p256]:-}" ]; then
    check "p256 by id: dgst -sign 'pkcs11:token=$TOKEN_LABEL;id=%03;type=private'" \
        p11_openssl dgst -sha256 -sign "pkcs11:token=$TOKEN_LABEL;id=%03;type=private" \
        -out "$demo_dir/sigs/p256-by-id.sig" "$message" &&
        check "p256 by id: signature verifies (default provider)" \
            plain_openssl dgst -sha256 -verify "$demo_dir/keys/p256.pub.pem" \
            -signature "$demo_dir/sigs/p256-by-id.sig" "$message" ||
        true
fi

# ---------------------------------------------------------------------------------------------
say "self-signed certificate for the P-256 key"
cert=$demo_dir/p256.crt
p256_uri=$(uri_for p256)

cert_matches_token_key() {
    try plain_openssl x509 -in "$cert" -noout -pubkey -out "$demo_dir/keys/p256.cert.pub.pem" &&
        try cmp "$demo_dir/keys/p256.pub.pem" "$demo_dir/keys/p256.cert.pub.pem"
}
store_cert_on_token() {
    try plain_openssl x509 -in "$cert" -outform DER -out "$demo_dir/p256.crt.der" &&
        try p11tool --login --pin "$USER_PIN" --write-object "$demo_dir/p256.crt.der" --type cert \
            --id 03 --label p256
}

have_cert=""
if check "req -new -x509 -key '$p256_uri'" \
    p11_openssl req -new -x509 -key "$p256_uri" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -days 30 -out "$cert" &&
    check "certificate self-signature verifies (default provider)" \
        plain_openssl verify -CAfile "$cert" "$cert" &&
    check "certificate holds the token's P-256 public key" cert_matches_token_key; then
    have_cert=1
    if check "store certificate on the token (pkcs11-tool --write-object, id 03)" store_cert_on_token; then
        if check "storeutl -certs 'pkcs11:token=$TOKEN_LABEL'" \
            p11_openssl storeutl -certs "pkcs11:token=$TOKEN_LABEL"; then
            found=$(sed -n 's/^Total found: //p' "$last_log.out")
            if [ "${found:-0}" != 1 ]; then
                failed+=("storeutl -certs finds exactly 1 certificate (found ${found:-0})")
                printf '  FAIL  storeutl -certs found %s certificates, expected 1\n' "${found:-0}"
            fi
        fi
    fi
fi

# ---------------------------------------------------------------------------------------------
# TLS: s_server holds the token key (through the provider); s_client uses the default provider
# only and trusts exactly the self-signed certificate.

# Runs one handshake; $1 is tls1_3 or tls1_2. Writes tls-$1/{server,client}.{out,err}.
tls_handshake() {
    local proto=$1 dir=$demo_dir/tls-$1 fd line port="" status
    mkdir -p "$dir"
    mkfifo "$dir/server.fifo"
    # s_server prints "ACCEPT <addr>:<port>" once it listens; port 0 lets the kernel pick a free
    # port. `timeout` bounds a server that never gets a client.
    OPENSSL_CONF=$cnf timeout 60 openssl s_server -accept 127.0.0.1:0 -naccept 1 -www \
        -key "$p256_uri" -cert "$cert" \
        >"$dir/server.fifo" 2>"$dir/server.err" </dev/null &
    server_pid=$!
    exec {fd}<"$dir/server.fifo"
    while IFS= read -r -t 30 -u "$fd" line; do
        printf '%s\n' "$line" >>"$dir/server.out"
        if [[ $line == ACCEPT* ]]; then
            port=${line##*:}
            break
        fi
    done
    # Keep draining the server's stdout so that it never blocks on (or dies from) a closed pipe.
    cat <&"$fd" >>"$dir/server.out" &
    drain_pid=$!
    exec {fd}<&-
    if [ -z "$port" ]; then
        kill "$server_pid" 2>/dev/null || true
        echo "s_server did not print its ACCEPT line; its stderr:" >&2
        cat "$dir/server.err" >&2
        return 1
    fi
    echo "s_server listening on 127.0.0.1:$port" >&2

    status=0
    printf 'GET / HTTP/1.0\r\n\r\n' |
        OPENSSL_CONF=/dev/null timeout 30 openssl s_client -connect "127.0.0.1:$port" "-$proto" \
            -servername localhost -CAfile "$cert" -verify_return_error -verify_hostname localhost \
            -ign_eof >"$dir/client.out" 2>"$dir/client.err" || status=$?
    if wait "$server_pid"; then server_status=0; else server_status=$?; fi
    server_pid=""
    wait "$drain_pid" || true
    drain_pid=""
    cat "$dir/client.out"

    local problems=()
    [ "$status" -eq 0 ] || problems+=("s_client exited with status $status")
    grep -q 'Verify return code: 0 (ok)' "$dir/client.out" ||
        problems+=("s_client did not report 'Verify return code: 0 (ok)'")
    local want_proto=TLSv1.3
    [ "$proto" = tls1_3 ] || want_proto=TLSv1.2
    grep -q "Protocol *: *$want_proto" "$dir/client.out" || problems+=("protocol is not $want_proto")
    # OpenSSL 3.0 prints the kind of signature, 3.5 and later the TLS scheme name.
    local want_sig=ECDSA
    if openssl_at_least_3_5; then
        want_sig=ecdsa_secp256r1_sha256
    fi
    grep -q "Peer signature type: $want_sig\$" "$dir/client.out" ||
        problems+=("no ECDSA signature from the server ('Peer signature type: $want_sig')")
    grep -q '^HTTP/1.0 200 ok' "$dir/client.out" || problems+=("no HTTP response from s_server -www")
    # The certificate the server sent must be the demo one.
    sed -n '/^-----BEGIN CERTIFICATE-----$/,/^-----END CERTIFICATE-----$/p' "$dir/client.out" \
        >"$dir/peer.crt"
    local want got
    want=$(plain_openssl x509 -in "$cert" -noout -fingerprint -sha256 2>/dev/null || true)
    got=$(plain_openssl x509 -in "$dir/peer.crt" -noout -fingerprint -sha256 2>/dev/null || true)
    [ -n "$want" ] && [ "$want" = "$got" ] || problems+=("server certificate is not $cert")
    [ "$server_status" -eq 0 ] || problems+=("s_server exited with status $server_status")

    if [ "${#problems[@]}" -ne 0 ]; then
        printf '%s\n' "${problems[@]}" >&2
        echo "--- s_client stderr:" >&2
        tail -n 20 "$dir/client.err" >&2
        echo "--- s_server stderr:" >&2
        tail -n 20 "$dir/server.err" >&2
        return 1
    fi
}

say "TLS handshakes with the token key (s_server through the provider, s_client without it)"
for proto in tls1_3 tls1_2; do
    if [ -n "$have_cert" ]; then
        check "$proto handshake, s_server -key '$p256_uri'" tls_handshake "$proto" || true
    else
        skip "$proto handshake" "no certificate"
    fi
done

# ---------------------------------------------------------------------------------------------
summary || exit 1
