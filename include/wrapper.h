/*
 * The OpenSSL headers bindgen reads for src/sys/abi.rs: the provider ABI
 * (dispatch ids, function types, parameter names) and the libcrypto
 * functions openssl-sys does not declare (child library context,
 * core BIO wrapping, public key printing, the ASYNC job calls, the UI
 * calls of the terminal PIN prompt, verification through another provider,
 * random bytes from a library context, OAEP decoding).
 */
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/crypto.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/async.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ui.h>
