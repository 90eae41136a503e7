/* Throughput probe: POST /write served by libevent's evhttp (docs/http_library.md).
 *
 *   evhttp_server PORT [THREADS]
 *
 * Each thread owns one event_base and one evhttp, and binds its own listening
 * socket on PORT with SO_REUSEPORT (the kernel spreads new connections over
 * them). evthread_use_pthreads() is on, as sluice would need it to wake a base
 * from another thread (an answer held until a disk flush). evhttp reads the whole
 * body before calling back; it is made contiguous (sluice's line-protocol parser
 * wants contiguous bytes), its '\n' are counted into a global counter, and the
 * reply is 204. GET /count returns "lines requests". Not part of the Meson build. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (16 << 20)
#define MAX_THREADS 16

static atomic_ullong n_lines;
static atomic_ullong n_reqs;
static unsigned port;

struct worker {
    pthread_t tid;
    struct event_base *base;
    struct evhttp *http;
    struct event *quit; /* made active by the main thread on SIGTERM */
};

static unsigned long long count_nl(const char *p, size_t n)
{
    unsigned long long c = 0;
    const char *end = p + n;
    while (p < end) {
        const char *q = memchr(p, '\n', (size_t)(end - p));
        if (!q)
            break;
        c++;
        p = q + 1;
    }
    return c;
}

static void on_write(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_send_error(req, 405, "POST only");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    const char *body = n ? (const char *)evbuffer_pullup(in, -1) : "";
    atomic_fetch_add_explicit(&n_lines, count_nl(body, n), memory_order_relaxed);
    atomic_fetch_add_explicit(&n_reqs, 1, memory_order_relaxed);
    evbuffer_drain(in, n);
    evhttp_send_reply(req, 204, "No Content", NULL);
}

static void on_count(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "%llu %llu\n", (unsigned long long)n_lines,
                        (unsigned long long)n_reqs);
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void on_quit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static int worker_init(struct worker *w)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    w->base = event_base_new();
    if (!w->base)
        return -1;
    w->http = evhttp_new(w->base);
    evhttp_set_max_body_size(w->http, BODY_MAX);      /* larger: 413 */
    evhttp_set_max_headers_size(w->http, 64 * 1024);
    evhttp_set_timeout(w->http, 30);                  /* per-connection read/write timeout */
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_cb(w->http, "/write", on_write, NULL);
    evhttp_set_cb(w->http, "/count", on_count, NULL);

    struct evconnlistener *l = evconnlistener_new_bind(
        w->base, NULL, NULL,
        LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&sa, sizeof sa);
    if (!l) {
        perror("evconnlistener_new_bind");
        return -1;
    }
    if (!evhttp_bind_listener(w->http, l))
        return -1;
    w->quit = event_new(w->base, -1, 0, on_quit, w->base);
    return 0;
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]);
        return 2;
    }
    port = (unsigned)atoi(argv[1]);
    int nthreads = argc > 2 ? atoi(argv[2]) : 1;
    if (nthreads < 1 || nthreads > MAX_THREADS)
        nthreads = 1;

    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "evthread_use_pthreads failed\n");
        return 1;
    }

    /* SIGTERM/SIGINT are taken synchronously by the main thread; workers block them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    static struct worker ws[MAX_THREADS];
    for (int i = 0; i < nthreads; i++)
        if (worker_init(&ws[i]) != 0)
            return 1;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&ws[i].tid, NULL, worker_run, &ws[i]);
    fprintf(stderr, "evhttp_server: 127.0.0.1:%u threads=%d (libevent %s)\n", port, nthreads,
            event_get_version());

    int sig;
    sigwait(&sigs, &sig);
    for (int i = 0; i < nthreads; i++)
        event_active(ws[i].quit, 0, 0); /* safe across threads with evthread_use_pthreads */
    for (int i = 0; i < nthreads; i++)
        pthread_join(ws[i].tid, NULL);
    fprintf(stderr, "evhttp_server: lines=%llu requests=%llu\n", (unsigned long long)n_lines,
            (unsigned long long)n_reqs);
    return 0;
}
