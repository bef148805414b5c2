#!/usr/bin/env bash
# Benchmark of asynchronous signing (issue 11): TLS handshakes per second of a one-thread HAProxy
# serving with a token key, with and without `ssl-mode-async`.
#
#   1. A slow token: tests/faultmod/faultmod.c in front of SoftHSM2 sleeps 20 ms in every C_Sign
#      (a network HSM). Blocking, one thread can make at most 50 signatures, so 50 handshakes,
#      per second; with ssl-mode-async the provider signs on its worker threads while HAProxy
#      goes on (target: at least 20 times more).
#   2. A fast token: SoftHSM2 itself, no delay. The cost of the asynchronous path (a job pause,
#      a worker hand-off and an eventfd wake-up per signature) is the drop in handshakes per
#      second with ssl-mode-async (target: at most 5 %). HAProxy and its workers are pinned to
#      one CPU (the clients to another), so that the async path cannot gain from signing on a
#      second core; the script also reports the server's CPU time per handshake (HAProxy and
#      its workers, from /proc/PID/stat), which other load on the machine disturbs less.
#
# Each mode runs BENCH_ROUNDS times for BENCH_SECONDS, blocking and async interleaved, and the
# median is reported. The load comes from tests/programs/tls_clients.c (built here): one thread,
# BENCH_CONCURRENCY connections at once, each a new TCP connection and a full TLS 1.3 handshake
# with a P-256 token key, certificate chain not verified (the CertificateVerify signature still
# is), default provider only. Everything runs on 127.0.0.1; every run is bounded in time.
#
# Usage: bash scripts/bench-async.sh        (about 2 minutes with the defaults)
# Environment: BENCH_SECONDS (default 5), BENCH_ROUNDS (3), BENCH_CONCURRENCY (128),
# BENCH_WORKERS (pkcs11-module-async-workers for the slow token, default 64: 64 signatures of
# 20 ms in flight allow 3 200 per second), BENCH_DELAY_US (20000), BENCH_PIN (1: HAProxy and its
# workers on CPU 1, the clients on CPU 0; 0: no pinning), CARGO_TARGET_DIR,
# SOFTHSM2_MODULE, BENCH_KEEP_DIR=1 (keep the scratch directory).
# Needs: haproxy, openssl, softhsm2-util, pkcs11-tool, cc, libssl-dev, libp11-kit-dev, python3,
# cargo (scripts/install-deps.sh installs them).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$script_dir")
# shellcheck source=scripts/common.sh
. "$script_dir/common.sh"

seconds=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
concurrency=${BENCH_CONCURRENCY:-128}
workers=${BENCH_WORKERS:-64}
delay_us=${BENCH_DELAY_US:-20000}
readonly TOKEN_LABEL=bench
# Throw-away PINs for a token that lives only in the scratch directory.
readonly USER_PIN=1234
readonly SO_PIN=12345678

say() { printf '==> %s\n' "$*"; }
die() {
    printf 'bench-async.sh: error: %s\n' "$*" >&2
    exit 1
}

for tool in haproxy openssl softhsm2-util pkcs11-tool cc python3 timeout; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
        die "'$tool' not found; run scripts/install-deps.sh"
done
haproxy_bin=$(command -v haproxy || echo /usr/sbin/haproxy)
softhsm_module=$(find_softhsm_module) || die "libsofthsm2.so not found; set SOFTHSM2_MODULE"

work=$(mktemp -d "${TMPDIR:-/tmp}/pkcs11-ossl-bench.XXXXXX")
haproxy_pid=""
cleanup() {
    if [ -n "$haproxy_pid" ]; then
        kill "$haproxy_pid" 2>/dev/null || true
        wait "$haproxy_pid" 2>/dev/null || true
    fi
    if [ "${BENCH_KEEP_DIR:-0}" = 1 ]; then
        printf 'bench-async.sh: kept %s\n' "$work" >&2
    else
        rm -rf -- "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building the provider (cargo build --release --locked), the fault module and the client"
provider_so=$(build_provider "$repo") || die "cargo build --release failed"
cc -shared -fPIC -O2 -fvisibility=hidden -I/usr/include/p11-kit-1 -o "$work/faultmod.so" \
    "$repo/tests/faultmod/faultmod.c" -ldl -lpthread || die "cannot build the fault module"
cc -O2 -o "$work/tls_clients" "$repo/tests/programs/tls_clients.c" -lssl -lcrypto ||
    die "cannot build tests/programs/tls_clients.c"

say "token, key, certificate and key file in $work"
mkdir -p "$work/tokens"
export SOFTHSM2_CONF=$work/softhsm2.conf
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$work" >"$SOFTHSM2_CONF"
(umask 077 && printf '%s\n' "$USER_PIN" >"$work/pin")
softhsm2-util --init-token --free --label "$TOKEN_LABEL" --so-pin "$SO_PIN" --pin "$USER_PIN" \
    >"$work/init.log" 2>&1 || die "softhsm2-util --init-token failed"
pkcs11-tool --module "$softhsm_module" --token-label "$TOKEN_LABEL" --login --pin "$USER_PIN" \
    --keypairgen --key-type EC:prime256v1 --id 01 --label key >"$work/keygen.log" 2>&1 ||
    die "key generation failed"
pkcs11-tool --module "$softhsm_module" --token-label "$TOKEN_LABEL" --read-object --type pubkey \
    --id 01 --output-file "$work/key.pub.der" >/dev/null 2>&1 || die "cannot read the public key"
plain() { OPENSSL_CONF=/dev/null openssl "$@"; }
plain pkey -pubin -inform DER -in "$work/key.pub.der" -out "$work/key.pub.pem"
plain req -x509 -nodes -days 2 -subj "/CN=bench CA" -newkey ec \
    -pkeyopt ec_paramgen_curve:P-256 -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nsubjectAltName = DNS:localhost\n' \
    >"$work/server.ext"
plain x509 -new -subj /CN=localhost -force_pubkey "$work/key.pub.pem" -CA "$work/ca.crt" \
    -CAkey "$work/ca.key" -days 2 -extfile "$work/server.ext" -out "$work/server.crt"
# The PEM-URI key file (README, "Key files"), then certificate + key in one HAProxy crt file.
python3 - "pkcs11:token=$TOKEN_LABEL;object=key;type=private" >"$work/key.pem" <<'EOF'
import base64, sys, textwrap
def tlv(tag, value):
    n = len(value)
    size = bytes([n]) if n < 128 else bytes([0x80 | (n.bit_length() + 7) // 8]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + size + value
der = tlv(0x30, tlv(0x1A, b"PKCS#11 Provider URI v1.0") + tlv(0x0C, sys.argv[1].encode()))
print("-----BEGIN PKCS#11 PROVIDER URI-----")
print("\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64)))
print("-----END PKCS#11 PROVIDER URI-----")
EOF
cat "$work/server.crt" "$work/key.pem" >"$work/server.pem"

# openssl.cnf for token module $1 with $2 async workers.
write_cnf() {
    write_openssl_cnf "$work/openssl.cnf" "$provider_so" "$1" "$work/pin"
    # The quirks line is in the provider's section only.
    sed -i "s/^pkcs11-module-quirks = no-deinit\$/&\npkcs11-module-async-workers = $2/" \
        "$work/openssl.cnf"
    grep -q "^pkcs11-module-async-workers = $2\$" "$work/openssl.cnf" ||
        die "cannot set pkcs11-module-async-workers in $work/openssl.cnf"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts HAProxy (one thread; ssl-mode-async when $1 = async) and waits until it listens.
start_haproxy() {
    local mode=$1 deadline
    port=$(free_port)
    {
        printf 'global\n    nbthread 1\n    maxconn 8192\n'
        if [ "$mode" = async ]; then printf '    ssl-mode-async\n'; fi
        printf 'defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n'
        printf 'frontend https\n    bind 127.0.0.1:%s ssl crt %s\n' "$port" "$work/server.pem"
        printf '    http-request return status 200 content-type text/plain string "hello"\n'
    } >"$work/haproxy.cfg"
    OPENSSL_CONF=$work/openssl.cnf "${server_cpu[@]}" "$haproxy_bin" -db -f "$work/haproxy.cfg" \
        >"$work/haproxy.log" 2>&1 </dev/null &
    haproxy_pid=$!
    deadline=$(($(date +%s) + 15))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$haproxy_pid" 2>/dev/null || die "haproxy exited: $(tail -n 5 "$work/haproxy.log")"
        [ "$(date +%s)" -lt "$deadline" ] || die "haproxy does not listen on $port"
        sleep 0.1
    done
}

stop_haproxy() {
    kill "$haproxy_pid" 2>/dev/null || true
    wait "$haproxy_pid" 2>/dev/null || true
    haproxy_pid=""
}

clock_ticks=$(getconf CLK_TCK)

# HAProxy, with the provider's workers, on one CPU and the clients on another: the server has
# one core in both modes, so the async path cannot gain by signing on a second core, and the
# difference in handshakes per second is its cost (BENCH_PIN=0: no pinning).
server_cpu=(env)
client_cpu=(env)
if [ "${BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    server_cpu=(taskset -c 1)
    client_cpu=(taskset -c 0)
fi

# CPU time (user + system, all threads) HAProxy has used so far, in clock ticks.
haproxy_ticks() { awk '{print $14 + $15}' "/proc/$haproxy_pid/stat"; }

# One measurement of HAProxy in mode $1 (async or blocking): sets m_rate (handshakes per second)
# and m_cpu (the server's CPU time per handshake in microseconds, HAProxy and the provider's
# workers). Runs in this shell, so that the EXIT trap can stop a HAProxy left running.
measure() {
    local mode=$1 out before after handshakes
    start_haproxy "$mode"
    # Warm-up: the first handshake logs in and starts the workers.
    OPENSSL_CONF=/dev/null timeout 60 "$work/tls_clients" -V -n 8 "$port" "$work/ca.crt" \
        >/dev/null 2>&1 || die "warm-up handshakes failed ($mode)"
    before=$(haproxy_ticks)
    out=$(OPENSSL_CONF=/dev/null timeout $((seconds + 60)) "${client_cpu[@]}" "$work/tls_clients" -V \
        -t "$seconds" -c "$concurrency" "$port" "$work/ca.crt" 2>"$work/clients.err") ||
        die "the clients failed ($mode): $(head -n 5 "$work/clients.err")"
    after=$(haproxy_ticks)
    stop_haproxy
    handshakes=$(printf '%s\n' "$out" | sed -n 's/^ok: //p')
    m_rate=$(printf '%s\n' "$out" | sed -n 's/^handshakes_per_second: //p')
    m_cpu=$(awk -v t=$((after - before)) -v hz="$clock_ticks" -v n="$handshakes" \
        'BEGIN {printf "%.0f", t / hz / n * 1e6}')
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# Runs both modes $rounds times, interleaved; sets blocking_rate, async_rate, blocking_cpu and
# async_cpu (medians; CPU in microseconds per handshake).
compare() {
    local label=$1 b_rates=() a_rates=() b_cpus=() a_cpus=() b a b_cpu a_cpu
    for round in $(seq 1 "$rounds"); do
        measure blocking
        b=$m_rate b_cpu=$m_cpu
        measure async
        a=$m_rate a_cpu=$m_cpu
        printf '    %-10s round %d: blocking %7.1f/s (%5s us CPU each)   ssl-mode-async %7.1f/s (%5s us CPU each)\n' \
            "$label" "$round" "$b" "$b_cpu" "$a" "$a_cpu"
        b_rates+=("$b") a_rates+=("$a") b_cpus+=("$b_cpu") a_cpus+=("$a_cpu")
    done
    blocking_rate=$(median "${b_rates[@]}") async_rate=$(median "${a_rates[@]}")
    blocking_cpu=$(median "${b_cpus[@]}") async_cpu=$(median "${a_cpus[@]}")
}

say "slow token: ${delay_us} us per C_Sign, $workers workers, $concurrency connections, ${seconds}s x $rounds"
write_cnf "$work/faultmod.so" "$workers"
export FAULT_REAL_MODULE=$softhsm_module FAULT_DELAY_US=C_Sign:$delay_us
compare "slow token"
slow_blocking=$blocking_rate slow_async=$async_rate
unset FAULT_REAL_MODULE FAULT_DELAY_US

say "fast token: SoftHSM2, default workers, $concurrency connections, ${seconds}s x $rounds"
write_openssl_cnf "$work/openssl.cnf" "$provider_so" "$softhsm_module" "$work/pin"
compare "fast token"
fast_blocking=$blocking_rate fast_async=$async_rate

echo
printf 'load average at the end: %s (the machine has %s cores; other load lowers every figure)\n' \
    "$(cut -d ' ' -f 1-3 /proc/loadavg)" "$(nproc)"
printf 'server pinned: %s\n' "${server_cpu[*]}"
printf 'slow token (%s ms): blocking %.1f/s, ssl-mode-async %.1f/s: %.1fx (target >= 20x)\n' \
    "$((delay_us / 1000))" "$slow_blocking" "$slow_async" \
    "$(awk -v a="$slow_async" -v b="$slow_blocking" 'BEGIN {print a / b}')"
printf 'fast token: blocking %.1f/s, ssl-mode-async %.1f/s: %.1f %% fewer handshakes per second with async (target <= 5 %%)\n' \
    "$fast_blocking" "$fast_async" \
    "$(awk -v a="$fast_async" -v b="$fast_blocking" 'BEGIN {print (1 - a / b) * 100}')"
printf 'fast token: server CPU per handshake %s us blocking, %s us async: %.1f %% more with async\n' \
    "$blocking_cpu" "$async_cpu" \
    "$(awk -v a="$async_cpu" -v b="$blocking_cpu" 'BEGIN {print (a / b - 1) * 100}')"
