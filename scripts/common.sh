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
