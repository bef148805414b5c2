/*
 * Many TLS clients at once from one thread: a load generator for a TLS server on loopback, and
 * the independent peer of the asynchronous-signing tests. It uses whatever providers its
 * OPENSSL_CONF gives it (the tests and scripts/bench-async.sh run it with OPENSSL_CONF=/dev/null:
 * the default provider only, never the pkcs11 provider).
 *
 * Every connection is a new TCP connection and a full handshake (no session resumption); unless
 * -V, the client checks the server certificate against CA and the host name, so a completed
 * handshake means the server's signature verified.
 *
 * Usage: tls_clients [options] PORT CA
 *   -n N      connections in all (default 32); all must succeed
 *   -c N      at most N connections open at once (default: all of -n)
 *   -t SECS   run for SECS seconds instead of -n, keeping -c connections open, then report the
 *             rate (a benchmark; failures are counted, not fatal)
 *   -g        after the handshake send "GET / HTTP/1.0" and require an HTTP 200 status line
 *   -V        do not verify the certificate chain (the TLS 1.3 CertificateVerify signature is
 *             still checked by libssl)
 *   -d SECS   give up after SECS seconds (default 60; with -t: SECS + 30)
 *
 * Output: "ok: N", "failed: N", "seconds: S", "handshakes_per_second: R". Exit status 0 when no
 * connection failed (with -n: all N succeeded), 2 otherwise, 1 for usage or setup problems.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum state { IDLE, CONNECTING, HANDSHAKE, SEND, RECEIVE };

struct client {
    enum state state;
    int fd;
    SSL *ssl;
    short events;
    size_t sent, received;
    char response[64];
};

static SSL_CTX *ctx;
static struct sockaddr_in server;
static int http;
static unsigned long ok, failed;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void finish(struct client *c, int success)
{
    if (success) {
        ok++;
    } else {
        failed++;
        if (failed <= 5) {
            fprintf(stderr, "connection failed in state %d\n", (int)c->state);
            ERR_print_errors_fp(stderr);
        }
    }
    ERR_clear_error();
    SSL_free(c->ssl);
    close(c->fd);
    memset(c, 0, sizeof(*c));
    c->state = IDLE;
}

static int start(struct client *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return 0;
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd) || !SSL_set1_host(c->ssl, "localhost")
        || !SSL_set_tlsext_host_name(c->ssl, "localhost"))
        return 0;
    SSL_set_connect_state(c->ssl);
    c->state = CONNECTING;
    c->events = POLLOUT;
    if (connect(c->fd, (struct sockaddr *)&server, sizeof(server)) == 0)
        c->state = HANDSHAKE;
    else if (errno != EINPROGRESS)
        return 0;
    return 1;
}

/* Returns 1 while the connection goes on; 0 once it is finished (counted). */
static int step(struct client *c)
{
    static const char request[] = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    int ret;

    for (;;) {
        switch (c->state) {
        case IDLE:
            return 0;
        case CONNECTING: {
            int error = 0;
            socklen_t len = sizeof(error);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
                finish(c, 0);
                return 0;
            }
            c->state = HANDSHAKE;
            break;
        }
        case HANDSHAKE:
            ret = SSL_do_handshake(c->ssl);
            if (ret == 1) {
                if (!http) {
                    finish(c, 1);
                    return 0;
                }
                c->state = SEND;
                break;
            }
            goto wait;
        case SEND:
            ret = SSL_write(c->ssl, request + c->sent, (int)(sizeof(request) - 1 - c->sent));
            if (ret > 0) {
                c->sent += (size_t)ret;
                if (c->sent == sizeof(request) - 1)
                    c->state = RECEIVE;
                break;
            }
            goto wait;
        case RECEIVE:
            ret = SSL_read(c->ssl, c->response + c->received,
                           (int)(sizeof(c->response) - 1 - c->received));
            if (ret > 0) {
                c->received += (size_t)ret;
                c->response[c->received] = '\0';
                if (c->received >= 12 || c->received == sizeof(c->response) - 1) {
                    finish(c, strncmp(c->response, "HTTP/1.0 200", 12) == 0
                                  || strncmp(c->response, "HTTP/1.1 200", 12) == 0);
                    return 0;
                }
                break;
            }
            goto wait;
        }
    }
wait:
    switch (SSL_get_error(c->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        c->events = POLLIN;
        return 1;
    case SSL_ERROR_WANT_WRITE:
        c->events = POLLOUT;
        return 1;
    default:
        finish(c, 0);
        return 0;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: tls_clients [-n N] [-c N] [-t SECS] [-g] [-V] [-d SECS] PORT CA\n");
    exit(1);
}

int main(int argc, char **argv)
{
    unsigned long total = 32, concurrency = 0, started = 0;
    double seconds = 0, limit = 60, began, stop_at, ended;
    struct client *clients;
    struct pollfd *fds;
    int option, verify = 1;

    while ((option = getopt(argc, argv, "n:c:t:gVd:")) != -1) {
        switch (option) {
        case 'n': total = strtoul(optarg, NULL, 10); break;
        case 'c': concurrency = strtoul(optarg, NULL, 10); break;
        case 't': seconds = strtod(optarg, NULL); break;
        case 'g': http = 1; break;
        case 'V': verify = 0; break;
        case 'd': limit = strtod(optarg, NULL); break;
        default: usage();
        }
    }
    if (argc - optind != 2 || total == 0)
        usage();
    if (concurrency == 0)
        concurrency = seconds > 0 ? 32 : total;
    if (seconds > 0)
        limit = seconds + 30;
    signal(SIGPIPE, SIG_IGN);
    memset(&server, 0, sizeof(server));
    server.sin_family = AF_INET;
    server.sin_port = htons((unsigned short)atoi(argv[optind]));
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_load_verify_file(ctx, argv[optind + 1]) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    clients = calloc(concurrency, sizeof(*clients));
    fds = calloc(concurrency, sizeof(*fds));
    if (clients == NULL || fds == NULL)
        return 1;

    began = now();
    stop_at = seconds > 0 ? began + seconds : began + limit;
    for (;;) {
        unsigned long open = 0;
        double t = now();

        if (t > began + limit) {
            fprintf(stderr, "deadline passed\n");
            break;
        }
        for (unsigned long i = 0; i < concurrency; i++) {
            if (clients[i].state == IDLE && t < stop_at && (seconds > 0 || started < total)) {
                started++;
                if (!start(&clients[i])) {
                    finish(&clients[i], 0);
                    continue;
                }
                if (clients[i].state == HANDSHAKE)
                    step(&clients[i]);
            }
            fds[i].fd = clients[i].state == IDLE ? -1 : clients[i].fd;
            fds[i].events = clients[i].events;
            fds[i].revents = 0;
            open += clients[i].state != IDLE;
        }
        if (open == 0 && (seconds > 0 ? t >= stop_at : started >= total))
            break;
        if (poll(fds, concurrency, 100) < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        for (unsigned long i = 0; i < concurrency; i++)
            if (fds[i].fd >= 0 && fds[i].revents != 0)
                step(&clients[i]);
    }
    ended = now();
    printf("ok: %lu\nfailed: %lu\nseconds: %.3f\nhandshakes_per_second: %.1f\n", ok, failed,
           ended - began, (double)ok / (ended - began));
    for (unsigned long i = 0; i < concurrency; i++)
        if (clients[i].state != IDLE)
            finish(&clients[i], 0);
    SSL_CTX_free(ctx);
    free(clients);
    free(fds);
    if (failed > 0 || (seconds <= 0 && ok != total))
        return 2;
    return 0;
}
