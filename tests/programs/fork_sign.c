/*
 * Forks while other threads sign with a token key (issue 15, item 1).
 *
 * Loads the private key KEY-URI through OSSL_STORE (the provider comes from OPENSSL_CONF) and
 * the public key PUBKEY.pem in a separate library context that has only the default provider,
 * so no verification goes through the provider under test. THREADS threads then sign MESSAGE
 * in a loop (SHA-256; EdDSA: the message itself, one-shot) and verify every signature. Once
 * every thread has signed at least once, the main thread forks: the child signs once with the
 * same key, verifies, writes its signature to CHILD-SIG and _exit(0)s; the parent waits for
 * the child, lets the threads finish and joins them.
 *
 * Usage: fork_sign KEY-URI PUBKEY.pem MESSAGE CHILD-SIG [THREADS]
 * Progress goes to stdout ("child: ..." lines from the child), errors to stderr.
 * Exit 0 when everything worked; 1 the key did not load; 2 the key is not the pkcs11
 * provider's; 3 usage or I/O problems; 4 a thread's signature failed or did not verify;
 * 5 the child failed (its own codes: 21 signing failed, 22 signature does not verify,
 * 23 cannot write CHILD-SIG).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#define MAX_THREADS 16
/* Signatures per thread after the fork, and an upper bound so that a hung child does not keep
 * the parent's threads busy until the test's deadline. */
#define MIN_AFTER_FORK 3
#define MAX_PER_THREAD 400

static EVP_PKEY *key, *public_key;
static OSSL_LIB_CTX *software;
static const char *digest_name; /* NULL for EdDSA */
static unsigned char message[65536];
static size_t message_len;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int threads_started_signing; /* threads with at least one good signature */
static int child_done;              /* set by the main thread after waitpid */

struct worker {
    pthread_t thread;
    int index;
    int signatures;
    int failed;
};

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

/* Signs the message with the token key; returns the signature length, 0 on failure. */
static size_t sign(unsigned char *signature, size_t size)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t len = size;
    int ok = md != NULL && EVP_DigestSignInit_ex(md, NULL, digest_name, NULL, NULL, key, NULL) == 1
             && EVP_DigestSign(md, signature, &len, message, message_len) == 1;

    EVP_MD_CTX_free(md);
    return ok ? len : 0;
}

/* Verifies with the public key in the default-provider-only library context. */
static int verify(const unsigned char *signature, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL
             && EVP_DigestVerifyInit_ex(md, NULL, digest_name, software, NULL, public_key, NULL)
                    == 1
             && EVP_DigestVerify(md, signature, len, message, message_len) == 1;

    EVP_MD_CTX_free(md);
    return ok;
}

static void *sign_loop(void *arg)
{
    struct worker *self = arg;
    unsigned char signature[1024];
    int after_fork = 0;

    for (;;) {
        size_t len = sign(signature, sizeof(signature));
        int done;

        if (len == 0 || !verify(signature, len)) {
            fprintf(stderr, "thread %d, signature %d: %s\n", self->index, self->signatures,
                    len == 0 ? "signing failed" : "signature does not verify");
            ERR_print_errors_fp(stderr);
            self->failed = 1;
        } else {
            self->signatures++;
        }
        pthread_mutex_lock(&lock);
        if (self->signatures == 1 && !self->failed) {
            threads_started_signing++;
            pthread_cond_broadcast(&changed);
        }
        done = child_done;
        pthread_mutex_unlock(&lock);
        if (done)
            after_fork++;
        if (self->failed || after_fork >= MIN_AFTER_FORK || self->signatures >= MAX_PER_THREAD)
            break;
    }
    /* A thread that stops early must not leave the main thread waiting for it. */
    pthread_mutex_lock(&lock);
    if (self->signatures == 0) {
        threads_started_signing++;
        pthread_cond_broadcast(&changed);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* The forked child: one signature with the inherited key, verified, written to `out`. */
static void child(const char *out)
{
    unsigned char signature[1024];
    size_t len;
    FILE *file;

    printf("child: signing\n");
    fflush(stdout);
    len = sign(signature, sizeof(signature));
    if (len == 0) {
        fprintf(stderr, "child: signing failed\n");
        ERR_print_errors_fp(stderr);
        fflush(stderr);
        _exit(21);
    }
    printf("child: signed\n");
    fflush(stdout);
    if (!verify(signature, len)) {
        fprintf(stderr, "child: signature does not verify\n");
        fflush(stderr);
        _exit(22);
    }
    file = fopen(out, "wb");
    if (file == NULL || fwrite(signature, 1, len, file) != len || fclose(file) != 0)
        _exit(23);
    printf("child: signature written\n");
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv)
{
    struct worker workers[MAX_THREADS];
    int threads = argc > 5 ? atoi(argv[5]) : 4;
    int status, failed = 0;
    OSSL_PROVIDER *default_provider;
    const OSSL_PROVIDER *owner;
    FILE *file;
    pid_t pid;

    if (argc < 5 || threads < 1 || threads > MAX_THREADS)
        return 3;
    file = fopen(argv[3], "rb");
    if (file == NULL)
        return 3;
    message_len = fread(message, 1, sizeof(message), file);
    fclose(file);

    software = OSSL_LIB_CTX_new();
    default_provider = OSSL_PROVIDER_load(software, "default");
    file = fopen(argv[2], "r");
    if (software == NULL || default_provider == NULL || file == NULL)
        return 3;
    public_key = PEM_read_PUBKEY_ex(file, NULL, NULL, NULL, software, NULL);
    fclose(file);
    if (public_key == NULL) {
        ERR_print_errors_fp(stderr);
        return 3;
    }

    key = load_key(argv[1]);
    if (key == NULL) {
        fprintf(stderr, "key not loaded\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    owner = EVP_PKEY_get0_provider(key);
    if (owner == NULL || strcmp(OSSL_PROVIDER_get0_name(owner), "pkcs11") != 0) {
        fprintf(stderr, "the key belongs to provider %s, not pkcs11\n",
                owner == NULL ? "(none)" : OSSL_PROVIDER_get0_name(owner));
        return 2;
    }
    digest_name = (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) ? NULL : "SHA256";
    printf("%s key from provider pkcs11, %d threads\n", EVP_PKEY_get0_type_name(key), threads);
    fflush(stdout);

    for (int i = 0; i < threads; i++) {
        workers[i] = (struct worker){ .index = i };
        if (pthread_create(&workers[i].thread, NULL, sign_loop, &workers[i]) != 0)
            return 3;
    }
    /* Fork only once every thread is signing, so the fork lands among their token calls. */
    pthread_mutex_lock(&lock);
    while (threads_started_signing < threads)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0)
        return 3;
    if (pid == 0)
        child(argv[4]);
    printf("forked child %ld\n", (long)pid);
    fflush(stdout);
    if (waitpid(pid, &status, 0) != pid)
        return 3;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status))
            fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
        else
            fprintf(stderr, "child exited with %d\n", WEXITSTATUS(status));
        failed = 5;
    }
    pthread_mutex_lock(&lock);
    child_done = 1;
    pthread_mutex_unlock(&lock);

    for (int i = 0; i < threads; i++) {
        pthread_join(workers[i].thread, NULL);
        printf("thread %d: %d signatures%s\n", i, workers[i].signatures,
               workers[i].failed ? ", FAILED" : "");
        if (workers[i].failed && failed == 0)
            failed = 4;
    }
    EVP_PKEY_free(key);
    EVP_PKEY_free(public_key);
    OSSL_PROVIDER_unload(default_provider);
    OSSL_LIB_CTX_free(software);
    return failed;
}
