#!/usr/bin/env bash
# One cell of the compatibility matrix (scripts/matrix.sh): one token stack, checked with the
# provider and the `openssl` of the system this runs on (the host, or a root in a chroot).
#
# Usage: cell.sh TOKEN OUTDIR
#   TOKEN   softhsm | opencryptoki | tpm2 | p11kit-remote
#   OUTDIR  emptied, then filled with results.tsv, logs/ and the token stack's files
# Environment:
#   MATRIX_PROVIDER  the built libpkcs11_ossl.so (required)
#   MATRIX_SRC       the repository (tests/programs/fork_sign.c; `cargo test` for MATRIX_SUITE)
#   MATRIX_SUITE=1   also run the CLI integration tests (`cargo test --locked --test provider`)
#   MATRIX_IN_ROOT=1 running in a chroot of scripts/matrix.sh (set by scripts/matrix/inroot.sh)
#
# Checks, each PASS, FAIL or SKIP with a reason (results.tsv: STATUS, COUNT, NAME, DETAIL):
#   key-<type>        a key of each type the token offers is generated on it (pkcs11-tool)
#   sign-<type>       a signature through the provider verifies with the default provider and the
#                     public key pkcs11-tool read from the token, and fails on a changed message
#   pss-<rsa type>    the same with RSA-PSS
#   pubout-<type>     `openssl pkey -pubout` through the provider equals that public key
#   store-keys        `storeutl -keys` lists every key; store-cert: a certificate written to the
#                     token is listed by `storeutl -certs`
#   tls13-<kind>      `s_server` with the token key, `s_client` (default provider) verifies
#   wrong-pin         a wrong PIN fails with CKR_PIN_INCORRECT after exactly one C_Login
#                     (counted by OpenSC's pkcs11-spy), the token's PIN flags are shown, and the
#                     right PIN works afterwards
#   fork              tests/programs/fork_sign.c: threads sign, the process forks, the child signs
#   quirk-*           a token quirk the provider works around (tpm2: ec-point-short-length)
#   cli-suite         (MATRIX_SUITE=1) the CLI integration tests, with their own skips
# What the token lacks (no mechanism, a key type it cannot make, a signature it cannot make even
# for pkcs11-tool) is a SKIP with the token's own answer; what fails through the provider only is
# a FAIL. Exit status 1 when anything failed.
set -euo pipefail

token=${1:?usage: cell.sh TOKEN OUTDIR}
out=${2:?usage: cell.sh TOKEN OUTDIR}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
provider=${MATRIX_PROVIDER:?MATRIX_PROVIDER must name the built libpkcs11_ossl.so}
src=${MATRIX_SRC:-$(dirname "$(dirname "$script_dir")")}

# Every cell runs in its own mount namespace: token stacks mount private copies over fixed
# paths (opencryptoki), and all of it goes away with the cell. On the host the new namespace's
# mounts are made private, so nothing propagates back; inside a root (MATRIX_IN_ROOT=1) the
# chroot already runs in a private namespace (scripts/matrix/inroot.sh), whose propagation is
# kept (a chroot cannot change that of its `/`).
if [ "${MATRIX_CELL_NS:-}" != yes ]; then
    propagation=private
    if [ "${MATRIX_IN_ROOT:-}" = 1 ]; then
        propagation=unchanged
    fi
    exec unshare --mount --propagation "$propagation" -- env MATRIX_CELL_NS=yes bash "$0" "$@"
fi

say() { printf '%s\n' "$*"; }
die() {
    printf 'cell %s: error: %s\n' "$token" "$*" >&2
    exit 2
}

case $token in
softhsm | opencryptoki | tpm2 | p11kit-remote) ;;
*) die "unknown token '$token' (softhsm, opencryptoki, tpm2, p11kit-remote)" ;;
esac
[ -f "$provider" ] || die "no provider at $provider"

rm -rf "$out"
mkdir -p "$out/logs"
cell_dir=$out
results=$out/results.tsv
: >"$results"
log_number=0
passed=0
failed=0
skipped=0

# record STATUS NAME DETAIL [COUNT]
record() {
    local status=$1 name=$2 detail=${3:-} count=${4:-1}
    printf '%s\t%s\t%s\t%s\n' "$status" "$count" "$name" "${detail//$'\n'/ }" >>"$results"
    case $status in
    PASS) passed=$((passed + count)) ;;
    FAIL) failed=$((failed + count)) ;;
    SKIP) skipped=$((skipped + count)) ;;
    esac
    if [ -n "$detail" ]; then
        printf '  %-4s  %-22s %s\n' "$status" "$name" "$detail"
    else
        printf '  %-4s  %s\n' "$status" "$name"
    fi
}

# shellcheck source=scripts/matrix/tokens.sh
. "$script_dir/tokens.sh"

# token_env COMMAND...: COMMAND with the token stack's environment (exported once the stack
# runs; before that, `_start` passes it itself).
token_env() {
    env "${TOKEN_ENV[@]}" "$@"
}

# logged NAME COMMAND...: runs COMMAND (a program or one of the functions below, which bound
# their programs' run time) with stdin closed and its output in logs/NN-NAME.{out,err};
# last_log names them without the extension.
last_log=""
logged() {
    local name=$1
    shift
    log_number=$((log_number + 1))
    last_log=$out/logs/$(printf '%02d' "$log_number")-$name
    printf '%s\n' "$*" >"$last_log.cmd"
    "$@" >"$last_log.out" 2>"$last_log.err" </dev/null
}

# The first line of the last logged command's stderr that says something (for reasons).
last_error() {
    grep -v -e '^\s*$' -e '^Using ' "$last_log.err" 2>/dev/null | head -n 3 | tr '\n' ' ' |
        cut -c1-300
}

plain_openssl() { OPENSSL_CONF=/dev/null timeout 120 openssl "$@"; }
tok_tool() {
    OPENSSL_CONF=/dev/null timeout 120 pkcs11-tool --module "$TOKEN_MODULE" \
        --token-label "$TOKEN_LABEL" "$@"
}
tok_tool_login() { tok_tool --login --pin "$USER_PIN" "$@"; }

# write_cnf FILE [key = value lines...]: the provider's openssl.cnf for this token.
write_cnf() {
    local file=$1 line
    shift
    {
        printf 'openssl_conf = openssl_init\n\n[openssl_init]\nproviders = provider_sect\n\n'
        printf '[provider_sect]\ndefault = default_sect\npkcs11 = pkcs11_sect\n\n'
        printf '[default_sect]\nactivate = 1\n\n[pkcs11_sect]\nmodule = %s\n' "$provider"
        printf 'pkcs11-module-path = %s\n' "$TOKEN_MODULE"
        printf 'pkcs11-module-token-pin = file:%s\n' "$out/pin.txt"
        for line in "$@"; do
            printf '%s\n' "$line"
        done
        printf 'activate = 1\n'
    } >"$file"
}

cnf=$out/openssl.cnf
p11_openssl() {
    OPENSSL_CONF=$cnf PKCS11_PROVIDER_DEBUG="file:$out/provider.log,level:2" timeout 120 \
        openssl "$@"
}

uri() { printf 'pkcs11:token=%s;%s\n' "$TOKEN_LABEL" "$1"; }

say "cell $token: $(openssl version) ($(command -v openssl)), provider $provider"
stack_started=$(date +%s)
if ! "${token}_start" >"$out/start.log" 2>&1; then
    cat "$out/start.log"
    record FAIL start "could not start the $token stack (log: $out/start.log)"
    "${token}_stop" >/dev/null 2>&1 || true
    printf 'cell %s: %d passed, %d failed, %d skipped\n' "$token" "$passed" "$failed" "$skipped"
    exit 1
fi
stop_stack() { "${token}_stop" >/dev/null 2>&1 || true; }
trap stop_stack EXIT
if [ "${#TOKEN_ENV[@]}" -gt 0 ]; then
    export "${TOKEN_ENV[@]?}"
fi
say "  stack: $TOKEN_WHAT (started in $(($(date +%s) - stack_started)) s)"
say "  module: $TOKEN_MODULE"
printf '%s\n' "$USER_PIN" >"$out/pin.txt"
write_cnf "$cnf"

# ---------------------------------------------------------------------------------------------
# Mechanisms, key generation, public keys

logged mechanisms tok_tool -M || true
cp "$last_log.out" "$out/mechanisms.txt"
# has_mechanism NAME HEX: pkcs11-tool prints a mechanism by name, or as mechtype-0xHEX when its
# version does not know the name.
has_mechanism() {
    grep -qiE "^\s*($1|mechtype-0x0*$2)[ ,]" "$out/mechanisms.txt"
}

# type -> "pkcs11-tool key spec;keygen names;keygen code;sign names;sign code;kind;id"
declare -A KEY_SPEC=(
    [rsa2048]="rsa:2048;RSA-PKCS-KEY-PAIR-GEN;0;RSA-PKCS;1;rsa;01"
    [rsa3072]="rsa:3072;RSA-PKCS-KEY-PAIR-GEN;0;RSA-PKCS;1;rsa;02"
    [p256]="EC:prime256v1;(EC|ECDSA)-KEY-PAIR-GEN;1040;ECDSA;1041;ec;03"
    [p384]="EC:secp384r1;(EC|ECDSA)-KEY-PAIR-GEN;1040;ECDSA;1041;ec;04"
    [p521]="EC:secp521r1;(EC|ECDSA)-KEY-PAIR-GEN;1040;ECDSA;1041;ec;05"
    [ed25519]="EC:edwards25519;EC-EDWARDS-KEY-PAIR-GEN;1055;EDDSA;1057;ed;06"
    [ed448]="EC:edwards448;EC-EDWARDS-KEY-PAIR-GEN;1055;EDDSA;1057;ed;07"
)
readonly KEY_TYPES=(rsa2048 rsa3072 p256 p384 p521 ed25519 ed448)
keys=()

spec_field() {
    local IFS=';'
    # shellcheck disable=SC2206
    local fields=(${KEY_SPEC[$1]})
    printf '%s\n' "${fields[$2]}"
}

# The SubjectPublicKeyInfo of an EC/EdDSA key from its CKA_EC_PARAMS and CKA_EC_POINT as
# `pkcs11-tool -O` prints them (for keys pkcs11-tool cannot export itself). The point may be a
# DER OCTET STRING, the bare point, or an OCTET STRING whose length of 128-255 is written in one
# byte (tpm2-pkcs11's P-521 points): the public key itself is the same, and this reference
# must not depend on the provider's parser.
spki_from_listing() {
    local id=$1 listing=$2 outfile=$3
    python3 - "$id" "$listing" "$outfile" <<'PY'
import sys
want, listing, outfile = sys.argv[1].lower(), open(sys.argv[2]).read(), sys.argv[3]
blocks, cur = [], None
for line in listing.splitlines():
    if not line.startswith(" "):
        cur = {"head": line}
        blocks.append(cur)
    elif cur is not None and ":" in line:
        key, _, value = line.strip().partition(":")
        cur[key.strip()] = value.strip().split(" ")[0]
def der(tag, body):
    n = len(body)
    if n < 128:
        size = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        size = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + size + body
for b in blocks:
    if not b["head"].startswith("Public Key Object") or b.get("ID", "").lower() != want:
        continue
    params, point = bytes.fromhex(b["EC_PARAMS"]), bytes.fromhex(b["EC_POINT"])
    if point[0] == 0x04 and len(point) > 2:
        if point[1] < 0x80 and point[1] == len(point) - 2:
            point = point[2:]
        elif point[1] == 0x81 and point[2] == len(point) - 3:
            point = point[3:]
        elif point[1] == len(point) - 2:
            point = point[2:]
    oids = {b"\x13\x0cedwards25519": bytes.fromhex("06032b6570"),
            b"\x13\x0aedwards448": bytes.fromhex("06032b6571")}
    params = oids.get(params, params)
    if params in (bytes.fromhex("06032b6570"), bytes.fromhex("06032b6571")):
        alg = der(0x30, params)
    else:
        alg = der(0x30, bytes.fromhex("06072a8648ce3d0201") + params)
    open(outfile, "wb").write(der(0x30, alg + der(0x03, b"\x00" + point)))
    sys.exit(0)
sys.exit(1)
PY
}

# read_public_key TYPE ID: <out>/TYPE.pub.pem from the token's public key object (pkcs11-tool).
read_public_key() {
    local type=$1 id=$2 raw=$out/$1.pub.raw pem=$out/$1.pub.pem format=DER
    if logged "read-$type" tok_tool --read-object --type pubkey --id "$id" -o "$raw" &&
        [ -s "$raw" ]; then
        if grep -q -- '-----BEGIN' "$raw" 2>/dev/null; then
            format=PEM
        fi
    else
        logged "list-$type" tok_tool -O --type pubkey || return 1
        spki_from_listing "$id" "$last_log.out" "$raw" || return 1
    fi
    plain_openssl pkey -pubin -inform "$format" -in "$raw" -out "$pem" 2>>"$out/logs/pubkeys.err"
}

# The token itself signs with TYPE (pkcs11-tool --sign, no provider): tells a key type the token
# cannot use from a provider failure.
token_can_sign() {
    local type=$1 id=$2 kind=$3 input=$out/selftest.in
    printf 'token self-test' >"$input"
    case $kind in
    rsa) logged "selftest-$type" tok_tool_login --sign -m RSA-PKCS --id "$id" -i "$input" \
        -o "$out/selftest.sig" ;;
    ec) plain_openssl dgst -sha256 -binary -out "$input" "$out/message.txt" &&
        logged "selftest-$type" tok_tool_login --sign -m ECDSA --id "$id" -i "$input" \
            -o "$out/selftest.sig" ;;
    # A short input: pkcs11-tool signs longer ones in parts, which EdDSA tokens refuse.
    ed) logged "selftest-$type" tok_tool_login --sign -m EDDSA --id "$id" -i "$input" \
        -o "$out/selftest.sig" ;;
    esac
}

python3 -c 'print("\n".join("pkcs11-ossl matrix message, line %02d" % i for i in range(32)))' \
    >"$out/message.txt"
cp "$out/message.txt" "$out/tampered.txt"
printf 'x' >>"$out/tampered.txt"

for type in "${KEY_TYPES[@]}"; do
    spec=$(spec_field "$type" 0)
    gen_names=$(spec_field "$type" 1)
    gen_code=$(spec_field "$type" 2)
    kind=$(spec_field "$type" 5)
    id=$(spec_field "$type" 6)
    if ! has_mechanism "$gen_names" "$gen_code"; then
        record SKIP "key-$type" "the module lists no $gen_names (mechanism 0x$gen_code)"
        continue
    fi
    if ! logged "keygen-$type" tok_tool_login --keypairgen --key-type "$spec" --id "$id" \
        --label "$type"; then
        why=$(last_error)
        if [ -n "$TOKEN_IMPORT" ] && "$TOKEN_IMPORT" "$type" "$id" "$type" \
            >>"$out/logs/import.log" 2>&1; then
            record PASS "key-$type" "imported ($TOKEN_IMPORT): pkcs11-tool cannot generate it: $why"
        else
            record SKIP "key-$type" "cannot put a $type key on the token: $why"
            continue
        fi
    else
        record PASS "key-$type"
    fi
    if ! read_public_key "$type" "$id"; then
        record SKIP "pubkey-$type" "pkcs11-tool cannot read the public key back: $(last_error)"
        continue
    fi
    keys+=("$type")
done

# ---------------------------------------------------------------------------------------------
# Signatures, public keys, store

# verify_signature TYPE KIND SIG [dgst -sigopt options...]: the default provider accepts SIG for
# message.txt with TYPE's public key, and rejects it for tampered.txt.
verify_signature() {
    local type=$1 kind=$2 sig=$3 pub=$out/$1.pub.pem message
    shift 3
    local options=()
    while [ "$#" -gt 0 ]; do
        options+=(-sigopt "$1")
        shift
    done
    for message in message tampered; do
        local ok=0
        if [ "$kind" = ed ]; then
            plain_openssl pkeyutl -verify -pubin -inkey "$pub" -rawin \
                -in "$out/$message.txt" -sigfile "$sig" >/dev/null 2>&1 || ok=$?
        else
            plain_openssl dgst -sha256 -verify "$pub" "${options[@]}" -signature "$sig" \
                "$out/$message.txt" >/dev/null 2>&1 || ok=$?
        fi
        if [ "$message" = message ] && [ "$ok" -ne 0 ]; then
            return 1
        fi
        if [ "$message" = tampered ] && [ "$ok" -eq 0 ]; then
            return 2
        fi
    done
}

for type in "${keys[@]}"; do
    kind=$(spec_field "$type" 5)
    id=$(spec_field "$type" 6)
    sign_names=$(spec_field "$type" 3)
    sign_code=$(spec_field "$type" 4)
    key_uri=$(uri "object=$type;type=private")
    if logged "pubout-$type" p11_openssl pkey -in "$key_uri" -pubout -out "$out/$type.pubout.pem" &&
        cmp -s <(plain_openssl pkey -pubin -in "$out/$type.pubout.pem" -outform DER) \
            <(plain_openssl pkey -pubin -in "$out/$type.pub.pem" -outform DER); then
        record PASS "pubout-$type"
    else
        record FAIL "pubout-$type" "pkey -pubout through the provider is not the token's public key: $(last_error)"
    fi
    if ! has_mechanism "$sign_names" "$sign_code"; then
        record SKIP "sign-$type" "the module lists no $sign_names (mechanism 0x$sign_code)"
        continue
    fi
    if ! token_can_sign "$type" "$id" "$kind"; then
        record SKIP "sign-$type" "the token itself cannot sign with it (pkcs11-tool --sign: $(last_error))"
        continue
    fi
    sig=$out/$type.sig
    rm -f "$sig"
    if [ "$kind" = ed ]; then
        logged "sign-$type" p11_openssl pkeyutl -sign -rawin -inkey "$key_uri" \
            -in "$out/message.txt" -out "$sig" || true
    else
        logged "sign-$type" p11_openssl dgst -sha256 -sign "$key_uri" -out "$sig" \
            "$out/message.txt" || true
    fi
    status=0
    [ -s "$sig" ] && verify_signature "$type" "$kind" "$sig" || status=$?
    case $status in
    0) record PASS "sign-$type" ;;
    2) record FAIL "sign-$type" "the signature also verifies for a changed message" ;;
    *) record FAIL "sign-$type" "no signature that verifies: $(last_error)" ;;
    esac
    if [ "$kind" = rsa ]; then
        if ! has_mechanism RSA-PKCS-PSS d; then
            record SKIP "pss-$type" "the module lists no RSA-PKCS-PSS (mechanism 0xd)"
        else
            rm -f "$sig"
            logged "pss-$type" p11_openssl dgst -sha256 -sign "$key_uri" \
                -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -out "$sig" \
                "$out/message.txt" || true
            status=0
            [ -s "$sig" ] && verify_signature "$type" rsa "$sig" rsa_padding_mode:pss \
                rsa_pss_saltlen:digest || status=$?
            case $status in
            0) record PASS "pss-$type" ;;
            *) record FAIL "pss-$type" "no RSA-PSS signature that verifies: $(last_error)" ;;
            esac
        fi
    fi
done

if [ "${#keys[@]}" -eq 0 ]; then
    record FAIL store-keys "no key could be put on the token: nothing to check"
else
    if logged store-keys p11_openssl storeutl -keys "pkcs11:token=$TOKEN_LABEL"; then
        found=$(sed -n 's/^Total found: //p' "$last_log.out")
        if [ "${found:-0}" = "${#keys[@]}" ]; then
            record PASS store-keys "$found keys: ${keys[*]}"
        else
            record FAIL store-keys "storeutl -keys found ${found:-0}, the token holds ${#keys[@]} (${keys[*]})"
        fi
    else
        record FAIL store-keys "storeutl -keys failed: $(last_error)"
    fi
fi

# ---------------------------------------------------------------------------------------------
# Certificates and TLS 1.3: the first key of each kind that signs.

signed_ok() { grep -qP "^PASS\t\d+\tsign-$1\t" "$results"; }

# A self-signed certificate made through the provider for TYPE's key: <out>/TYPE.crt.
make_cert() {
    local type=$1
    logged "cert-$type" p11_openssl req -new -x509 -key "$(uri "object=$type;type=private")" \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 2 -out "$out/$type.crt" &&
        plain_openssl verify -CAfile "$out/$type.crt" "$out/$type.crt" >/dev/null 2>&1
}

# tls13 TYPE: s_server through the provider with TYPE's key, s_client with the default provider.
tls13() {
    local type=$1 dir=$out/tls-$1 port="" line fd server_pid client_status=0
    mkdir -p "$dir"
    mkfifo "$dir/server.fifo"
    OPENSSL_CONF=$cnf token_env timeout 60 openssl s_server -accept 127.0.0.1:0 -naccept 1 \
        -www -tls1_3 -key "$(uri "object=$type;type=private")" -cert "$out/$type.crt" \
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
    cat <&"$fd" >>"$dir/server.out" &
    local drain=$!
    exec {fd}<&-
    if [ -z "$port" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        wait "$drain" 2>/dev/null || true
        last_log=$dir/server
        return 1
    fi
    printf 'GET / HTTP/1.0\r\n\r\n' | OPENSSL_CONF=/dev/null timeout 30 openssl s_client \
        -connect "127.0.0.1:$port" -tls1_3 -servername localhost -CAfile "$out/$type.crt" \
        -verify_return_error -verify_hostname localhost -ign_eof \
        >"$dir/client.out" 2>"$dir/client.err" || client_status=$?
    wait "$server_pid" 2>/dev/null || true
    wait "$drain" 2>/dev/null || true
    last_log=$dir/client
    [ "$client_status" -eq 0 ] &&
        grep -q 'Verify return code: 0 (ok)' "$dir/client.out" &&
        grep -qE 'Protocol *: *TLSv1.3' "$dir/client.out" &&
        grep -q '^HTTP/1.0 200 ok' "$dir/client.out"
}

cert_type=""
for kind in ec rsa ed; do
    for type in "${keys[@]}"; do
        if [ "$(spec_field "$type" 5)" != "$kind" ] || ! signed_ok "$type"; then
            continue
        fi
        if ! make_cert "$type"; then
            record FAIL "tls13-$type" "no certificate for the key (req -x509): $(last_error)"
            break
        fi
        [ -n "$cert_type" ] || cert_type=$type
        if tls13 "$type"; then
            record PASS "tls13-$type"
        else
            record FAIL "tls13-$type" "handshake failed: $(last_error)"
        fi
        break
    done
done

if [ -z "$cert_type" ]; then
    record SKIP store-cert "no key signed a certificate"
else
    plain_openssl x509 -in "$out/$cert_type.crt" -outform DER -out "$out/$cert_type.crt.der"
    cert_id=$(spec_field "$cert_type" 6)
    if ! logged write-cert tok_tool_login --write-object "$out/$cert_type.crt.der" --type cert \
        --id "$cert_id" --label "$cert_type"; then
        record SKIP store-cert "the token refuses a certificate object: $(last_error)"
    elif logged store-certs p11_openssl storeutl -certs "pkcs11:token=$TOKEN_LABEL" &&
        [ "$(sed -n 's/^Total found: //p' "$last_log.out")" = 1 ]; then
        record PASS store-cert
    else
        record FAIL store-cert "storeutl -certs does not list the one certificate: $(last_error)"
    fi
fi

# ---------------------------------------------------------------------------------------------
# A wrong PIN: refused after exactly one C_Login, and the token still takes the right one.

pin_key=""
for type in p256 rsa2048 "${keys[@]}"; do
    if signed_ok "$type"; then
        pin_key=$type
        break
    fi
done
spy=$(first_file "/usr/lib/$multiarch/pkcs11-spy.so" "/usr/lib/$multiarch/pkcs11/pkcs11-spy.so" || true)
if [ -z "$pin_key" ]; then
    record SKIP wrong-pin "no key signed"
elif [ -z "$spy" ]; then
    record FAIL wrong-pin "OpenSC's pkcs11-spy.so is missing (apt-get install opensc-pkcs11)"
else
    printf '%s\n' "$WRONG_PIN" >"$out/wrong-pin.txt"
    wrong_cnf=$out/wrong-pin.cnf
    sed -e "s|^pkcs11-module-path = .*|pkcs11-module-path = $spy|" \
        -e "s|^pkcs11-module-token-pin = .*|pkcs11-module-token-pin = file:$out/wrong-pin.txt|" \
        "$cnf" >"$wrong_cnf"
    rm -f "$out/spy.log"
    status=0
    log_number=$((log_number + 1))
    last_log=$out/logs/$(printf '%02d' "$log_number")-wrong-pin
    token_env PKCS11SPY="$TOKEN_MODULE" PKCS11SPY_OUTPUT="$out/spy.log" OPENSSL_CONF="$wrong_cnf" \
        PKCS11_PROVIDER_DEBUG="file:$out/provider.log,level:2" timeout 120 openssl dgst \
        -sha256 -sign "$(uri "object=$pin_key;type=private")" -out "$out/wrong-pin.sig" \
        "$out/message.txt" >"$last_log.out" 2>"$last_log.err" </dev/null || status=$?
    wrong_log=$last_log
    logins=$(grep -c 'C_Login$' "$out/spy.log" 2>/dev/null || true)
    incorrect=$(grep -c 'CKR_PIN_INCORRECT' "$out/spy.log" 2>/dev/null || true)
    logged token-flags tok_tool -T || true
    flags=$(sed -n 's/^ *token flags *: *//p' "$last_log.out" | head -n 1)
    case $flags in
    *"PIN count low"* | *"final try"* | *"PIN locked"*) counter="the token counts it: $flags" ;;
    *) counter="token flags after it: $flags" ;;
    esac
    if [ "$status" -eq 0 ]; then
        record FAIL wrong-pin "signing succeeded with a wrong PIN"
    elif [ "${logins:-0}" != 1 ] || [ "${incorrect:-0}" -lt 1 ]; then
        record FAIL wrong-pin "expected one C_Login answered CKR_PIN_INCORRECT, the spy log shows ${logins:-0} C_Login, ${incorrect:-0} CKR_PIN_INCORRECT"
    elif ! grep -q 'CKR_PIN_INCORRECT' "$wrong_log.err"; then
        last_log=$wrong_log
        record FAIL wrong-pin "the error does not name CKR_PIN_INCORRECT: $(last_error)"
    elif ! logged right-pin p11_openssl dgst -sha256 -sign "$(uri "object=$pin_key;type=private")" \
        -out "$out/right-pin.sig" "$out/message.txt"; then
        record FAIL wrong-pin "the right PIN no longer works afterwards: $(last_error)"
    else
        record PASS wrong-pin "one C_Login, CKR_PIN_INCORRECT; $counter; the right PIN works afterwards"
    fi
fi

# ---------------------------------------------------------------------------------------------
# fork: threads sign, the process forks, the child signs (tests/programs/fork_sign.c).

fork_key=$pin_key
if [ -z "$fork_key" ]; then
    record SKIP fork "no key signed"
elif ! cc -Wall -o "$out/fork_sign" "$src/tests/programs/fork_sign.c" -lssl -lcrypto -lpthread \
    2>"$out/logs/fork-build.err"; then
    record FAIL fork "cannot compile tests/programs/fork_sign.c: $(head -n 3 "$out/logs/fork-build.err" | tr '\n' ' ')"
else
    status=0
    logged fork env OPENSSL_CONF="$cnf" PKCS11_PROVIDER_DEBUG="file:$out/provider.log,level:2" \
        "$out/fork_sign" "$(uri "object=$fork_key;type=private")" "$out/$fork_key.pub.pem" \
        "$out/message.txt" "$out/fork-child.sig" 4 || status=$?
    if [ "$status" -eq 0 ]; then
        record PASS fork "$fork_key, 4 threads sign through the fork, the child signs"
    elif [ -n "${TOKEN_FORK_UNSAFE:-}" ] && [ "$status" -eq 5 ] &&
        grep -q 'quirk fork-unsafe' "$last_log.err"; then
        # Exit 5: only the child failed; the parent's threads signed through the fork.
        record SKIP fork "$TOKEN_FORK_UNSAFE"
        record PASS quirk-fork-unsafe "the child is refused with a clear error; the parent's threads keep signing"
    else
        record FAIL fork "fork_sign exit status $status (4: a parent thread failed, 5: the child): $(last_error)"
    fi
fi

# ---------------------------------------------------------------------------------------------
# Token quirks the provider works around.

if [ "$token" = tpm2 ] && [[ " ${keys[*]} " == *" p521 "* ]]; then
    # tpm2-pkcs11 writes the P-521 CKA_EC_POINT with a one-byte length of 133 (04 85 04 ...).
    # With the automatic quirk ec-point-short-length the provider reads the key; `none` shows
    # whether it is still needed.
    # (`pkcs11-tool -O` lists every public key whatever --id says: pick the block of id 05.)
    point=$(tok_tool -O --type pubkey 2>/dev/null | awk '
        /^[^ ]/ { p = "" } /^ *EC_POINT:/ { p = $2 } /^ *ID: *05$/ && p != "" { print p; exit }')
    if grep -qP "^PASS\t\d+\tpubout-p521\t" "$results"; then
        none_cnf=$out/no-quirks.cnf
        # The provider section (the last one) gets `pkcs11-module-quirks = none`.
        python3 - "$cnf" "$none_cnf" <<'PY'
import sys
text = open(sys.argv[1]).read()
head, sep, tail = text.rpartition("activate = 1\n")
open(sys.argv[2], "w").write(head + "pkcs11-module-quirks = none\n" + sep + tail)
PY
        if token_env OPENSSL_CONF="$none_cnf" timeout 60 openssl pkey \
            -in "$(uri "object=p521;type=private")" -pubout >/dev/null 2>&1; then
            needed="the key loads without it too (tpm2-pkcs11 fixed?)"
        else
            needed="without it (quirks = none) the key has no public key"
        fi
        record PASS quirk-ec-point-short-length "CKA_EC_POINT ${point:0:8}...: with the quirk the P-521 key loads; $needed"
    else
        record FAIL quirk-ec-point-short-length "the P-521 key does not load (CKA_EC_POINT ${point:0:8}...)"
    fi
fi

# ---------------------------------------------------------------------------------------------
# The CLI integration tests (SoftHSM2 tokens of their own).

if [ "${MATRIX_SUITE:-0}" = 1 ]; then
    skip_log=$out/suite-skips.txt
    : >"$skip_log"
    suite_log=$out/logs/cli-suite.log
    suite_status=0
    (cd "$src" && P11RS_SKIP_LOG=$skip_log timeout 1800 cargo test --locked --test provider) \
        >"$suite_log" 2>&1 || suite_status=$?
    summary=$(grep -E '^test result:' "$suite_log" | tail -n 1)
    suite_passed=$(sed -n 's/^test result: .*[^0-9]\([0-9][0-9]*\) passed.*/\1/p' <<<"$summary")
    suite_failed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) failed.*/\1/p' <<<"$summary")
    if [ -z "$summary" ]; then
        record FAIL cli-suite "cargo test did not run (exit status $suite_status): $(tail -n 5 "$suite_log" | tr '\n' ' ')"
    else
        while IFS= read -r line; do
            name=${line#SKIP }
            record SKIP "cli: ${name%%: *}" "${name#*: }"
        done <"$skip_log"
        # A test that skipped a part still ran the rest; one that skipped all of it is counted
        # as skipped, not passed (the skip lines above).
        whole=$(grep -vc ' part): ' "$skip_log" || true)
        record PASS cli-suite "cargo test --test provider: $summary" $((suite_passed - whole))
        if [ "${suite_failed:-0}" -gt 0 ] || [ "$suite_status" -ne 0 ]; then
            failures=$(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$suite_log" | tr '\n' ' ')
            record FAIL cli-suite "failed: ${failures:-exit status $suite_status} (log: $suite_log)" \
                "${suite_failed:-1}"
        fi
    fi
fi

printf 'cell %s: %d passed, %d failed, %d skipped\n' "$token" "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
