/*
 * The OpenSSL headers bindgen reads for src/ffi/sys.rs: the provider ABI
 * (dispatch ids, function types, parameter names) and the one libcrypto
 * function openssl-sys does not declare (OSSL_LIB_CTX_new_from_dispatch).
 */
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/crypto.h>
