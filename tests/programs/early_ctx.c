/*
 * early_ctx: a TLS 1.3 handshake with a token key that is loaded only AFTER the SSL_CTXs exist
 * (issue 4, item 2). Programs commonly create their SSL_CTX at start-up and load keys later; the
 * provider must then still offer its signature algorithms to libssl and sign CertificateVerify.
 *
 * Usage: early_ctx <key-uri> <cert.pem>
 *
 * 1. SSL_CTX_new for a server and a client (this also loads OPENSSL_CONF, hence the provider);
 * 2. only then OSSL_STORE_open/OSSL_STORE_load the private key named by <key-uri> and read the
 *    certificate from <cert.pem>; SSL_CTX_use_certificate + SSL_CTX_use_PrivateKey +
 *    SSL_CTX_check_private_key on the server context;
 * 3. handshake over an in-memory BIO pair, TLS 1.3 only; the client trusts exactly <cert.pem> and
 *    verifies the server's certificate and CertificateVerify signature; one application record
 *    goes from client to server to show the keys agree.
 *
 * Prints "protocol: ...", "signature type: ..." and "signature digest: ..." and exits 0 on success;
 * on any failure prints what failed and the OpenSSL error queue on stderr and exits 1.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

/* Each round moves at most one flight each way; a TLS 1.3 handshake needs a handful. */
#define MAX_HANDSHAKE_ROUNDS 64

static const char PING[] = "ping over the token key";

static int fail(const char *what)
{
    fprintf(stderr, "early_ctx: %s\n", what);
    ERR_print_errors_fp(stderr);
    return 1;
}

/* A TLS 1.3-only context; NULL on failure. */
static SSL_CTX *tls13_ctx(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL)
        return NULL;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)
        || !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* The first private key the store yields for uri; NULL (with the error queue set) otherwise. */
static EVP_PKEY *load_private_key(const char *uri)
{
    EVP_PKEY *pkey = NULL;
    OSSL_STORE_CTX *store = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    if (store == NULL)
        return NULL;
    if (!OSSL_STORE_expect(store, OSSL_STORE_INFO_PKEY)) {
        OSSL_STORE_close(store);
        return NULL;
    }
    while (pkey == NULL && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);
        if (info == NULL) {
            if (OSSL_STORE_error(store))
                break;
            continue;
        }
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    return pkey;
}

static X509 *load_certificate(const char *path)
{
    X509 *cert = NULL;
    BIO *in = BIO_new_file(path, "r");
    if (in == NULL)
        return NULL;
    cert = PEM_read_bio_X509(in, NULL, NULL, NULL);
    BIO_free(in);
    return cert;
}

/* 1 when the step made progress or must wait for the peer, 0 on a real error. */
static int handshake_step(SSL *ssl, int *done)
{
    int ret;
    if (*done)
        return 1;
    ret = SSL_do_handshake(ssl);
    if (ret == 1) {
        *done = 1;
        return 1;
    }
    switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 1;
    default:
        return 0;
    }
}

/* Runs both ends until both finished; 0 on an error or when the rounds run out. */
static int handshake(SSL *server, SSL *client)
{
    int server_done = 0, client_done = 0, round;
    for (round = 0; round < MAX_HANDSHAKE_ROUNDS; round++) {
        if (!handshake_step(client, &client_done)) {
            fprintf(stderr, "early_ctx: client handshake failed\n");
            return 0;
        }
        if (!handshake_step(server, &server_done)) {
            fprintf(stderr, "early_ctx: server handshake failed\n");
            return 0;
        }
        if (server_done && client_done)
            return 1;
    }
    fprintf(stderr, "early_ctx: handshake did not finish in %d rounds\n", MAX_HANDSHAKE_ROUNDS);
    return 0;
}

/* Client sends PING, server must read exactly it (the traffic keys agree). */
static int exchange_data(SSL *server, SSL *client)
{
    char buf[sizeof(PING)];
    size_t n = 0;
    if (!SSL_write_ex(client, PING, sizeof(PING), &n) || n != sizeof(PING))
        return 0;
    /* The server may first have to consume the client's post-handshake records. */
    memset(buf, 0, sizeof(buf));
    if (!SSL_read_ex(server, buf, sizeof(buf), &n))
        return 0;
    return n == sizeof(PING) && memcmp(buf, PING, sizeof(PING)) == 0;
}

static const char *nid_name(int nid)
{
    const char *name = OBJ_nid2sn(nid);
    return name != NULL ? name : "unknown";
}

int main(int argc, char **argv)
{
    SSL_CTX *server_ctx, *client_ctx;
    SSL *server, *client;
    BIO *server_bio = NULL, *client_bio = NULL;
    EVP_PKEY *pkey;
    X509 *cert;
    int type_nid = NID_undef, digest_nid = NID_undef;
    long verify_result;

    if (argc != 3) {
        fprintf(stderr, "usage: %s <private-key-uri> <cert.pem>\n", argv[0]);
        return 1;
    }

    /* Step 1: both contexts exist before any key is known. */
    server_ctx = tls13_ctx(TLS_server_method());
    client_ctx = tls13_ctx(TLS_client_method());
    if (server_ctx == NULL || client_ctx == NULL)
        return fail("SSL_CTX_new failed");

    /* Step 2: the token key and its certificate. */
    pkey = load_private_key(argv[1]);
    if (pkey == NULL)
        return fail("no private key loaded from the URI");
    cert = load_certificate(argv[2]);
    if (cert == NULL)
        return fail("cannot read the certificate");
    if (SSL_CTX_use_certificate(server_ctx, cert) != 1)
        return fail("SSL_CTX_use_certificate failed");
    if (SSL_CTX_use_PrivateKey(server_ctx, pkey) != 1)
        return fail("SSL_CTX_use_PrivateKey failed");
    if (SSL_CTX_check_private_key(server_ctx) != 1)
        return fail("SSL_CTX_check_private_key failed");

    /* The client trusts only this certificate and must verify it. */
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx), cert) != 1)
        return fail("cannot add the certificate to the client's trust store");
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);

    /* Step 3: handshake over a BIO pair. */
    server = SSL_new(server_ctx);
    client = SSL_new(client_ctx);
    if (server == NULL || client == NULL)
        return fail("SSL_new failed");
    if (!BIO_new_bio_pair(&server_bio, 0, &client_bio, 0))
        return fail("BIO_new_bio_pair failed");
    SSL_set_bio(server, server_bio, server_bio);
    SSL_set_bio(client, client_bio, client_bio);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);

    if (!handshake(server, client))
        return fail("TLS handshake failed");
    verify_result = SSL_get_verify_result(client);
    if (verify_result != X509_V_OK) {
        fprintf(stderr, "early_ctx: client did not verify the server: %s\n",
                X509_verify_cert_error_string(verify_result));
        return fail("certificate verification failed");
    }
    if (!exchange_data(server, client))
        return fail("application data exchange failed");
    if (!SSL_get_peer_signature_type_nid(client, &type_nid))
        return fail("no peer signature type");
    if (!SSL_get_peer_signature_nid(client, &digest_nid))
        digest_nid = NID_undef; /* EdDSA has no separate digest */

    printf("protocol: %s\n", SSL_get_version(client));
    printf("signature type: %s\n", nid_name(type_nid));
    printf("signature digest: %s\n", digest_nid == NID_undef ? "none" : nid_name(digest_nid));

    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    return 0;
}
