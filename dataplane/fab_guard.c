/* fab_guard.c - keeps a memif link's shared memory mapped until no worker can be using it.
 * DPDK 22.11's memif PMD unmaps a link's regions from the EAL interrupt thread when the
 * peer goes away (memif_disconnect): it marks the link down first, but nothing holds it
 * off while a worker is inside a burst on that link, which then faults (seen under load
 * when a node is killed). munmap is interposed here: when the interrupt thread unmaps
 * while a node with memif links runs, it first waits
 * - for every worker inside a call into a fabric port (node_fabric.c counts them: odd
 *   while inside) to leave it, however long that takes (a worker preempted inside a burst
 *   on a loaded host once took longer than a bound of 200 ms, and the unmap landed under
 *   it), up to GUARD_STUCK_NS, after which it says so and goes ahead;
 * - then, bounded by GUARD_WAIT_NS, until every worker has begun a new round: a burst on
 *   another memif port (a client's) that started before the PMD marked the link down has
 *   then ended, and a later one sees the link down and touches nothing.
 * Every other munmap passes straight through. sluiced exports the symbol (ctl/meson.build). */
#include <dlfcn.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "log.h"
#include "node_internal.h"

#define GUARD_WAIT_NS 200000000ull /* a worker held longer (a test's hold): go ahead */
#define GUARD_STUCK_NS 10000000000ull /* inside one fabric port call this long: a bug */

static _Atomic(struct sl_node *) guard_node;
static atomic_uint guard_busy; /* munmaps waiting: disarm waits for them */
static atomic_ulong guard_waits;
static int (*real_munmap)(void *, size_t);
static __thread bool is_intr_thread; /* known to be the interrupt thread */

__attribute__((constructor)) static void guard_resolve(void)
{
	real_munmap = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
}

/* By its name (DPDK names it when it creates it, maybe after it started: a "no" is asked
 * again next time, which costs a prctl next to a munmap). */
static bool in_intr_thread(void)
{
	if (!is_intr_thread) {
		char name[32] = "";
		(void)pthread_getname_np(pthread_self(), name, sizeof(name));
		is_intr_thread = strcmp(name, "eal-intr-thread") == 0;
	}
	return is_intr_thread;
}

static void wait_workers(struct sl_node *n)
{
	uint64_t snap[SL_CFG_MAX_WORKERS], burst[SL_CFG_MAX_WORKERS];
	/* after the PMD's mark of the link down (program order on this thread) */
	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned w = 0; w < n->n_workers; w++) {
		burst[w] = atomic_load_explicit(&n->w[w].fab->burst, memory_order_seq_cst);
		snap[w] = atomic_load_explicit(&n->w[w].fab->rounds, memory_order_acquire);
	}
	struct timespec ts = {0, 20000};
	uint64_t start = nd_now_ns();
	for (unsigned w = 0; w < n->n_workers;) {
		if ((burst[w] & 1) == 0 ||
		    atomic_load_explicit(&n->w[w].fab->burst, memory_order_acquire) != burst[w]) {
			w++;
			continue;
		}
		if (nd_now_ns() - start >= GUARD_STUCK_NS) {
			SL_LOG(ERR, fabric, "worker %u inside one fabric port call for %.0f s: a "
					    "link's memory is unmapped anyway\n",
			       w, (double)GUARD_STUCK_NS / 1e9);
			w++;
			continue;
		}
		nanosleep(&ts, NULL);
	}
	/* bounded: GUARD_WAIT_NS. A worker in blocking file I/O (a region's image written,
	 * for hundreds of ms) is in no burst: it is not waited for, so the others are */
	start = nd_now_ns();
	for (unsigned w = 0; w < n->n_workers && nd_now_ns() - start < GUARD_WAIT_NS;) {
		if (atomic_load_explicit(&n->w[w].fab->rounds, memory_order_acquire) > snap[w] ||
		    atomic_load_explicit(&n->w[w].fab->off_fabric, memory_order_acquire)) {
			w++;
			continue;
		}
		nanosleep(&ts, NULL);
	}
	atomic_fetch_add(&guard_waits, 1);
}

int munmap(void *addr, size_t len)
{
	if (in_intr_thread()) {
		atomic_fetch_add(&guard_busy, 1);
		struct sl_node *n = atomic_load(&guard_node);
		if (n != NULL)
			wait_workers(n);
		atomic_fetch_sub(&guard_busy, 1);
	}
	if (real_munmap != NULL)
		return real_munmap(addr, len);
	return (int)syscall(SYS_munmap, addr, len); /* before the constructor ran */
}

void nd_fab_guard_arm(struct sl_node *n) { atomic_store(&guard_node, n); }

void nd_fab_guard_disarm(void)
{
	atomic_store(&guard_node, NULL);
	/* bounded: a waiting munmap ends within GUARD_STUCK_NS + GUARD_WAIT_NS */
	while (atomic_load(&guard_busy) != 0) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
}

unsigned long nd_fab_guard_waits(void) { return atomic_load(&guard_waits); }
