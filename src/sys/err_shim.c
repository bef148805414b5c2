/*
 * core_vset_error takes a va_list, which stable Rust cannot build. This one
 * variadic function builds it. The Rust side always passes the format "%s"
 * and a single NUL-terminated message, so no caller-controlled text is ever
 * used as a printf format.
 */
#include <stdarg.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>

void pkcs11_ossl_set_error(OSSL_FUNC_core_vset_error_fn *vset_error,
                           const OSSL_CORE_HANDLE *handle, uint32_t reason,
                           const char *fmt, ...)
{
    va_list args;

    if (vset_error == NULL)
        return;
    va_start(args, fmt);
    vset_error(handle, reason, fmt, args);
    va_end(args);
}
