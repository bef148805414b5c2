/*
 * metrics: prints the pkcs11-ossl provider's sign-duration metrics, as a program sees them
 * through OSSL_PROVIDER_get_params(3).
 *
 * The provider comes from the OpenSSL configuration (OPENSSL_CONF), as for any other program.
 * With -s, the program first makes COUNT SHA-256 signatures with KEY (a pkcs11: URI or a PEM-URI
 * key file), so that there is something to count; a signature the token refuses is counted by
 * the provider as an error and reported here on stderr.
 *
 * Build:  cc -o metrics examples/metrics.c -lcrypto
 * Usage:  OPENSSL_CONF=/path/to/openssl.cnf ./metrics [-p PROVIDER] [-s KEY] [-n COUNT] [-w]
 *   -p PROVIDER  the provider's name in the configuration (default pkcs11)
 *   -s KEY       sign with KEY first
 *   -n COUNT     how many signatures (default 1)
 *   -w           at the end, wait until standard input is closed (Ctrl-D), so that the
 *                metrics file (pkcs11-module-metrics-file) can be read while the process lives
 *
 * Output: "signed: N ok, M failed" (with -s), the Prometheus text of the parameter
 * "pkcs11-metrics" (histogram offloaded_private_key_sign_duration by algorithm and status, the
 * gauges of signatures in flight and queued), then the numeric parameters "pkcs11-sign-ok",
 * "pkcs11-sign-error", "pkcs11-sign-in-flight" and "pkcs11-sign-queued", one per line.
 * Exit status 0, or 1 when the provider or the key cannot be loaded or a parameter is missing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/store.h>

static EVP_PKEY *load_key(const char *uri)
{
    OSSL_STORE_CTX *store = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    EVP_PKEY *key = NULL;

    if (store == NULL)
        return NULL;
    OSSL_STORE_expect(store, OSSL_STORE_INFO_PKEY);
    while (key == NULL && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);
        if (info != NULL && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            key = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    return key;
}

/* One SHA-256 signature of a fixed message; 1 on success. */
static int sign_once(EVP_PKEY *key)
{
    static const unsigned char message[] = "pkcs11-ossl metrics example";
    unsigned char signature[1024];
    size_t len = sizeof(signature);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1
             && EVP_DigestSign(md, signature, &len, message, sizeof(message) - 1) == 1;

    EVP_MD_CTX_free(md);
    return ok;
}

/* Prints the provider's "pkcs11-metrics" text: the first call asks for its size. */
static int print_metrics_text(OSSL_PROVIDER *provider)
{
    OSSL_PARAM query[] = {
        OSSL_PARAM_utf8_string("pkcs11-metrics", NULL, 0),
        OSSL_PARAM_END,
    };
    char *text;
    int ok;

    if (!OSSL_PROVIDER_get_params(provider, query) || query[0].return_size == 0) {
        fprintf(stderr, "the provider has no parameter pkcs11-metrics\n");
        return 0;
    }
    text = malloc(query[0].return_size + 1);
    if (text == NULL)
        return 0;
    query[0].data = text;
    query[0].data_size = query[0].return_size + 1;
    ok = OSSL_PROVIDER_get_params(provider, query);
    if (ok)
        fputs(text, stdout);
    free(text);
    return ok;
}

/* Prints the numeric parameters. */
static int print_totals(OSSL_PROVIDER *provider)
{
    static const char *const names[] = {
        "pkcs11-sign-ok",
        "pkcs11-sign-error",
        "pkcs11-sign-in-flight",
        "pkcs11-sign-queued",
    };
    size_t values[4] = {0, 0, 0, 0};
    OSSL_PARAM params[5];

    for (int i = 0; i < 4; i++)
        params[i] = OSSL_PARAM_construct_size_t(names[i], &values[i]);
    params[4] = OSSL_PARAM_construct_end();
    if (!OSSL_PROVIDER_get_params(provider, params))
        return 0;
    for (int i = 0; i < 4; i++) {
        if (!OSSL_PARAM_modified(&params[i])) {
            fprintf(stderr, "the provider did not answer %s\n", names[i]);
            return 0;
        }
        printf("%s: %zu\n", names[i], values[i]);
    }
    return 1;
}

int main(int argc, char **argv)
{
    const char *provider_name = "pkcs11", *key_uri = NULL;
    unsigned long count = 1, ok = 0, failed = 0;
    int option, wait_for_eof = 0, status = 0;
    OSSL_PROVIDER *provider;

    while ((option = getopt(argc, argv, "p:s:n:w")) != -1) {
        switch (option) {
        case 'p': provider_name = optarg; break;
        case 's': key_uri = optarg; break;
        case 'n': count = strtoul(optarg, NULL, 10); break;
        case 'w': wait_for_eof = 1; break;
        default:
            fprintf(stderr, "usage: metrics [-p PROVIDER] [-s KEY] [-n COUNT] [-w]\n");
            return 1;
        }
    }
    if (!OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL)) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    /* The provider the configuration activated (OSSL_PROVIDER_load finds it by name). */
    provider = OSSL_PROVIDER_load(NULL, provider_name);
    if (provider == NULL) {
        fprintf(stderr, "provider %s is not loaded; check OPENSSL_CONF\n", provider_name);
        ERR_print_errors_fp(stderr);
        return 1;
    }
    if (key_uri != NULL) {
        EVP_PKEY *key = load_key(key_uri);

        if (key == NULL) {
            fprintf(stderr, "cannot load %s\n", key_uri);
            ERR_print_errors_fp(stderr);
            OSSL_PROVIDER_unload(provider);
            return 1;
        }
        for (unsigned long i = 0; i < count; i++) {
            if (sign_once(key)) {
                ok++;
            } else {
                failed++;
                ERR_print_errors_fp(stderr);
            }
        }
        EVP_PKEY_free(key);
        printf("signed: %lu ok, %lu failed\n", ok, failed);
    }
    if (!print_metrics_text(provider) || !print_totals(provider))
        status = 1;
    fflush(stdout);
    if (wait_for_eof) {
        char buffer[256];
        while (fread(buffer, 1, sizeof(buffer), stdin) > 0)
            ;
    }
    OSSL_PROVIDER_unload(provider);
    return status;
}
