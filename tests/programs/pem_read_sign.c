/*
 * Reads a private key the way programs that only take key files do (PEM_read_PrivateKey),
 * signs a message with SHA-256 (EdDSA: the message itself) and writes the signature.
 * Usage: pem_read_sign KEY.pem MESSAGE SIGNATURE-OUT
 * Exit 0 on success; otherwise 1 (key not loaded) or 2 (signing failed), with OpenSSL's
 * error queue on stderr.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

int main(int argc, char **argv)
{
    FILE *in, *out;
    EVP_PKEY *key;
    EVP_MD_CTX *md;
    const EVP_MD *digest;
    unsigned char message[65536], signature[1024];
    size_t message_len, signature_len = sizeof(signature);

    if (argc != 4)
        return 3;
    in = fopen(argv[1], "r");
    if (in == NULL)
        return 3;
    key = PEM_read_PrivateKey(in, NULL, NULL, NULL);
    fclose(in);
    if (key == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    in = fopen(argv[2], "rb");
    if (in == NULL)
        return 3;
    message_len = fread(message, 1, sizeof(message), in);
    fclose(in);
    digest = (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) ? NULL : EVP_sha256();
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit(md, NULL, digest, NULL, key) != 1
        || EVP_DigestSign(md, signature, &signature_len, message, message_len) != 1) {
        ERR_print_errors_fp(stderr);
        return 2;
    }
    out = fopen(argv[3], "wb");
    if (out == NULL || fwrite(signature, 1, signature_len, out) != signature_len)
        return 3;
    fclose(out);
    printf("%s key, %zu-byte signature\n", EVP_PKEY_get0_type_name(key), signature_len);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return 0;
}
