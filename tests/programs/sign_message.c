/*
 * Signs with a token key through OpenSSL 3.4's sign-message API (issue 14): the algorithm ALG
 * (e.g. RSA-SHA256, ECDSA-SHA384) is fetched from the pkcs11 provider, then
 *   1. EVP_PKEY_sign_message_init + two EVP_PKEY_sign_message_update + EVP_PKEY_sign_message_final,
 *   2. EVP_PKEY_sign_message_init + one-shot EVP_PKEY_sign over the message.
 * Each signature is verified, in a library context with only the default provider, with the
 * public key PUBKEY.pem and the same algorithm (EVP_PKEY_verify_message_*), and must fail for a
 * changed message.
 *
 * Usage: sign_message KEY-URI PUBKEY.pem MESSAGE ALG
 * Exit 0 when everything worked; 77 when OpenSSL is older than 3.4 (no such API); 1 the key did
 * not load; 2 the algorithm was not fetched from the pkcs11 provider; 3 streaming signing
 * failed; 4 one-shot signing failed; 5 a signature did not verify or verified a changed message;
 * 6 usage or I/O problems.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/opensslv.h>

#if OPENSSL_VERSION_NUMBER < 0x30400000L
int main(void)
{
    printf("OpenSSL %s has no sign-message API (3.4 added it)\n", OPENSSL_VERSION_TEXT);
    return 77;
}
#else
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>

static unsigned char message[65536];
static size_t message_len;

static EVP_PKEY *load_key(const char *uri)
{
    OSSL_STORE_CTX *store = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    EVP_PKEY *found = NULL;

    if (store == NULL)
        return NULL;
    OSSL_STORE_expect(store, OSSL_STORE_INFO_PKEY);
    while (found == NULL && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);
        if (info != NULL && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            found = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    return found;
}

/* 1 if sig verifies for msg with the default provider only, 0 if not, -1 on setup errors. */
static int verifies(OSSL_LIB_CTX *software, EVP_PKEY *public_key, const char *alg,
                    const unsigned char *sig, size_t sig_len, const unsigned char *msg,
                    size_t msg_len)
{
    EVP_SIGNATURE *verifier = EVP_SIGNATURE_fetch(software, alg, NULL);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(software, public_key, NULL);
    int result = -1;

    if (verifier != NULL && ctx != NULL && EVP_PKEY_verify_message_init(ctx, verifier, NULL) == 1
        && EVP_PKEY_CTX_set_signature(ctx, sig, sig_len) == 1
        && EVP_PKEY_verify_message_update(ctx, msg, msg_len) == 1)
        result = EVP_PKEY_verify_message_final(ctx) == 1;
    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    EVP_SIGNATURE_free(verifier);
    return result;
}

static int check(OSSL_LIB_CTX *software, EVP_PKEY *public_key, const char *alg, const char *what,
                 const unsigned char *sig, size_t sig_len)
{
    unsigned char changed[sizeof message];

    memcpy(changed, message, message_len);
    changed[0] ^= 1;
    if (verifies(software, public_key, alg, sig, sig_len, message, message_len) != 1) {
        fprintf(stderr, "%s: the signature does not verify\n", what);
        return 0;
    }
    if (verifies(software, public_key, alg, sig, sig_len, changed, message_len) != 0) {
        fprintf(stderr, "%s: the signature verifies for a changed message\n", what);
        return 0;
    }
    printf("%s: %zu-byte signature verifies\n", what, sig_len);
    return 1;
}

int main(int argc, char **argv)
{
    OSSL_LIB_CTX *software;
    EVP_PKEY *key, *public_key;
    EVP_SIGNATURE *alg;
    EVP_PKEY_CTX *ctx;
    unsigned char sig[1024];
    size_t sig_len = 0, half;
    const char *provider;
    FILE *file;

    if (argc != 5) {
        fprintf(stderr, "usage: sign_message KEY-URI PUBKEY.pem MESSAGE ALG\n");
        return 6;
    }
    if ((file = fopen(argv[3], "rb")) == NULL)
        return 6;
    message_len = fread(message, 1, sizeof message, file);
    fclose(file);
    if (message_len < 2)
        return 6;
    software = OSSL_LIB_CTX_new();
    if (software == NULL || OSSL_PROVIDER_load(software, "default") == NULL)
        return 6;
    if ((file = fopen(argv[2], "r")) == NULL)
        return 6;
    public_key = PEM_read_PUBKEY_ex(file, NULL, NULL, NULL, software, NULL);
    fclose(file);
    if (public_key == NULL)
        return 6;

    if ((key = load_key(argv[1])) == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    alg = EVP_SIGNATURE_fetch(NULL, argv[4], "provider=pkcs11");
    provider = alg == NULL ? NULL : OSSL_PROVIDER_get0_name(EVP_SIGNATURE_get0_provider(alg));
    if (provider == NULL || strcmp(provider, "pkcs11") != 0) {
        fprintf(stderr, "%s is not offered by the pkcs11 provider\n", argv[4]);
        ERR_print_errors_fp(stderr);
        return 2;
    }
    printf("%s from provider %s\n", EVP_SIGNATURE_get0_name(alg), provider);

    /* 1. Streaming, with a size query first. */
    half = message_len / 2;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (ctx == NULL || EVP_PKEY_sign_message_init(ctx, alg, NULL) != 1
        || EVP_PKEY_sign_message_update(ctx, message, half) != 1
        || EVP_PKEY_sign_message_update(ctx, message + half, message_len - half) != 1
        || EVP_PKEY_sign_message_final(ctx, NULL, &sig_len) != 1 || sig_len > sizeof sig
        || EVP_PKEY_sign_message_final(ctx, sig, &sig_len) != 1) {
        fprintf(stderr, "streaming signing failed\n");
        ERR_print_errors_fp(stderr);
        return 3;
    }
    EVP_PKEY_CTX_free(ctx);
    if (!check(software, public_key, argv[4], "sign_message_update/final", sig, sig_len))
        return 5;

    /* 2. One shot: EVP_PKEY_sign gets the message itself. */
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    sig_len = 0;
    if (ctx == NULL || EVP_PKEY_sign_message_init(ctx, alg, NULL) != 1
        || EVP_PKEY_sign(ctx, NULL, &sig_len, message, message_len) != 1
        || sig_len > sizeof sig || EVP_PKEY_sign(ctx, sig, &sig_len, message, message_len) != 1) {
        fprintf(stderr, "one-shot signing failed\n");
        ERR_print_errors_fp(stderr);
        return 4;
    }
    EVP_PKEY_CTX_free(ctx);
    if (!check(software, public_key, argv[4], "EVP_PKEY_sign", sig, sig_len))
        return 5;

    EVP_SIGNATURE_free(alg);
    EVP_PKEY_free(key);
    EVP_PKEY_free(public_key);
    OSSL_LIB_CTX_free(software);
    return 0;
}
#endif
