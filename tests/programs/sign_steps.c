/*
 * Loads one private key through OSSL_STORE (a pkcs11: URI) and then runs a script of steps in
 * this one process, so a test can change the token's state between signatures of one key:
 *
 *   sign=OUT    sign MESSAGE (SHA-256; EdDSA: the message itself), write the signature to OUT;
 *               the signature must succeed
 *   nosign      a signature that must fail; OpenSSL's error queue goes to stderr
 *   touch=PATH  create the file PATH
 *   rm=PATH     delete the file PATH
 *
 * Usage: sign_steps KEY-URI MESSAGE STEP...
 * Exit 0 when every step went as expected; 1 when the key did not load; 3 for usage or I/O
 * problems; 10 + i when step i (0-based) did not go as expected. Each step reports on stdout.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
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

/* Signs `message`; returns the signature length, 0 on failure. */
static size_t sign(EVP_PKEY *key, const unsigned char *message, size_t message_len,
                   unsigned char *signature, size_t size)
{
    const EVP_MD *digest =
        (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) ? NULL : EVP_sha256();
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t len = size;
    int ok = md != NULL && EVP_DigestSignInit(md, NULL, digest, NULL, key) == 1
             && EVP_DigestSign(md, signature, &len, message, message_len) == 1;

    EVP_MD_CTX_free(md);
    return ok ? len : 0;
}

int main(int argc, char **argv)
{
    static unsigned char message[65536];
    unsigned char signature[1024];
    size_t message_len, len;
    EVP_PKEY *key;
    FILE *file;

    if (argc < 3)
        return 3;
    file = fopen(argv[2], "rb");
    if (file == NULL)
        return 3;
    message_len = fread(message, 1, sizeof(message), file);
    fclose(file);
    key = load_key(argv[1]);
    if (key == NULL) {
        fprintf(stderr, "key not loaded\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        const char *step = argv[i];
        int failed = 0;

        if (strncmp(step, "sign=", 5) == 0) {
            len = sign(key, message, message_len, signature, sizeof(signature));
            if (len == 0) {
                fprintf(stderr, "step %d (%s): signing failed\n", i - 3, step);
                ERR_print_errors_fp(stderr);
                failed = 1;
            } else {
                file = fopen(step + 5, "wb");
                if (file == NULL || fwrite(signature, 1, len, file) != len)
                    return 3;
                fclose(file);
            }
        } else if (strcmp(step, "nosign") == 0) {
            len = sign(key, message, message_len, signature, sizeof(signature));
            if (len != 0) {
                fprintf(stderr, "step %d (%s): signing succeeded\n", i - 3, step);
                failed = 1;
            } else {
                ERR_print_errors_fp(stderr);
            }
        } else if (strncmp(step, "touch=", 6) == 0) {
            file = fopen(step + 6, "w");
            if (file == NULL)
                return 3;
            fclose(file);
        } else if (strncmp(step, "rm=", 3) == 0) {
            if (remove(step + 3) != 0)
                return 3;
        } else {
            fprintf(stderr, "unknown step %s\n", step);
            return 3;
        }
        ERR_clear_error();
        printf("step %d (%s): %s\n", i - 3, step, failed ? "unexpected result" : "ok");
        fflush(stdout);
        if (failed)
            return 10 + (i - 3);
    }
    EVP_PKEY_free(key);
    return 0;
}
