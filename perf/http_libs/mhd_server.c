/* Throughput probe: POST /write served by libmicrohttpd (docs/http_library.md).
 *
 *   mhd_server PORT [POOL_THREADS [CONN_MEMORY_KIB [defer]]]
 *
 * Internal polling thread(s) on epoll; POOL_THREADS > 1 adds a thread pool
 * (MHD_OPTION_THREAD_POOL_SIZE). CONN_MEMORY_KIB 0 keeps the library default.
 * The body is gathered into one buffer (sluice's line-protocol parser wants
 * contiguous bytes), its '\n' are counted into a global counter, and the reply
 * is 204. GET /count returns "lines requests".
 *
 * "defer": the reply waits for another thread, as it would wait for a WAL flush
 * in sluice. The handler suspends the connection (MHD_suspend_connection) and
 * queues the request to a "flusher" thread; the flusher takes everything queued,
 * marks it durable and calls MHD_resume_connection (safe from any thread); MHD
 * then calls the handler again, which queues the 204. The flusher does no I/O,
 * so this measures the cost of the suspend/resume round trip alone.
 * Not part of the Meson build. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BODY_MAX (16u << 20)

static atomic_ullong n_lines;
static atomic_ullong n_reqs;
static struct MHD_Response *resp_204;
static volatile sig_atomic_t stop;

struct upload {
    char *buf;
    size_t len, cap;
    int refused; /* 1: over BODY_MAX, answer 413 at the end */
    /* defer mode */
    struct MHD_Connection *conn;
    struct upload *next;    /* flusher queue */
    int waiting;            /* suspended, waiting for the flusher */
    atomic_int durable;     /* set by the flusher before it resumes */
};

/* defer mode: requests waiting for the "flush" */
static int defer;
static pthread_mutex_t flush_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flush_cv = PTHREAD_COND_INITIALIZER;
static struct upload *flush_head;
static int flush_stop;

static void *flusher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&flush_mu);
    for (;;) {
        while (!flush_head && !flush_stop)
            pthread_cond_wait(&flush_cv, &flush_mu);
        struct upload *batch = flush_head;
        flush_head = NULL;
        int quit = flush_stop && !batch;
        pthread_mutex_unlock(&flush_mu);
        if (quit)
            return NULL;
        /* (a WAL group commit would write and fdatasync here) */
        while (batch) {
            struct upload *u = batch;
            batch = u->next; /* read before resuming: u may be freed after that */
            atomic_store_explicit(&u->durable, 1, memory_order_release);
            MHD_resume_connection(u->conn);
        }
        pthread_mutex_lock(&flush_mu);
    }
}

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

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *data, size_t *data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct upload *u = *con_cls;

    if (!u) { /* headers are in, no body byte seen yet */
        if (strcmp(method, "GET") == 0 && strcmp(url, "/count") == 0) {
            char txt[64];
            snprintf(txt, sizeof txt, "%llu %llu\n", (unsigned long long)n_lines,
                     (unsigned long long)n_reqs);
            return reply_text(c, MHD_HTTP_OK, txt);
        }
        if (strcmp(url, "/write") != 0)
            return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
        if (strcmp(method, "POST") != 0)
            return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only\n");
        size_t want = 64 * 1024;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            unsigned long long v = strtoull(cl, NULL, 10);
            if (v > BODY_MAX) /* answered before the body is read; MHD then closes */
                return reply_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n");
            if (v > 0)
                want = (size_t)v;
        }
        u = calloc(1, sizeof *u);
        if (!u)
            return MHD_NO;
        u->buf = malloc(want);
        if (!u->buf) {
            free(u);
            return MHD_NO;
        }
        u->cap = want;
        *con_cls = u;
        return MHD_YES;
    }

    if (*data_size) { /* a piece of the body */
        size_t n = *data_size;
        *data_size = 0;
        if (u->refused)
            return MHD_YES;
        if (u->len + n > BODY_MAX) {
            u->refused = 1;
            return MHD_YES;
        }
        if (u->len + n > u->cap) {
            size_t cap = u->cap * 2;
            while (cap < u->len + n)
                cap *= 2;
            if (cap > BODY_MAX)
                cap = BODY_MAX;
            char *b = realloc(u->buf, cap);
            if (!b)
                return MHD_NO;
            u->buf = b;
            u->cap = cap;
        }
        memcpy(u->buf + u->len, data, n);
        u->len += n;
        return MHD_YES;
    }

    /* body complete (in defer mode: or called again after the resume) */
    if (u->refused)
        return reply_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n");
    if (u->waiting) {
        if (!atomic_load_explicit(&u->durable, memory_order_acquire))
            return MHD_YES; /* not expected: called again before the resume */
        return MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp_204);
    }
    atomic_fetch_add_explicit(&n_lines, count_nl(u->buf, u->len), memory_order_relaxed);
    atomic_fetch_add_explicit(&n_reqs, 1, memory_order_relaxed);
    if (!defer)
        return MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp_204);
    /* Suspend first, then publish: the flusher may resume as soon as it sees u. */
    free(u->buf); /* the "parser" is done with the body */
    u->buf = NULL;
    u->waiting = 1;
    u->conn = c;
    MHD_suspend_connection(c);
    pthread_mutex_lock(&flush_mu);
    u->next = flush_head;
    flush_head = u;
    pthread_cond_signal(&flush_cv);
    pthread_mutex_unlock(&flush_mu);
    return MHD_YES;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    struct upload *u = *con_cls;
    if (u) {
        free(u->buf);
        free(u);
        *con_cls = NULL;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [POOL_THREADS [CONN_MEMORY_KIB [defer]]]\n", argv[0]);
        return 2;
    }
    unsigned port = (unsigned)atoi(argv[1]);
    unsigned pool = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
    size_t mem_kib = argc > 3 ? (size_t)atoi(argv[3]) : 0; /* 0: library default (32 KiB) */
    defer = argc > 4 && strcmp(argv[4], "defer") == 0;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    resp_204 = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* pool <= 1: the one internal polling thread serves everything (MHD warns if a
     * pool size of 1 is passed, so the option is left out then) */
    struct MHD_OptionItem opts[8];
    int k = 0;
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, 1024, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL};
    /* in an option array a callback goes in .value, its closure in .ptr_value */
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_done, NULL};
    if (pool > 1)
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, pool, NULL};
    if (mem_kib)
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                            (intptr_t)(mem_kib * 1024), NULL};
    opts[k] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    pthread_t flush_tid;
    if (defer)
        pthread_create(&flush_tid, NULL, flusher, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (defer)
        flags |= MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port,
        NULL, NULL, on_request, NULL, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "MHD_start_daemon failed\n");
        return 1;
    }
    fprintf(stderr, "mhd_server: 127.0.0.1:%u pool=%u conn_memory=%zu KiB%s\n", port, pool,
            mem_kib ? mem_kib : 32, defer ? " defer" : "");
    while (!stop)
        pause();
    /* MHD_stop_daemon must not find suspended connections: the flusher resumes
     * whatever is queued before it exits. */
    if (defer) {
        MHD_quiesce_daemon(d);
        pthread_mutex_lock(&flush_mu);
        flush_stop = 1;
        pthread_cond_signal(&flush_cv);
        pthread_mutex_unlock(&flush_mu);
        pthread_join(flush_tid, NULL);
    }
    MHD_stop_daemon(d);
    MHD_destroy_response(resp_204);
    fprintf(stderr, "mhd_server: lines=%llu requests=%llu\n", (unsigned long long)n_lines,
            (unsigned long long)n_reqs);
    return 0;
}
