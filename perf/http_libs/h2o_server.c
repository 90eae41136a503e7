/* Throughput probe: POST /write served by libh2o-evloop (h2o 2.2.5, its own event
 * loop; docs/http_library.md).
 *
 *   h2o_server PORT [THREADS]
 *
 * One global configuration; each thread owns an evloop and an h2o_context_t and
 * binds its own listening socket on PORT with SO_REUSEPORT. h2o 2.2 buffers the
 * whole request body (bounded by max_request_entity_size) before the handler runs
 * and hands it over contiguous in req->entity; its '\n' are counted into a global
 * counter and the reply is 204. GET /count returns "lines requests".
 * Not part of the Meson build. */
#define _GNU_SOURCE
#define H2O_USE_LIBUV 0 /* the evloop flavour of the library */
#include <arpa/inet.h>
#include <h2o.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_MAX (16u << 20)
#define MAX_THREADS 16

static atomic_ullong n_lines;
static atomic_ullong n_reqs;
static h2o_globalconf_t config;
static unsigned port;

struct worker {
    pthread_t tid;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
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

static int on_write(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_send_error_generic(req, 405, "Method Not Allowed", "POST only\n", 0);
        return 0;
    }
    atomic_fetch_add_explicit(&n_lines, count_nl(req->entity.base, req->entity.len),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&n_reqs, 1, memory_order_relaxed);
    req->res.status = 204;
    req->res.reason = "No Content";
    h2o_send_inline(req, "", 0);
    return 0;
}

static int on_count(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    char txt[64];
    int n = snprintf(txt, sizeof txt, "%llu %llu\n", (unsigned long long)n_lines,
                     (unsigned long long)n_reqs);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain"));
    h2o_send_inline(req, txt, (size_t)n);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err)
        return;
    struct worker *w = listener->data;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock)
        h2o_accept(&w->accept_ctx, sock);
}

static int worker_init(struct worker *w)
{
    h2o_context_init(&w->ctx, h2o_evloop_create(), &config);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = config.hosts;

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1024) != 0) {
        perror("listen socket");
        return -1;
    }
    w->listener = h2o_evloop_socket_create(w->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);
    return 0;
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    while (h2o_evloop_run(w->ctx.loop, INT32_MAX) == 0)
        ;
    return NULL;
}

static h2o_pathconf_t *add_path(h2o_hostconf_t *host, const char *path,
                                int (*fn)(h2o_handler_t *, h2o_req_t *))
{
    h2o_pathconf_t *pc = h2o_config_register_path(host, path, 0);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof *h);
    h->on_req = fn;
    return pc;
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
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    h2o_config_init(&config);
    config.max_request_entity_size = BODY_MAX; /* larger: 413 */
    config.http1.req_timeout = 30000;          /* ms, idle/slow-request timeout */
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")),
                                                    65535);
    add_path(host, "/write", on_write);
    add_path(host, "/count", on_count);

    static struct worker ws[MAX_THREADS];
    for (int i = 0; i < nthreads; i++)
        if (worker_init(&ws[i]) != 0)
            return 1;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&ws[i].tid, NULL, worker_run, &ws[i]);
    fprintf(stderr, "h2o_server: 127.0.0.1:%u threads=%d (h2o %s)\n", port, nthreads,
            H2O_VERSION);

    int sig;
    sigwait(&sigs, &sig);
    /* The evloop has no cross-thread stop short of an h2o_multithread queue; the
     * probe has nothing to flush, so report and exit. */
    fprintf(stderr, "h2o_server: lines=%llu requests=%llu\n", (unsigned long long)n_lines,
            (unsigned long long)n_reqs);
    return 0;
}
