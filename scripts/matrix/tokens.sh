# shellcheck shell=bash
# The token stacks of scripts/matrix.sh (sourced by cell.sh, not run). Each one is started in
# the cell's private directory ($cell_dir) and mount namespace and stopped at the end; all come
# from Debian packages. `<token>_start` sets:
#   TOKEN_MODULE   the PKCS#11 module the provider and pkcs11-tool load
#   TOKEN_LABEL    the token's label (every URI names it)
#   TOKEN_ENV      NAME=value settings every token client needs (array)
#   TOKEN_WHAT     one line saying what the stack is (versions), for the report
# and may set TOKEN_IMPORT (a function that puts a key type pkcs11-tool cannot generate on the
# token) and TOKEN_FORK_UNSAFE (why a forked child cannot use the token: the provider's quirk
# fork-unsafe applies). `<token>_stop` stops what `_start` started. Uses from cell.sh: cell_dir,
# token_env, plain_openssl.
# shellcheck disable=SC2034,SC2154

readonly USER_PIN=1234
readonly WRONG_PIN=4321
readonly SO_PIN=87654321

TOKEN_MODULE=""
TOKEN_LABEL=matrix
TOKEN_ENV=()
TOKEN_WHAT=""
TOKEN_IMPORT=""
TOKEN_FORK_UNSAFE=""
started_pids=()

# The first existing file among the arguments.
first_file() {
    local candidate
    for candidate in "$@"; do
        if [ -f "$candidate" ]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

multiarch=$(gcc -print-multiarch 2>/dev/null || printf 'x86_64-linux-gnu')
readonly multiarch

package_version() {
    dpkg-query -W -f='${Version}' "$1" 2>/dev/null || printf 'unknown'
}

# A TCP port P on 127.0.0.1 such that P and P+1 are free now (tcti-swtpm expects swtpm's
# control channel on the port after the command port).
free_port_pair() {
    python3 - <<'PY'
import socket
for _ in range(100):
    a = socket.socket()
    a.bind(("127.0.0.1", 0))
    port = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", port + 1))
    except OSError:
        continue
    finally:
        a.close()
        b.close()
    print(port)
    break
PY
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
    local deadline=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.1
    done
}

# Stops the processes this cell started (by pid, never by name).
stop_started() {
    local pid
    for pid in "${started_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${started_pids[@]}"; do
        local waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 30 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    started_pids=()
}

# ---------------------------------------------------------------------------------------------
# SoftHSM2: a file-backed token in the cell directory.

softhsm_module() {
    first_file /usr/lib/softhsm/libsofthsm2.so "/usr/lib/$multiarch/softhsm/libsofthsm2.so"
}

softhsm_token_dir() {
    local dir=$1
    mkdir -p "$dir/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
        "$dir/tokens" >"$dir/softhsm2.conf"
    SOFTHSM2_CONF=$dir/softhsm2.conf softhsm2-util --init-token --free --label "$TOKEN_LABEL" \
        --pin "$USER_PIN" --so-pin "$SO_PIN" >"$dir/init.log" 2>&1
}

softhsm_start() {
    TOKEN_MODULE=$(softhsm_module) || return 1
    softhsm_token_dir "$cell_dir/softhsm" || return 1
    TOKEN_ENV=("SOFTHSM2_CONF=$cell_dir/softhsm/softhsm2.conf")
    TOKEN_WHAT="SoftHSM2 $(package_version softhsm2), file object store"
    TOKEN_IMPORT=softhsm_import
}

# OpenSC's pkcs11-tool cannot generate Ed448 (0.23) keys: softhsm2-util imports a PKCS#8 key.
softhsm_import() {
    local type=$1 id=$2 label=$3 pem=$cell_dir/import-$2.pem
    case $type in
    ed448) plain_openssl genpkey -algorithm ED448 -out "$pem" ;;
    *) return 1 ;;
    esac
    token_env softhsm2-util --import "$pem" --token "$TOKEN_LABEL" --label "$label" --id "$id" \
        --pin "$USER_PIN"
}

softhsm_stop() { :; }

# ---------------------------------------------------------------------------------------------
# opencryptoki's soft token behind its slot daemon pkcsslotd. opencryptoki keeps its
# configuration, token data, lock files and socket at fixed paths (/etc/opencryptoki,
# /var/lib/opencryptoki, /var/lock/opencryptoki, /run/...): in the cell's mount namespace
# private copies are mounted over them, so the machine's own opencryptoki is never touched.

opencryptoki_start() {
    local dir=$cell_dir/opencryptoki version_line
    TOKEN_MODULE=$(first_file "/usr/lib/$multiarch/pkcs11/libopencryptoki.so" \
        "/usr/lib/$multiarch/opencryptoki/libopencryptoki.so.0") || return 1
    command -v pkcsslotd >/dev/null || return 1
    mkdir -p "$dir"
    cp -a /etc/opencryptoki "$dir/etc"
    cp -a /var/lib/opencryptoki "$dir/lib"
    # A fresh soft token: no token data, only the empty object directory.
    find "$dir/lib/swtok" -mindepth 1 -maxdepth 1 ! -name TOK_OBJ -exec rm -rf {} +
    find "$dir/lib/swtok/TOK_OBJ" -mindepth 1 -delete 2>/dev/null || true
    version_line=$(grep -m1 '^version' /etc/opencryptoki/opencryptoki.conf || echo 'version opencryptoki-3')
    printf '%s\n\nslot 3\n{\nstdll = libpkcs11_sw.so\n}\n' "$version_line" >"$dir/etc/opencryptoki.conf"
    mount --bind "$dir/etc" /etc/opencryptoki
    mount --bind "$dir/lib" /var/lib/opencryptoki
    # /run (socket, pid file, and /var/lock = /run/lock) and /var/log/opencryptoki: private.
    mount -t tmpfs -o mode=755 tmpfs /run
    mkdir -p /run/lock/opencryptoki /run/opencryptoki
    chgrp pkcs11 /run/lock/opencryptoki /run/opencryptoki
    chmod 770 /run/lock/opencryptoki /run/opencryptoki
    if getent passwd pkcsslotd >/dev/null; then
        chown pkcsslotd:pkcs11 /run/opencryptoki
    fi
    mkdir -p /var/log/opencryptoki
    mount -t tmpfs tmpfs /var/log/opencryptoki
    mount -t tmpfs -o mode=1777 tmpfs /dev/shm
    pkcsslotd >"$dir/pkcsslotd.log" 2>&1 || {
        cat "$dir/pkcsslotd.log" >&2
        return 1
    }
    local pid_file
    wait_for 10 first_file /run/opencryptoki/pkcsslotd.pid /run/pkcsslotd.pid /var/run/pkcsslotd.pid ||
        return 1
    pid_file=$(first_file /run/opencryptoki/pkcsslotd.pid /run/pkcsslotd.pid)
    started_pids+=("$(cat "$pid_file")")
    # The soft token is slot 3 (the configuration above); opencryptoki PINs are 4 to 8 characters.
    if ! token_env pkcs11-tool --module "$TOKEN_MODULE" --slot 3 --init-token \
        --so-pin "$SO_PIN" --label "$TOKEN_LABEL" >"$dir/init.log" 2>&1 ||
        ! token_env pkcs11-tool --module "$TOKEN_MODULE" --slot 3 --login --login-type so \
            --so-pin "$SO_PIN" --init-pin --pin "$USER_PIN" >>"$dir/init.log" 2>&1; then
        cat "$dir/init.log" >&2
        return 1
    fi
    TOKEN_WHAT="opencryptoki $(package_version opencryptoki) soft token (pkcsslotd)"
}

opencryptoki_stop() { stop_started; }

# ---------------------------------------------------------------------------------------------
# TPM 2.0: swtpm (a software TPM) on loopback, tpm2-abrmd as resource manager (several processes
# and a forked child use the TPM at once; swtpm serves one connection, and without a resource
# manager transient objects fill the TPM), on a private D-Bus; tpm2-pkcs11's token store in the
# cell directory, provisioned with tpm2_ptool.

tpm2_start() {
    local dir=$cell_dir/tpm2 port ctrl attempt
    TOKEN_MODULE=$(first_file "/usr/lib/$multiarch/pkcs11/libtpm2_pkcs11.so" \
        "/usr/lib/$multiarch/libtpm2_pkcs11.so.1") || return 1
    mkdir -p "$dir/state" "$dir/store"
    for attempt in 1 2 3; do
        port=$(free_port_pair)
        ctrl=$((port + 1))
        rm -f "$dir/swtpm.pid"
        if swtpm socket --tpm2 --tpmstate "dir=$dir/state" \
            --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
            --ctrl "type=tcp,port=$ctrl,bindaddr=127.0.0.1" \
            --flags not-need-init,startup-clear --pid "file=$dir/swtpm.pid" \
            --log "file=$dir/swtpm.log" --daemon 2>>"$dir/swtpm.err" &&
            wait_for 5 test -s "$dir/swtpm.pid"; then
            break
        fi
        [ "$attempt" -lt 3 ] || return 1
    done
    started_pids+=("$(cat "$dir/swtpm.pid")")
    cat >"$dir/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$dir/bus</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
EOF
    dbus-daemon --config-file="$dir/dbus.conf" --fork --print-pid=3 3>"$dir/dbus.pid" ||
        return 1
    started_pids+=("$(cat "$dir/dbus.pid")")
    DBUS_SESSION_BUS_ADDRESS=unix:path=$dir/bus tpm2-abrmd --session --allow-root \
        --tcti="swtpm:host=127.0.0.1,port=$port" --flush-all >"$dir/abrmd.log" 2>&1 &
    started_pids+=("$!")
    TOKEN_ENV=(
        "DBUS_SESSION_BUS_ADDRESS=unix:path=$dir/bus"
        "TPM2TOOLS_TCTI=tabrmd:bus_type=session"
        "TPM2_PKCS11_TCTI=tabrmd:bus_type=session"
        "TPM2_PKCS11_STORE=$dir/store"
        "TPM2_PKCS11_LOG_LEVEL=0"
    )
    wait_for 10 token_env tpm2_getcap properties-fixed || {
        cat "$dir/abrmd.log" >&2
        return 1
    }
    if ! token_env tpm2_ptool init --path "$dir/store" >"$dir/init.log" 2>&1 ||
        ! token_env tpm2_ptool addtoken --pid=1 --sopin="$SO_PIN" --userpin="$USER_PIN" \
            --label="$TOKEN_LABEL" --path "$dir/store" >>"$dir/init.log" 2>&1; then
        cat "$dir/init.log" >&2
        return 1
    fi
    TOKEN_WHAT="tpm2-pkcs11 $(package_version libtpm2-pkcs11-1) on swtpm $(package_version swtpm) via tpm2-abrmd"
    TOKEN_FORK_UNSAFE="tpm2-pkcs11 cannot be initialised again in a forked child (C_Initialize fails after C_Finalize), and its C_Finalize there flushes the parent's TPM objects over the inherited tpm2-abrmd connection"
}

tpm2_stop() { stop_started; }

# ---------------------------------------------------------------------------------------------
# A token in another process, the shape of a network HSM: SoftHSM2 behind `p11-kit server` on a
# Unix socket, used through p11-kit's client module.

p11kit-remote_start() {
    local dir=$cell_dir/p11kit softhsm
    softhsm=$(softhsm_module) || return 1
    TOKEN_MODULE=$(first_file "/usr/lib/$multiarch/pkcs11/p11-kit-client.so") || return 1
    softhsm_token_dir "$dir" || return 1
    SOFTHSM2_CONF=$dir/softhsm2.conf OPENSSL_CONF=/dev/null p11-kit server --foreground \
        --name "$dir/p11-kit.sock" --provider "$softhsm" "pkcs11:token=$TOKEN_LABEL" \
        >"$dir/server.log" 2>&1 &
    started_pids+=("$!")
    wait_for 10 test -S "$dir/p11-kit.sock" || {
        cat "$dir/server.log" >&2
        return 1
    }
    TOKEN_ENV=("P11_KIT_SERVER_ADDRESS=unix:path=$dir/p11-kit.sock")
    TOKEN_WHAT="SoftHSM2 $(package_version softhsm2) behind p11-kit server $(package_version p11-kit), through p11-kit-client.so"
}

p11kit-remote_stop() { stop_started; }
