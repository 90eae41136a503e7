/* test_port.c - cmocka tests of the ports' TX buffers (port.c) on a ring PMD port whose
 * TX ring nobody drains: frames wait until a burst is full or the owner flushes, a full
 * device ring drops and counts the rest, nothing leaks (exact mempool counts). */
/* cmocka needs these before it, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "port.h"
#include "sl_assert.h"

#define TX_RING_CAP 40 /* frames the device takes before its TX ring is full */

static struct sl_ports ports;
static struct rte_ring *tx_ring; /* what the port "sent" */
static unsigned pool_free;       /* free mbufs with nothing in flight */

static int setup(void **state)
{
	(void)state;
	char *argv[] = {"test_port", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
			"-m", "128", "--log-level=lib.eal:error", "--log-level=pmd:error"};
	if (rte_eal_init((int)SL_ARRAY_LEN(argv), argv) < 0)
		return -1;
	struct rte_ring *rx = rte_ring_create("t_rx", 64, SOCKET_ID_ANY, 0);
	tx_ring = rte_ring_create("t_tx", TX_RING_CAP, SOCKET_ID_ANY, RING_F_EXACT_SZ);
	struct rte_ring *fab = rte_ring_create("t_fab", 64, SOCKET_ID_ANY, 0);
	if (rx == NULL || tx_ring == NULL || fab == NULL ||
	    rte_eth_from_rings("t_port", &rx, 1, &tx_ring, 1, SOCKET_ID_ANY) < 0 ||
	    rte_eth_from_rings("t_fabric", &fab, 1, &fab, 1, SOCKET_ID_ANY) < 0)
		return -1;
	/* the fabric's device over UDP ([cluster] fabric_port) is not an ingest port */
	sl_port_reserve("net_ring_t_fabric");
	char err[256] = "";
	if (sl_ports_init(&ports, 1, 0, err, sizeof(err)) != 0 || ports.n != 1) {
		fprintf(stderr, "test_port: %s (%u ports: %s)\n", err, ports.n, ports.p[0].name);
		return -1;
	}
	pool_free = rte_mempool_avail_count(ports.p[0].pool);
	return 0;
}

static struct rte_mbuf *frame(void)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(ports.p[0].pool);
	assert_non_null(m);
	m->data_len = m->pkt_len = 60;
	return m;
}

/* Takes every frame off the device's TX ring; returns how many there were. */
static unsigned drain_device(void)
{
	struct rte_mbuf *m;
	unsigned n = 0;
	while (n < 10 * TX_RING_CAP && rte_ring_dequeue(tx_ring, (void **)&m) == 0) {
		rte_pktmbuf_free(m);
		n++;
	}
	return n;
}

static void test_burst_and_flush(void **state)
{
	(void)state;
	struct sl_port_txq t;
	assert_int_equal(sl_port_txq_init(&t, ports.p[0].port_id, 0), 0);
	/* fewer than a burst: held until the flush */
	for (int i = 0; i < 5; i++)
		sl_port_txq_send(&t, frame());
	assert_int_equal(rte_ring_count(tx_ring), 0);
	assert_int_equal(t.sent, 0);
	sl_port_txq_flush(&t);
	assert_int_equal(rte_ring_count(tx_ring), 5);
	assert_int_equal(t.sent, 5);
	sl_port_txq_flush(&t); /* empty: nothing more */
	assert_int_equal(t.sent, 5);
	assert_int_equal(drain_device(), 5);
	/* a full burst leaves by itself, in one piece */
	for (int i = 0; i < SL_PORT_TX_BURST - 1; i++)
		sl_port_txq_send(&t, frame());
	assert_int_equal(rte_ring_count(tx_ring), 0);
	sl_port_txq_send(&t, frame());
	assert_int_equal(rte_ring_count(tx_ring), SL_PORT_TX_BURST);
	assert_int_equal(t.sent, 5 + SL_PORT_TX_BURST);
	assert_int_equal(t.dropped, 0);
	assert_int_equal(drain_device(), SL_PORT_TX_BURST);
	sl_port_txq_fini(&t);
	assert_null(t.buf);
	assert_int_equal(rte_mempool_avail_count(ports.p[0].pool), pool_free);
}

/* The device's ring full: what it does not take is freed and counted as dropped. */
static void test_device_full(void **state)
{
	(void)state;
	struct sl_port_txq t;
	assert_int_equal(sl_port_txq_init(&t, ports.p[0].port_id, 0), 0);
	const unsigned n = SL_PORT_TX_BURST + 18; /* a burst, then 18 for 8 free places */
	for (unsigned i = 0; i < n; i++)
		sl_port_txq_send(&t, frame());
	sl_port_txq_flush(&t);
	assert_int_equal(t.sent, TX_RING_CAP);
	assert_int_equal(t.dropped, n - TX_RING_CAP);
	assert_int_equal(t.buf->length, 0);
	/* the dropped frames are back in the pool, the sent ones on the device */
	assert_int_equal(rte_mempool_avail_count(ports.p[0].pool), pool_free - TX_RING_CAP);
	/* still full: a whole burst is dropped and counted */
	for (unsigned i = 0; i < SL_PORT_TX_BURST; i++)
		sl_port_txq_send(&t, frame());
	assert_int_equal(t.dropped, n - TX_RING_CAP + SL_PORT_TX_BURST);
	assert_int_equal(t.sent, TX_RING_CAP);
	assert_int_equal(drain_device(), TX_RING_CAP);
	sl_port_txq_fini(&t);
	assert_int_equal(rte_mempool_avail_count(ports.p[0].pool), pool_free);
}

/* The reserved device (the fabric's) was left alone: only t_port came up (ring ports
 * are named net_ring_<name>); memif fabric links are left alone by their names. */
static void test_reserved(void **state)
{
	(void)state;
	assert_int_equal(ports.n, 1);
	assert_string_equal(ports.p[0].name, "net_ring_t_port");
	assert_true(sl_port_reserved("net_ring_t_fabric"));
	assert_true(sl_port_reserved(SL_PORT_FABRIC_PREFIX "2"));
	assert_false(sl_port_reserved("net_ring_t_port"));
	sl_port_reserve(NULL);
	assert_false(sl_port_reserved("net_ring_t_fabric"));
	sl_port_reserve("net_ring_t_fabric");
}

/* fini frees what still waits; a port that does not exist is refused. */
static void test_fini_and_errors(void **state)
{
	(void)state;
	struct sl_port_txq t;
	assert_int_equal(sl_port_txq_init(&t, ports.p[0].port_id, 0), 0);
	for (int i = 0; i < 3; i++)
		sl_port_txq_send(&t, frame());
	assert_int_equal(rte_mempool_avail_count(ports.p[0].pool), pool_free - 3);
	sl_port_txq_fini(&t);
	assert_int_equal(rte_mempool_avail_count(ports.p[0].pool), pool_free);
	assert_int_equal(rte_ring_count(tx_ring), 0);
	sl_port_txq_fini(&t); /* twice is harmless */
	assert_int_equal(sl_port_txq_init(&t, RTE_MAX_ETHPORTS - 1, 0), -ENODEV);
	assert_null(t.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_and_flush),
	    cmocka_unit_test(test_device_full),
	    cmocka_unit_test(test_fini_and_errors),
	    cmocka_unit_test(test_reserved),
	};
	return cmocka_run_group_tests_name("port_txq", tests, setup, NULL);
}
