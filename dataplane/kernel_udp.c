/* kernel_udp.c - line protocol on a kernel UDP socket (kernel_udp.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kernel_udp.h"
#include "lineproto.h"
#include "log.h"
#include "text_ingest.h"

#define KUDP_BURST 32
#define KUDP_DGRAM_MAX 65536 /* the largest UDP payload the kernel hands over */

struct sl_kudp {
	struct sl_node *node;
	struct sl_config cfg;
	int fd;
	pthread_t th;
	atomic_bool stop;
	uint8_t bufs[KUDP_BURST][KUDP_DGRAM_MAX];
	struct sl_lp_line line;
};

static struct {
	_Atomic uint64_t datagrams, bytes, lines_ok, lines_bad, points, bursts_failed;
} kc;

void sl_kudp_counters(struct sl_kudp_counters *o)
{
	o->datagrams = atomic_load(&kc.datagrams);
	o->bytes = atomic_load(&kc.bytes);
	o->lines_ok = atomic_load(&kc.lines_ok);
	o->lines_bad = atomic_load(&kc.lines_bad);
	o->points = atomic_load(&kc.points);
	o->bursts_failed = atomic_load(&kc.bursts_failed);
}

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void *kudp_main(void *arg)
{
	struct sl_kudp *k = arg;
	struct mmsghdr msgs[KUDP_BURST];
	struct iovec iov[KUDP_BURST];
	enum sl_lp_precision prec = SL_LP_PREC_NS;
	sl_lp_precision_parse(k->cfg.precision, &prec);
	while (!atomic_load(&k->stop)) {
		for (unsigned i = 0; i < KUDP_BURST; i++) {
			iov[i] = (struct iovec){.iov_base = k->bufs[i], .iov_len = KUDP_DGRAM_MAX};
			msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
		}
		int got = recvmmsg(k->fd, msgs, KUDP_BURST, MSG_WAITFORONE, NULL);
		sl_ti_reap();
		if (got <= 0)
			continue; /* the receive timeout: look at the stop flag */
		/* one writer per burst: its points leave in chunks, answered unseen (UDP has
		 * no answer); bounded: the writer waits for room, at most 1 s */
		struct sl_ti_writer wr;
		sl_ti_begin(&wr, k->node, 1000000000ull, false);
		struct sl_lp_opts o = {.precision = prec, .now_ns = wall_ns()};
		uint64_t ok = 0, bad = 0;
		for (int i = 0; i < got; i++) {
			const char *b = (const char *)k->bufs[i];
			size_t len = msgs[i].msg_len;
			atomic_fetch_add(&kc.datagrams, 1);
			atomic_fetch_add(&kc.bytes, len);
			for (size_t off = 0; off < len;) {
				size_t n = sl_lp_line_end(b + off, len - off);
				int rc = sl_ti_add_line(&wr, b + off, n, &o, &k->line);
				off += n + (off + n < len ? 1 : 0);
				if (rc == 0)
					ok++;
				else if (rc == -EBADMSG)
					bad++;
			}
		}
		sl_ti_end(&wr);
		atomic_fetch_add(&kc.lines_ok, ok);
		atomic_fetch_add(&kc.lines_bad, bad);
		atomic_fetch_add(&kc.points, wr.points);
		if (wr.error != 0) /* a burst whose points were not all handed over (the node
				    * took none within 1 s, or it is stopping) */
			atomic_fetch_add(&kc.bursts_failed, 1);
	}
	return NULL;
}

int sl_kudp_start(struct sl_node *n, const struct sl_config *c, struct sl_kudp **out,
		  char *err, size_t err_len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->line_port)};
	if (inet_pton(AF_INET, c->kernel_address, &sa.sin_addr) != 1) {
		snprintf(err, err_len, "[net] kernel_address = '%s': not an IPv4 address",
			 c->kernel_address);
		return -EINVAL;
	}
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_len, "kernel UDP: socket: %s", strerror(errno));
		return -errno;
	}
	int rcvbuf = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		snprintf(err, err_len, "kernel UDP: cannot bind %s:%u: %s", c->kernel_address,
			 c->line_port, strerror(e));
		close(fd);
		return -e;
	}
	struct sl_kudp *k = calloc(1, sizeof(*k));
	if (k == NULL) {
		close(fd);
		snprintf(err, err_len, "kernel UDP: out of memory");
		return -ENOMEM;
	}
	k->node = n;
	k->cfg = *c;
	k->fd = fd;
	int rc = pthread_create(&k->th, NULL, kudp_main, k);
	if (rc != 0) {
		snprintf(err, err_len, "kernel UDP: thread: %s", strerror(rc));
		close(fd);
		free(k);
		return -rc;
	}
	pthread_setname_np(k->th, "sl-kudp");
	*out = k;
	return 0;
}

void sl_kudp_stop(struct sl_kudp *k)
{
	if (k == NULL)
		return;
	atomic_store(&k->stop, true);
	pthread_join(k->th, NULL);
	close(k->fd);
	free(k);
}
