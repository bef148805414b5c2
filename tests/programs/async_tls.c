/*
 * One-thread TLS server with SSL_MODE_ASYNC and a token key, and its clients, in one process:
 * the event loop of a server such as HAProxy with `ssl-mode-async`, reduced to what the
 * asynchronous-signing tests need.
 *
 * The server SSL_CTX (libctx of OPENSSL_CONF: default provider + pkcs11) uses the private key
 * KEY (a pkcs11: URI or a PEM-URI key file, loaded through OSSL_STORE) with certificate CERT and
 * sets SSL_MODE_ASYNC, so every server handshake runs inside an ASYNC job. The clients use a
 * libctx of their own with only the default provider, trust only CA, and check the host name
 * "localhost". Each connection is a socketpair; one poll() loop drives every client socket,
 * every server socket and every async wait fd (SSL_get_all_async_fds) of the server
 * connections whose handshake returned SSL_ERROR_WANT_ASYNC. A handshake counts when both
 * sides finished and the client verified the server's certificate, i.e. the signature the
 * token made (TLS 1.3 CertificateVerify, TLS 1.2 ServerKeyExchange).
 *
 * Usage: async_tls [options] KEY CERT CA
 *   -n N      connections (default 16)
 *   -w N      at most N connections open at once (default: all)
 *   -m MODE   complete   every handshake must complete and verify (default)
 *             disconnect the client goes away as soon as the server's handshake waits for its
 *                        signature; the server resumes the job when the signature is there,
 *                        its handshake then fails (peer gone), and it frees the connection
 *             abandon    as disconnect, but the server frees the connection at once, while the
 *                        job is paused and the signature still in flight (HAProxy frees a
 *                        connection whose client left; OpenSSL itself leaks such a paused job)
 *   -r N      after the run, N more connections in mode complete (the server still works)
 *   -C        wake-up callback instead of wait fds: SSL_CTX_set_async_callback; the callback
 *             (called on the thread that finished the work) writes the connection to a pipe that
 *             the loop polls; the async wait fds are not polled
 *   -S        resume every waiting job at each turn of the loop, ready or not, without waiting
 *             in poll() (spurious resumes: the job must pause again until its signature is there)
 *   -2        TLS 1.2 only (default: TLS 1.3)
 *   -d SECS   give up after SECS seconds (default 60)
 *   -p NAME   the provider whose counters are read (default pkcs11)
 *   -P        no job stack painting (under valgrind, which sees the scan of a job stack below
 *             its stack pointer as an invalid read)
 *
 * Job stacks (unless -P): before any other OpenSSL call, CRYPTO_set_mem_functions installs allocators that
 * fill every 32 KiB block allocated by crypto/async/arch/async_posix.c (an ASYNC job's stack,
 * STACKSIZE in OpenSSL 3.0) with a pattern; the deepest byte that no longer holds it is the
 * most stack any job used ("job stack peak"). Blocks are scanned when freed and at the end,
 * before ASYNC_cleanup_thread.
 *
 * Output on stdout, one "name: value" per line: handshakes (completed and verified), failed
 * (unexpected server or client failures), want_async (SSL_ERROR_WANT_ASYNC returns),
 * async_waits (times a connection started waiting for its job), spurious_resumes (a resumed job
 * paused again), callbacks (-C: wake-up callbacks received), max_waiting (most connections waiting for their job at once), disconnected,
 * abandoned, survivors (handshakes completed by -r), signatures_counted (sign-ok + sign-error
 * of the provider, read once every signature started has been counted), job stacks, and
 * "job stack peak: N bytes". Errors of failed handshakes go to stderr (ERR_print_errors).
 *
 * Exit status: 0 when everything went as the mode says; 1 usage or setup problem (key, cert,
 * provider); 2 a handshake failed that should not have; 3 the deadline passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

/* ------------------------------------------------------------------------------------------ */
/* Job stack painting                                                                         */
/* ------------------------------------------------------------------------------------------ */

#define JOB_STACK_SIZE 32768 /* STACKSIZE in OpenSSL 3.0 crypto/async/arch/async_posix.c */
#define PAINT 0xA5
#define MAX_PAINTED 8192

static pthread_mutex_t paint_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *painted[MAX_PAINTED];
static size_t npainted, stacks_seen;
static size_t stack_peak; /* bytes, over every block scanned */

static int is_job_stack(size_t size, const char *file)
{
    if (size != JOB_STACK_SIZE)
        return 0;
    /* Without file names (OPENSSL_NO_FILENAMES) the size alone has to do. */
    return file == NULL || *file == '\0' || strstr(file, "async_posix") != NULL;
}

/* Bytes used from the top of a painted block; called with paint_lock held. */
static void scan(const unsigned char *block)
{
    size_t low = 0;

    while (low < JOB_STACK_SIZE && block[low] == PAINT)
        low++;
    if (JOB_STACK_SIZE - low > stack_peak)
        stack_peak = JOB_STACK_SIZE - low;
}

/* Scans and forgets `p` if it is a painted block. */
static void forget(void *p)
{
    pthread_mutex_lock(&paint_lock);
    for (size_t i = 0; i < npainted; i++) {
        if (painted[i] == p) {
            scan(painted[i]);
            painted[i] = painted[--npainted];
            break;
        }
    }
    pthread_mutex_unlock(&paint_lock);
}

static void *paint_malloc(size_t size, const char *file, int line)
{
    void *p = malloc(size);

    (void)line;
    if (p != NULL && is_job_stack(size, file)) {
        memset(p, PAINT, size);
        pthread_mutex_lock(&paint_lock);
        if (npainted < MAX_PAINTED)
            painted[npainted++] = p;
        stacks_seen++;
        pthread_mutex_unlock(&paint_lock);
    }
    return p;
}

static void *paint_realloc(void *p, size_t size, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p != NULL)
        forget(p);
    return realloc(p, size);
}

static void paint_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p != NULL)
        forget(p);
    free(p);
}

/* Scans every painted block still allocated. */
static void scan_all(void)
{
    pthread_mutex_lock(&paint_lock);
    for (size_t i = 0; i < npainted; i++)
        scan(painted[i]);
    pthread_mutex_unlock(&paint_lock);
}

/* ------------------------------------------------------------------------------------------ */
/* Connections                                                                                */
/* ------------------------------------------------------------------------------------------ */

enum mode { COMPLETE, DISCONNECT, ABANDON };

struct conn {
    SSL *server, *client;
    int server_fd, client_fd;
    short server_events, client_events; /* what each side waits for on its socket */
    int server_done, client_done;       /* 1 finished, -1 failed */
    int waiting;                        /* the server's job is paused */
    int gone;                           /* the client left (disconnect, abandon) */
    int woken;                          /* -C: its callback came */
    int open;
};

static struct {
    enum mode mode;
    int spurious, callback;
    int wake[2]; /* -C: the callback writes a struct conn pointer to wake[1] */
    SSL_CTX *server_ctx, *client_ctx;
    unsigned long handshakes, failed, want_async, async_waits, spurious_resumes, max_waiting;
    unsigned long disconnected, abandoned, gone_failed, callbacks;
    struct timespec deadline;
} run;

static int past_deadline(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > run.deadline.tv_sec
           || (now.tv_sec == run.deadline.tv_sec && now.tv_nsec > run.deadline.tv_nsec);
}

static int nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

/* -C: the wake-up callback, on the thread that finished the work. It only passes the pointer
 * on (the loop ignores pointers that are no connection of the current batch). */
static int async_callback(SSL *ssl, void *arg)
{
    (void)ssl;
    return write(run.wake[1], &arg, sizeof(arg)) == (ssize_t)sizeof(arg);
}

static int conn_open(struct conn *c)
{
    int fds[2];

    memset(c, 0, sizeof(*c));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return 0;
    c->server_fd = fds[0];
    c->client_fd = fds[1];
    c->server = SSL_new(run.server_ctx);
    c->client = SSL_new(run.client_ctx);
    if (!nonblocking(c->server_fd) || !nonblocking(c->client_fd) || c->server == NULL
        || c->client == NULL || !SSL_set_fd(c->server, c->server_fd)
        || !SSL_set_fd(c->client, c->client_fd) || !SSL_set1_host(c->client, "localhost")
        || !SSL_set_tlsext_host_name(c->client, "localhost"))
        return 0;
    if (run.callback && !SSL_set_async_callback_arg(c->server, c))
        return 0;
    SSL_set_accept_state(c->server);
    SSL_set_connect_state(c->client);
    c->server_events = c->client_events = POLLIN;
    c->open = 1;
    return 1;
}

static void client_close(struct conn *c)
{
    if (c->client != NULL) {
        SSL_free(c->client);
        c->client = NULL;
        close(c->client_fd);
        c->client_fd = -1;
    }
}

static void conn_close(struct conn *c)
{
    client_close(c);
    if (c->server != NULL) {
        SSL_free(c->server);
        close(c->server_fd);
        c->server = NULL;
    }
    c->open = 0;
}

static short want_events(int error)
{
    return error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
}

static void report_failure(const char *side, int error)
{
    fprintf(stderr, "%s handshake failed (SSL_get_error %d, errno %d)\n", side, error, errno);
    ERR_print_errors_fp(stderr);
}

/* Moves the client side on; returns 0 if it failed. */
static int step_client(struct conn *c)
{
    int ret, error;

    if (c->client == NULL || c->client_done != 0)
        return 1;
    ret = SSL_do_handshake(c->client);
    if (ret == 1) {
        if (SSL_get_verify_result(c->client) != X509_V_OK
            || SSL_get0_peer_certificate(c->client) == NULL) {
            fprintf(stderr, "client: the server certificate did not verify: %s\n",
                    X509_verify_cert_error_string(SSL_get_verify_result(c->client)));
            c->client_done = -1;
            return 0;
        }
        c->client_done = 1;
        return 1;
    }
    error = SSL_get_error(c->client, ret);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        c->client_events = want_events(error);
        return 1;
    }
    report_failure("client", error);
    c->client_done = -1;
    return 0;
}

/* The client leaves while the server's job waits for its signature. */
static void client_leaves(struct conn *c)
{
    client_close(c);
    c->gone = 1;
    run.disconnected++;
    if (run.mode == ABANDON) {
        /* Free the server connection with its job paused and the signature in flight. */
        SSL_free(c->server);
        close(c->server_fd);
        c->server = NULL;
        run.abandoned++;
        c->open = 0;
    }
}

/* Moves the server side on (resuming its job if it is paused); returns 0 on an unexpected
 * failure. */
static int step_server(struct conn *c)
{
    int ret, error;

    if (c->server == NULL || c->server_done != 0)
        return 1;
    ret = SSL_do_handshake(c->server);
    if (ret == 1) {
        c->waiting = 0;
        c->server_done = 1;
        return 1;
    }
    error = SSL_get_error(c->server, ret);
    if (error == SSL_ERROR_WANT_ASYNC) {
        run.want_async++;
        if (c->waiting) {
            run.spurious_resumes++;
        } else {
            c->waiting = 1;
            run.async_waits++;
            if (run.mode != COMPLETE && !c->gone)
                client_leaves(c);
        }
        return 1;
    }
    c->waiting = 0;
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        c->server_events = want_events(error);
        return 1;
    }
    c->server_done = -1;
    if (c->gone) {
        /* Expected: the peer left. */
        run.gone_failed++;
        ERR_clear_error();
        return 1;
    }
    report_failure("server", error);
    return 0;
}

/* Whether the connection is over; counts it. */
static int finished(struct conn *c)
{
    if (!c->open)
        return 1;
    if (c->gone)
        return c->server_done != 0;
    if (c->server_done == 1 && c->client_done == 1) {
        run.handshakes++;
        return 1;
    }
    return c->server_done == -1 || c->client_done == -1;
}

/* Runs `total` connections, at most `window` at once; returns 0, 2 (a failure) or 3 (deadline). */
static int run_batch(enum mode mode, unsigned long total, unsigned long window)
{
    struct conn *conns = calloc(window, sizeof(*conns));
    struct pollfd *fds = calloc(window * 8, sizeof(*fds));
    struct conn **owner = calloc(window * 8, sizeof(*owner));
    char *server_side = calloc(window * 8, 1); /* fds[k] belongs to the server (else client) */
    unsigned long started = 0, ended = 0, failures = 0;
    int status = 0;

    if (conns == NULL || fds == NULL || owner == NULL || server_side == NULL)
        return 1;
    run.mode = mode;
    while (ended < total) {
        nfds_t n = 0;
        unsigned long waiting = 0;

        if (past_deadline()) {
            fprintf(stderr, "deadline passed: %lu of %lu connections ended\n", ended, total);
            status = 3;
            break;
        }
        for (unsigned long i = 0; i < window && started < total; i++) {
            if (!conns[i].open && conns[i].server == NULL && conns[i].client == NULL) {
                if (!conn_open(&conns[i])) {
                    fprintf(stderr, "cannot set up connection %lu\n", started);
                    ERR_print_errors_fp(stderr);
                    status = 1;
                    goto out;
                }
                started++;
                /* The client speaks first. */
                if (!step_client(&conns[i]))
                    failures++;
            }
        }
        for (unsigned long i = 0; i < window; i++) {
            struct conn *c = &conns[i];

            if (!c->open)
                continue;
            if (c->client != NULL && c->client_done == 0) {
                fds[n] = (struct pollfd){.fd = c->client_fd, .events = c->client_events};
                server_side[n] = 0;
                owner[n++] = c;
            }
            if (c->server != NULL && c->server_done == 0) {
                if (c->waiting && run.callback) {
                    waiting++;
                } else if (c->waiting) {
                    OSSL_ASYNC_FD afds[4];
                    size_t count = 0;

                    waiting++;
                    if (!SSL_get_all_async_fds(c->server, NULL, &count) || count > 4
                        || !SSL_get_all_async_fds(c->server, afds, &count) || count == 0) {
                        fprintf(stderr, "a waiting job has %zu wait fds\n", count);
                        status = 2;
                        goto out;
                    }
                    for (size_t k = 0; k < count; k++) {
                        fds[n] = (struct pollfd){.fd = afds[k], .events = POLLIN};
                        server_side[n] = 1;
                        owner[n++] = c;
                    }
                } else {
                    fds[n] = (struct pollfd){.fd = c->server_fd, .events = c->server_events};
                    server_side[n] = 1;
                    owner[n++] = c;
                }
            }
        }
        if (waiting > run.max_waiting)
            run.max_waiting = waiting;
        if (run.callback) {
            fds[n] = (struct pollfd){.fd = run.wake[0], .events = POLLIN};
            server_side[n] = 1;
            owner[n++] = NULL;
        }
        /* With -S a waiting job is resumed at once, before its signature can be there. */
        if (n > 0 && poll(fds, n, run.spurious && waiting > 0 ? 0 : 200) < 0 && errno != EINTR) {
            perror("poll");
            status = 1;
            goto out;
        }
        /* -C: the connections whose callback came. */
        if (run.callback) {
            void *woken;

            while (read(run.wake[0], &woken, sizeof(woken)) == (ssize_t)sizeof(woken)) {
                run.callbacks++;
                for (unsigned long i = 0; i < window; i++)
                    if (woken == (void *)&conns[i] && conns[i].open && conns[i].waiting)
                        conns[i].woken = 1;
            }
        }
        /* Step each side that has an event (each at most once per turn): a paused job is
         * resumed only when its wait fd is readable (-C: its callback came), unless -S asks for
         * spurious resumes. */
        for (unsigned long i = 0; i < window; i++) {
            struct conn *c = &conns[i];
            int server_ready = c->woken, client_ready = 0;

            c->woken = 0;
            if (!c->open)
                continue;
            for (nfds_t k = 0; k < n; k++) {
                if (owner[k] == c && fds[k].revents != 0) {
                    if (server_side[k])
                        server_ready = 1;
                    else
                        client_ready = 1;
                }
            }
            if (run.spurious && c->waiting)
                server_ready = 1;
            if (server_ready && !step_server(c))
                failures++;
            if (client_ready && c->open && !step_client(c))
                failures++;
            if (finished(c)) {
                conn_close(c);
                ended++;
            }
        }
    }
out:
    for (unsigned long i = 0; i < window; i++)
        if (conns[i].open)
            conn_close(&conns[i]);
    free(conns);
    free(fds);
    free(owner);
    free(server_side);
    run.failed += failures;
    if (status == 0 && failures > 0)
        status = 2;
    return status;
}

/* ------------------------------------------------------------------------------------------ */
/* Setup                                                                                      */
/* ------------------------------------------------------------------------------------------ */

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

/* sign-ok + sign-error of `provider`, or -1. */
static long signatures_counted(OSSL_PROVIDER *provider)
{
    size_t ok = 0, error = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_size_t("pkcs11-sign-ok", &ok),
        OSSL_PARAM_size_t("pkcs11-sign-error", &error),
        OSSL_PARAM_END,
    };

    if (!OSSL_PROVIDER_get_params(provider, params) || !OSSL_PARAM_modified(&params[0]))
        return -1;
    return (long)(ok + error);
}

static void usage(void)
{
    fprintf(stderr, "usage: async_tls [-n N] [-w N] [-m complete|disconnect|abandon] [-r N] "
                    "[-S] [-2] [-d SECS] [-p PROVIDER] KEY CERT CA\n");
    exit(1);
}

int main(int argc, char **argv)
{
    unsigned long total = 16, window = 0, survivors = 0, survived = 0;
    long seconds = 60, counted = -1, baseline;
    const char *provider_name = "pkcs11";
    enum mode mode = COMPLETE;
    int tls12 = 0, option, status;
    OSSL_LIB_CTX *plain;
    OSSL_PROVIDER *provider, *plain_default;
    int paint = 1;
    EVP_PKEY *key;

    while ((option = getopt(argc, argv, "n:w:m:r:CS2d:p:P")) != -1) {
        switch (option) {
        case 'C': run.callback = 1; break;
        case 'P': paint = 0; break;
        case 'n': total = strtoul(optarg, NULL, 10); break;
        case 'w': window = strtoul(optarg, NULL, 10); break;
        case 'r': survivors = strtoul(optarg, NULL, 10); break;
        case 'S': run.spurious = 1; break;
        case '2': tls12 = 1; break;
        case 'd': seconds = strtol(optarg, NULL, 10); break;
        case 'p': provider_name = optarg; break;
        case 'm':
            if (strcmp(optarg, "complete") == 0)
                mode = COMPLETE;
            else if (strcmp(optarg, "disconnect") == 0)
                mode = DISCONNECT;
            else if (strcmp(optarg, "abandon") == 0)
                mode = ABANDON;
            else
                usage();
            break;
        default: usage();
        }
    }
    if (argc - optind != 3 || total == 0 || seconds <= 0)
        usage();
    if (window == 0 || window > total)
        window = total;
    /* Before any other OpenSSL call: every OpenSSL allocation goes through the painter. */
    if (paint && !CRYPTO_set_mem_functions(paint_malloc, paint_realloc, paint_free))
        fprintf(stderr, "warning: CRYPTO_set_mem_functions refused; no job stack figures\n");
    /* A server writing to a client that left must get EPIPE, not die of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    clock_gettime(CLOCK_MONOTONIC, &run.deadline);
    run.deadline.tv_sec += seconds;

    if (!OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL)) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    provider = OSSL_PROVIDER_load(NULL, provider_name);
    key = load_key(argv[optind]);
    if (provider == NULL || key == NULL) {
        fprintf(stderr, provider == NULL ? "provider %s not loaded\n" : "key not loaded\n",
                provider_name);
        ERR_print_errors_fp(stderr);
        return 1;
    }
    baseline = signatures_counted(provider);

    run.server_ctx = SSL_CTX_new(TLS_server_method());
    plain = OSSL_LIB_CTX_new();
    if (plain == NULL || (plain_default = OSSL_PROVIDER_load(plain, "default")) == NULL)
        return 1;
    run.client_ctx = SSL_CTX_new_ex(plain, NULL, TLS_client_method());
    if (run.server_ctx == NULL || run.client_ctx == NULL
        || SSL_CTX_use_certificate_file(run.server_ctx, argv[optind + 1], SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey(run.server_ctx, key) != 1
        || SSL_CTX_check_private_key(run.server_ctx) != 1
        || SSL_CTX_load_verify_file(run.client_ctx, argv[optind + 2]) != 1) {
        fprintf(stderr, "TLS setup failed\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_mode(run.server_ctx, SSL_MODE_ASYNC);
    if (run.callback
        && (pipe2(run.wake, O_NONBLOCK | O_CLOEXEC) != 0
            || !SSL_CTX_set_async_callback(run.server_ctx, async_callback))) {
        fprintf(stderr, "cannot set up the wake-up callback\n");
        return 1;
    }
    SSL_CTX_set_num_tickets(run.server_ctx, 0);
    SSL_CTX_set_session_cache_mode(run.server_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(run.client_ctx, SSL_VERIFY_PEER, NULL);
    if (tls12) {
        SSL_CTX_set_max_proto_version(run.server_ctx, TLS1_2_VERSION);
        SSL_CTX_set_max_proto_version(run.client_ctx, TLS1_2_VERSION);
    } else {
        SSL_CTX_set_min_proto_version(run.client_ctx, TLS1_3_VERSION);
    }

    status = run_batch(mode, total, window);
    if (status == 0 && survivors > 0) {
        unsigned long before = run.handshakes;
        status = run_batch(COMPLETE, survivors, survivors);
        survived = run.handshakes - before;
    }

    /* Every signature started must have been made (and counted) before the process exits:
     * a worker must not be inside the token while libcrypto is cleaned up. */
    if (baseline >= 0) {
        for (;;) {
            counted = signatures_counted(provider) - baseline;
            if (counted >= (long)run.async_waits || past_deadline())
                break;
            usleep(10000);
        }
    }

    printf("handshakes: %lu\n", run.handshakes);
    printf("failed: %lu\n", run.failed);
    printf("want_async: %lu\n", run.want_async);
    printf("async_waits: %lu\n", run.async_waits);
    printf("spurious_resumes: %lu\n", run.spurious_resumes);
    printf("callbacks: %lu\n", run.callbacks);
    printf("max_waiting: %lu\n", run.max_waiting);
    printf("disconnected: %lu\n", run.disconnected);
    printf("abandoned: %lu\n", run.abandoned);
    printf("failed_after_disconnect: %lu\n", run.gone_failed);
    printf("survivors: %lu\n", survived);
    printf("signatures_counted: %ld\n", counted);
    scan_all();
    printf("job stacks: %zu\n", stacks_seen);
    printf("job stack peak: %zu bytes\n", stack_peak);
    fflush(stdout);

    SSL_CTX_free(run.server_ctx);
    SSL_CTX_free(run.client_ctx);
    EVP_PKEY_free(key);
    OSSL_PROVIDER_unload(provider);
    ASYNC_cleanup_thread();
    OSSL_PROVIDER_unload(plain_default);
    OSSL_LIB_CTX_free(plain);
    if (status == 0 && mode == COMPLETE && run.handshakes != total + survivors)
        status = 2;
    if (status == 0 && mode != COMPLETE && survived != survivors)
        status = 2;
    return status;
}
