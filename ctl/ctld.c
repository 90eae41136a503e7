/* ctld.c - sluice-ctld, the control plane daemon: one raft group (id 0) over UDP between
 * its 1 or 3 replicas holds the region map and data nodes; the leader bootstraps the map,
 * takes joins and heartbeats, marks silent nodes down. One poll loop, no threads, no EAL. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "ctl.h"
#include "ctld.h"
#include "driver.h"
#include "raft.h"
#include "sl_le.h"

#define UDP_MAGIC 0x44435453u /* "STCD" */
#define UDP_HDR 16u           /* magic, cluster id, from, to */
#define UDP_MAX 65507u        /* the largest IPv4 UDP payload */
/* raft's messages must fit one datagram with our header: sized below 64 KiB */
#define RAFT_MSG_MAX (60u << 10)
#define RX_PER_ROUND 256
#define DUTY_NS 100000000ull         /* leader duties every 100 ms */
#define BOOTSTRAP_RETRY_NS 2000000000ull
#define PROPOSE_RETRY_NS 1000000000ull
/* a leader move that has not reached its target by then is reported failed (the target
 * stays preferred: the nodes hand over as soon as it can lead) */
#define MOVE_TIMEOUT_MS 15000u
/* protocol_switched (split_done, merge_done) is proposed again at most this often per region while
 * it is due */
#define SWITCH_RETRY_NS 500000000ull

struct ctld_stats {
	uint64_t udp_rx, udp_rx_bad, udp_rx_refused, udp_tx, udp_tx_too_big, udp_tx_errors;
	uint64_t proposals, proposals_failed, applied_refused;
	uint64_t joins, heartbeats, heartbeats_bad, not_leader;
	uint64_t nodes_marked_down, nodes_marked_up;
	uint64_t leaders_recorded; /* set_leader proposals */
	uint64_t moves_asked, moves_refused, moves_done, moves_failed, moves_balance, moves_drain;
	uint64_t switches_asked, switches_refused, switches_proposed; /* protocol switches */
	uint64_t core_moves_asked, core_moves_refused; /* an operator's core moves */
	/* replica moves: an operator's asked/refused, ctld's own proposed */
	uint64_t replica_moves_asked, replica_moves_refused, moves_decommission, moves_rebalance;
	uint64_t decommissions; /* decommission/recommission proposals */
	/* splits: an operator's asked/refused, split_done proposed */
	uint64_t splits_asked, splits_refused, splits_proposed;
	uint64_t auto_splits; /* ctld's own splits proposed (size or write load) */
	/* merges: an operator's asked/refused, merge_done proposed, merge moves ended done */
	uint64_t merges_asked, merges_refused, merges_proposed, merges;
	uint64_t auto_merges; /* ctld's own merges proposed (two small neighbours) */
	uint64_t learners_caught_up; /* replica moves whose learner caught up (seal asked) */
};

struct ctld {
	struct sl_ctld_conf cfg;
	struct sl_ctld_log log;
	struct sl_ctld_sm sm;
	struct sl_ctld_soft *soft;
	struct sl_cons_log view;
	struct sl_drv *drv;
	int udp;
	struct sockaddr_in peer_addr[SL_CTLD_MAX_REPLICAS];
	struct sl_ctl_server *srv;
	uint64_t seq_written, seq_durable;
	uint64_t next_pid;
	bool leader;
	bool failed;
	uint64_t next_duty_ns, bootstrap_sent_ns;
	uint64_t proposed_ns[SL_CTLD_MAX_NODES + 1]; /* last join/node_state proposal */
	uint64_t leader_proposed_ns[SL_CTLD_MAX_REGIONS]; /* last set_leader proposal */
	uint64_t move_proposed_id, move_proposed_ns;      /* the last transfer_leader */
	uint64_t move_end_proposed_ns[SL_CTLD_MAX_MOVES]; /* last move_end per ring slot */
	uint64_t switch_proposed_ns[SL_CTLD_MAX_REGIONS]; /* last protocol_switched/split_done/
							   * merge_done */
	/* a replica move's learner: the applied index it must reach before the seal (the
	 * highest its replicas reported when this leader first looked), per region, and the
	 * move that target is of */
	uint64_t learner_target[SL_CTLD_MAX_REGIONS];
	uint64_t learner_move[SL_CTLD_MAX_REGIONS];
	uint64_t learner_proposed_ns[SL_CTLD_MAX_REGIONS]; /* last learner_ready proposal */
	uint64_t balance_next_ns;                         /* the next balancing move, at most */
	uint64_t rebalance_next_ns;                       /* the next rebalance move, at most */
	uint64_t autosplit_next_ns;                       /* the next automatic split, at most */
	uint64_t automerge_next_ns;                       /* the next automatic merge, at most */
	struct sl_ctld_split_obs *split_obs; /* automatic splits: soft state of the leader */
	char autosplit_blocked[SL_CTLD_WHY_MAX]; /* a due region that cannot split, and why */
	char automerge_blocked[SL_CTLD_WHY_MAX]; /* a due pair that cannot merge, and why */
	struct ctld_stats st;
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- driver host */

static int host_install_snapshot(void *ctx, const struct sl_cons_snapshot *snap)
{
	(void)ctx;
	(void)snap;
	return -ENOTSUP; /* the metadata log is never compacted: no snapshot is ever sent */
}

static int host_save_hard_state(void *ctx, const struct sl_cons_hard_state *hs, uint64_t *pos)
{
	struct ctld *c = ctx;
	sl_ctld_log_set_hs(&c->log, hs);
	*pos = ++c->seq_written;
	return 0;
}

static int host_save_entry(void *ctx, const struct sl_cons_entry *e, uint64_t *pos)
{
	struct ctld *c = ctx;
	int rc = sl_ctld_log_append(&c->log, e);
	if (rc != 0) {
		fprintf(stderr, "sluice-ctld: writing log entry %" PRIu64 ": %s; this replica stops\n",
			e->index, strerror(-rc));
		c->failed = true; /* the driver goes silent; a restart recovers from the file */
		return rc;
	}
	*pos = ++c->seq_written;
	return 0;
}

static void host_send(void *ctx, const struct sl_cons_msg *m)
{
	struct ctld *c = ctx;
	if (m->len > UDP_MAX - UDP_HDR) {
		c->st.udp_tx_too_big++; /* a lost message: raft retries */
		return;
	}
	for (uint32_t i = 0; i < c->cfg.n_peers; i++) {
		if (c->cfg.peers[i].id != m->to)
			continue;
		uint8_t hdr[UDP_HDR];
		sl_put_u32(hdr, UDP_MAGIC);
		sl_put_u32(hdr + 4, c->cfg.cluster.cluster_id);
		sl_put_u32(hdr + 8, m->from);
		sl_put_u32(hdr + 12, m->to);
		struct iovec iov[2] = {{hdr, UDP_HDR}, {(void *)m->buf, m->len}};
		struct msghdr mh = {.msg_name = &c->peer_addr[i],
				    .msg_namelen = sizeof(c->peer_addr[i]),
				    .msg_iov = iov,
				    .msg_iovlen = 2};
		if (sendmsg(c->udp, &mh, MSG_DONTWAIT) < 0)
			c->st.udp_tx_errors++; /* full buffer or peer down: like a loss */
		else
			c->st.udp_tx++;
		return;
	}
}

static void host_apply(void *ctx, const struct sl_cons_entry *e)
{
	struct ctld *c = ctx;
	if (e->type != SL_CONS_ENTRY_NORMAL)
		return;
	char err[256];
	if (sl_ctld_sm_apply(&c->sm, e->data, e->len, err, sizeof(err)) != 0) {
		c->st.applied_refused++;
		fprintf(stderr, "sluice-ctld: entry %" PRIu64 " refused: %s\n", e->index, err);
	}
}

static void host_ack(void *ctx, const struct sl_cons_ack *a)
{
	struct ctld *c = ctx;
	if (a->status != SL_CONS_ACK_OK)
		c->st.proposals_failed++; /* the duties propose again if still needed */
}

static const struct sl_drv_host drv_host = {
	.install_snapshot = host_install_snapshot,
	.save_hard_state = host_save_hard_state,
	.save_entry = host_save_entry,
	.send = host_send,
	.apply = host_apply,
	.ack = host_ack,
};

/* Makes what the driver handed out durable, then tells it so. */
static void flush(struct ctld *c)
{
	if (c->seq_written == c->seq_durable)
		return;
	int rc = sl_ctld_log_sync(&c->log);
	if (rc != 0) {
		fprintf(stderr, "sluice-ctld: syncing the log: %s; this replica stops\n",
			strerror(-rc));
		sl_drv_storage_failed(c->drv, 0, rc);
		c->failed = true;
		return;
	}
	c->seq_durable = c->seq_written;
	sl_drv_durable(c->drv, c->seq_durable);
	sl_drv_persisted(c->drv, c->log.last_term, c->log.last);
}

static void pump(struct ctld *c)
{
	for (int i = 0; i < 16 && !c->failed && sl_drv_has_ready(c->drv); i++) {
		sl_drv_process(c->drv, 8);
		flush(c);
	}
}

static int propose(struct ctld *c, struct json_object *cmd)
{
	size_t len = 0;
	const char *text = sl_ctl_to_line(cmd, &len);
	int rc = text == NULL ? -ENOMEM
			      : sl_drv_propose(c->drv, ++c->next_pid, (const uint8_t *)text,
					       (uint32_t)len);
	json_object_put(cmd);
	if (rc == 0)
		c->st.proposals++;
	else
		c->st.proposals_failed++;
	return rc;
}

/* ---------------------------------------------------------------- network */

static int udp_open(struct ctld *c, char *err, size_t err_len)
{
	for (uint32_t i = 0; i < c->cfg.n_peers; i++) {
		struct sockaddr_in *a = &c->peer_addr[i];
		memset(a, 0, sizeof(*a));
		a->sin_family = AF_INET;
		a->sin_port = htons(c->cfg.peers[i].port);
		inet_pton(AF_INET, c->cfg.peers[i].host, &a->sin_addr); /* checked by the config */
	}
	c->udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->udp < 0) {
		snprintf(err, err_len, "UDP socket: %s", strerror(errno));
		return -errno;
	}
	for (uint32_t i = 0; i < c->cfg.n_peers; i++) {
		if (c->cfg.peers[i].id != c->cfg.id)
			continue;
		if (bind(c->udp, (struct sockaddr *)&c->peer_addr[i], sizeof(c->peer_addr[i])) < 0) {
			int rc = -errno;
			snprintf(err, err_len, "UDP %s:%u: %s", c->cfg.peers[i].host,
				 c->cfg.peers[i].port, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Datagrams from the other replicas: checked (header, cluster, sender address) before
 * raft sees them; what fails is counted and dropped, as a network loss. */
static void udp_poll(struct ctld *c)
{
	static uint8_t buf[UDP_MAX + 1];
	for (int n = 0; n < RX_PER_ROUND; n++) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t len = recvfrom(c->udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (len < 0)
			return; /* EAGAIN, or an ICMP error of an earlier send: nothing to read */
		c->st.udp_rx++;
		if ((size_t)len < UDP_HDR || (size_t)len > UDP_MAX || sl_get_u32(buf) != UDP_MAGIC ||
		    sl_get_u32(buf + 4) != c->cfg.cluster.cluster_id ||
		    sl_get_u32(buf + 12) != c->cfg.id) {
			c->st.udp_rx_bad++;
			continue;
		}
		uint32_t src = sl_get_u32(buf + 8);
		bool known = false;
		for (uint32_t i = 0; i < c->cfg.n_peers; i++)
			known = known || (c->cfg.peers[i].id == src && src != c->cfg.id &&
					  c->peer_addr[i].sin_addr.s_addr == from.sin_addr.s_addr &&
					  c->peer_addr[i].sin_port == from.sin_port);
		if (!known) {
			c->st.udp_rx_bad++;
			continue;
		}
		struct sl_cons_msg m = {0, src, c->cfg.id, (uint32_t)len - UDP_HDR, buf + UDP_HDR};
		if (sl_drv_step(c->drv, &m) != 0)
			c->st.udp_rx_refused++;
		pump(c);
	}
}

/* ---------------------------------------------------------------- leader duties */

static void move_duties(struct ctld *c, uint64_t now, uint64_t timeout);
static void switch_duties(struct ctld *c, uint64_t now, uint64_t timeout);

static void duties(struct ctld *c, uint64_t now)
{
	struct sl_cons_status s;
	sl_drv_status(c->drv, &s);
	bool leader = s.role == SL_CONS_ROLE_LEADER;
	if (leader && !c->leader) {
		/* a new leadership starts with no heartbeats: every node gets a full
		 * timeout to report before it is marked down, and none is marked up
		 * before it reports */
		memset(c->soft, 0, sizeof(*c->soft));
		for (uint32_t i = 0; i <= SL_CTLD_MAX_NODES; i++)
			c->soft->last_hb_ns[i] = now;
		memset(c->proposed_ns, 0, sizeof(c->proposed_ns));
		memset(c->leader_proposed_ns, 0, sizeof(c->leader_proposed_ns));
		memset(c->move_end_proposed_ns, 0, sizeof(c->move_end_proposed_ns));
		memset(c->switch_proposed_ns, 0, sizeof(c->switch_proposed_ns));
		memset(c->learner_move, 0, sizeof(c->learner_move));
		memset(c->learner_proposed_ns, 0, sizeof(c->learner_proposed_ns));
		c->move_proposed_id = 0;
		/* a new leader balances only after the nodes reported to it for a while */
		c->balance_next_ns = now + (uint64_t)c->cfg.balance_interval_ms * 1000000ull;
		c->rebalance_next_ns = c->balance_next_ns;
		/* the automatic split's sustain windows start over with the heartbeats */
		memset(c->split_obs, 0, sizeof(*c->split_obs));
		c->autosplit_next_ns = c->automerge_next_ns = c->balance_next_ns;
		c->autosplit_blocked[0] = c->automerge_blocked[0] = '\0';
		c->bootstrap_sent_ns = 0;
	}
	c->leader = leader;
	if (!leader || now < c->next_duty_ns)
		return;
	c->next_duty_ns = now + DUTY_NS;
	if (!c->sm.bootstrapped) {
		/* once the leader's log is applied (a bootstrap may already be in it) */
		if (s.commit_index == 0 || sl_drv_applied(c->drv) < s.commit_index ||
		    (c->bootstrap_sent_ns != 0 && now - c->bootstrap_sent_ns < BOOTSTRAP_RETRY_NS))
			return;
		char err[256];
		struct json_object *cmd = sl_ctld_plan(&c->cfg.cluster, err, sizeof(err));
		if (cmd == NULL) {
			fprintf(stderr, "sluice-ctld: bootstrap: %s\n", err);
			return;
		}
		c->bootstrap_sent_ns = now;
		if (propose(c, cmd) == 0)
			fprintf(stderr, "sluice-ctld: replica %u proposes the bootstrap of cluster %u "
				"(%u regions, RF %u, %u nodes)\n",
				c->cfg.id, c->cfg.cluster.cluster_id, c->cfg.cluster.regions,
				c->cfg.cluster.replication, c->cfg.cluster.nodes);
		return;
	}
	uint64_t timeout = (uint64_t)c->cfg.node_timeout_ms * 1000000ull;
	for (uint32_t i = 1; i <= c->sm.n_nodes; i++) {
		uint32_t state = c->sm.nodes[i].state;
		uint64_t age = now - c->soft->last_hb_ns[i];
		bool down = state == SL_CTLD_UP && age >= timeout;
		bool up = state == SL_CTLD_DOWN && c->soft->seen[i] && age < timeout;
		if ((!down && !up) || now - c->proposed_ns[i] < PROPOSE_RETRY_NS)
			continue;
		c->proposed_ns[i] = now;
		if (propose(c, sl_ctld_cmd_node_state(i, up)) == 0) {
			fprintf(stderr, "sluice-ctld: node %u %s (last heartbeat %" PRIu64 " ms ago)\n",
				i, up ? "is back up" : "is down", age / 1000000);
			if (up)
				c->st.nodes_marked_up++;
			else
				c->st.nodes_marked_down++;
		}
	}
	/* observed region leaders go to the log when they change, so every replica (and the
	 * next leader) shows them; a term change alone is not worth an entry */
	for (uint32_t r = 0; r < c->sm.n_regions; r++) {
		struct sl_ctld_observed ob;
		const struct sl_ctld_region *reg = &c->sm.regions[r];
		if (sl_ctld_region_retired(&c->sm, r) || /* merged away: nobody leads it */
		    sl_ctld_observe(&c->sm, c->soft, r, now, timeout, &ob) == 0 || ob.leader == 0 ||
		    ob.leader == reg->observed || now - c->leader_proposed_ns[r] < PROPOSE_RETRY_NS)
			continue;
		/* what the log would refuse is not proposed (it would be, again and again) */
		if (reg->observed != 0 ? ob.term <= reg->observed_term : ob.term < reg->observed_term)
			continue;
		c->leader_proposed_ns[r] = now;
		if (propose(c, sl_ctld_cmd_set_leader(r, ob.leader, ob.term)) == 0)
			c->st.leaders_recorded++;
	}
	sl_ctld_split_observe(&c->sm, c->soft, now, timeout, &c->cfg.split, c->split_obs);
	switch_duties(c, now, timeout);
	move_duties(c, now, timeout);
}

/* A region whose replicas all applied the seal of its active segment goes on under its
 * next protocol: protocol_switched opens segment epoch + 1 (the nodes see it in the map);
 * a split pending: split_done opens it in two regions, the second one new; a merge
 * pending: once its right neighbour's replicas sealed too, merge_done opens it over both
 * ranges and retires the neighbour (which proposes nothing of its own meanwhile). */
/* A replica move's learner that applied what the region's replicas had applied when this
 * leader first looked has caught up: learner_ready asks the seal. */
static void learner_duty(struct ctld *c, uint32_t r, uint64_t now, uint64_t timeout, uint64_t wall)
{
	const struct sl_ctld_region *reg = &c->sm.regions[r];
	const struct sl_ctld_move *m = NULL;
	for (uint64_t id = c->sm.n_moves; id > 0 && id + SL_CTLD_MAX_MOVES > c->sm.n_moves; id--) {
		const struct sl_ctld_move *x = sl_ctld_move_get(&c->sm, id);
		if (x != NULL && x->region == r && x->state == SL_CTLD_MOVE_RUNNING &&
		    x->to == reg->learner) {
			m = x;
			break;
		}
	}
	if (m == NULL)
		return;
	if (c->learner_move[r] != m->id || c->learner_target[r] == 0) {
		c->learner_move[r] = m->id;
		c->learner_target[r] = sl_ctld_learner_target(&c->sm, c->soft, r, now, timeout);
		if (c->learner_target[r] != 0)
			fprintf(stderr, "sluice-ctld: region %u: node %u catches up as a learner of "
				"epoch %u before the seal (to index %" PRIu64 ")\n", r, reg->learner,
				reg->epoch, c->learner_target[r]);
	}
	char waiting[SL_CTLD_WHY_MAX];
	if ((c->learner_proposed_ns[r] != 0 && now - c->learner_proposed_ns[r] < SWITCH_RETRY_NS) ||
	    !sl_ctld_learner_caught_up(&c->sm, c->soft, r, c->learner_target[r], now, timeout,
				       waiting, sizeof(waiting)))
		return;
	c->learner_proposed_ns[r] = now; /* not the switch's: it may follow at once */
	if (propose(c, sl_ctld_cmd_learner_ready(m->id, r, wall)) == 0) {
		c->st.learners_caught_up++;
		fprintf(stderr, "sluice-ctld: region %u: node %u caught up as a learner (applied "
			"%" PRIu64 " of %" PRIu64 "): sealing epoch %u\n", r, reg->learner,
			c->soft->hb[reg->learner][r].applied_index, c->learner_target[r], reg->epoch);
	}
}

static void switch_duties(struct ctld *c, uint64_t now, uint64_t timeout)
{
	uint64_t wall = wall_ms();
	uint32_t new_ids = 0; /* split_done proposed in this round: each makes the next id */
	for (uint32_t r = 0; r < c->sm.n_regions; r++) {
		const struct sl_ctld_region *reg = &c->sm.regions[r];
		char waiting[SL_CTLD_WHY_MAX];
		uint32_t with = reg->merge_with - 1;
		if (reg->learner != 0 && reg->next_protocol[0] == '\0') {
			learner_duty(c, r, now, timeout, wall);
			continue;
		}
		if (reg->next_protocol[0] == '\0' ||
		    (c->switch_proposed_ns[r] != 0 && now - c->switch_proposed_ns[r] < SWITCH_RETRY_NS) ||
		    sl_ctld_merging_into(&c->sm, r) != UINT32_MAX ||
		    !sl_ctld_switch_ready(&c->sm, c->soft, r, now, timeout, waiting, sizeof(waiting)) ||
		    (reg->merge_with != 0 && !sl_ctld_switch_ready(&c->sm, c->soft, with, now, timeout,
								   waiting, sizeof(waiting))))
			continue;
		c->switch_proposed_ns[r] = now;
		if (reg->merge_with != 0) {
			const struct sl_ctld_region *s = &c->sm.regions[with];
			if (propose(c, sl_ctld_cmd_merge_done(r, with, reg->epoch + 1, wall)) != 0)
				continue;
			c->st.merges_proposed++;
			fprintf(stderr, "sluice-ctld: regions %u and %u: every replica sealed epochs %u "
				"and %u; epoch %u of region %u covers [0x%016" PRIx64 ", 0x%016" PRIx64
				"], region %u is retired\n", r, with, reg->epoch, s->epoch,
				reg->epoch + 1, r, reg->hash_lo, s->hash_hi, with);
			continue;
		}
		if (reg->split_at != 0) {
			uint32_t new_id = c->sm.n_regions + new_ids;
			if (propose(c, sl_ctld_cmd_split_done(r, reg->epoch + 1, reg->split_at, new_id,
							      wall)) != 0)
				continue;
			new_ids++;
			c->st.splits_proposed++;
			fprintf(stderr, "sluice-ctld: region %u: every replica sealed epoch %u; epoch "
				"%u is split at 0x%016" PRIx64 ": region %u below, new region %u from "
				"there\n", r, reg->epoch, reg->epoch + 1, reg->split_at, r, new_id);
			continue;
		}
		if (propose(c, sl_ctld_cmd_protocol_switched(r, reg->epoch + 1, reg->next_protocol,
							     wall)) == 0) {
			c->st.switches_proposed++;
			fprintf(stderr, "sluice-ctld: region %u: every replica sealed epoch %u; epoch "
				"%u runs %s\n", r, reg->epoch, reg->epoch + 1, reg->next_protocol);
		}
	}
}

/* Running leader moves end when the replicas report the target leading (done), when
 * the target is marked down, or after MOVE_TIMEOUT_MS (failed, with why). */
/* The id of the next move this leader proposes: after the last applied and the last it
 * proposed (a balancing move and an operator's may be in flight together). */
static uint64_t next_move_id(const struct ctld *c)
{
	return (c->move_proposed_id > c->sm.n_moves ? c->move_proposed_id : c->sm.n_moves) + 1;
}

/* A move this leader proposed is not applied yet (and not given up on). */
static bool move_in_flight(const struct ctld *c, uint64_t now)
{
	return c->move_proposed_id > c->sm.n_moves && now - c->move_proposed_ns < PROPOSE_RETRY_NS;
}

/* ctld's own leader moves: drains move after move, the balance (by count, or by the write
 * rates this leader observed, [cluster] balance_by) at most once per interval. */
static void balance_duty(struct ctld *c, uint64_t now, uint64_t wall)
{
	uint32_t region = 0, to = 0;
	char why[SL_CTLD_WHY_MAX];
	if (move_in_flight(c, now))
		return;
	int next = sl_ctld_balance_next_by(&c->sm, wall, &c->cfg.balance, c->split_obs, &region,
					   &to, why, sizeof(why));
	/* a drain goes move after move; the balance (a down node's regions too) at most once
	 * per interval, and not at all when it is off */
	if (next == 0 || (next != SL_CTLD_MOVE_DRAIN + 1 &&
			  (c->cfg.balance_interval_ms == 0 || now < c->balance_next_ns)))
		return;
	uint32_t kind = (uint32_t)next - 1;
	if (kind == SL_CTLD_MOVE_BALANCE)
		c->balance_next_ns = now + (uint64_t)c->cfg.balance_interval_ms * 1000000ull;
	uint64_t id = next_move_id(c);
	uint32_t from = c->sm.regions[region].observed;
	if (propose(c, sl_ctld_cmd_balance(id, region, to, from, wall, kind, why)) != 0)
		return;
	c->move_proposed_id = id;
	c->move_proposed_ns = now;
	if (kind == SL_CTLD_MOVE_DRAIN)
		c->st.moves_drain++;
	else
		c->st.moves_balance++;
	fprintf(stderr, "sluice-ctld: move %" PRIu64 " (%s): region %u preferred leader %u -> "
		"node %u%s%s\n", id, kind == SL_CTLD_MOVE_DRAIN ? "drain" : "balance", region,
		c->sm.regions[region].leader, to, why[0] ? ": " : "", why);
}

/* ctld's own replica moves: off a decommissioning node (one after the other, whenever
 * no replica move runs), else the rebalance toward nodes holding fewer (when no move of
 * any kind runs, at most once per balance interval; not at all when it is 0). */
static void replica_duty(struct ctld *c, uint64_t now, uint64_t wall, bool any_running)
{
	uint32_t region = 0, from = 0, to = 0, kind = 0;
	char blocked[SL_CTLD_WHY_MAX];
	if (move_in_flight(c, now) || sl_ctld_replica_move_running(&c->sm))
		return;
	if (sl_ctld_decommission_next(&c->sm, &region, &from, &to, blocked, sizeof(blocked)) > 0) {
		kind = SL_CTLD_MOVE_DECOMMISSION;
	} else if (!any_running && c->cfg.balance_interval_ms != 0 && now >= c->rebalance_next_ns &&
		   sl_ctld_rebalance_next(&c->sm, wall, &region, &from, &to) > 0) {
		kind = SL_CTLD_MOVE_REBALANCE;
		c->rebalance_next_ns = now + (uint64_t)c->cfg.balance_interval_ms * 1000000ull;
	} else {
		return;
	}
	uint64_t id = next_move_id(c);
	if (propose(c, sl_ctld_cmd_move_replica(id, region, from, to, kind, wall)) != 0)
		return;
	c->move_proposed_id = id;
	c->move_proposed_ns = now;
	if (kind == SL_CTLD_MOVE_DECOMMISSION)
		c->st.moves_decommission++;
	else
		c->st.moves_rebalance++;
	fprintf(stderr, "sluice-ctld: move %" PRIu64 " (%s): region %u replica node %u -> node "
		"%u\n", id, kind == SL_CTLD_MOVE_DECOMMISSION ? "decommission" : "rebalance",
		region, from, to);
}

/* One of ctld's own moves (id, command cmd) proposed at now; the next of its kind no
 * earlier than one balance interval later (*next_ns, set whether or not it went out). */
static bool propose_paced(struct ctld *c, struct json_object *cmd, uint64_t id, uint64_t now,
			  uint64_t *next_ns)
{
	*next_ns = now + (uint64_t)c->cfg.balance_interval_ms * 1000000ull;
	if (propose(c, cmd) != 0)
		return false;
	c->move_proposed_id = id;
	c->move_proposed_ns = now;
	return true;
}

/* ctld's own split of a region whose size or write rate stayed above its threshold: at
 * most one per balance interval (none when it is 0), never while any region switches or
 * a replica move runs (sl_ctld_split_next), cut at the middle of the range. */
static void split_duty(struct ctld *c, uint64_t now, uint64_t wall)
{
	uint32_t region = 0;
	uint64_t at = 0;
	char why[SL_CTLD_WHY_MAX], err[SL_CTLD_WHY_MAX];
	if (c->cfg.balance_interval_ms == 0 || move_in_flight(c, now))
		return;
	int next = sl_ctld_split_next(&c->sm, c->split_obs, now / 1000000ull, &c->cfg.split,
				      &region, why, sizeof(why));
	if (next == 0) {
		snprintf(c->autosplit_blocked, sizeof(c->autosplit_blocked), "%s", why);
		return;
	}
	c->autosplit_blocked[0] = '\0';
	if (now < c->autosplit_next_ns ||
	    sl_ctld_check_split(&c->sm, region, 0, false, &at, err, sizeof(err)) != 0)
		return;
	uint64_t id = next_move_id(c);
	if (!propose_paced(c, sl_ctld_cmd_autosplit(id, region, at, wall, why), id, now,
			   &c->autosplit_next_ns))
		return;
	c->st.auto_splits++;
	fprintf(stderr, "sluice-ctld: move %" PRIu64 " (auto-split): region %u [0x%016" PRIx64
		", 0x%016" PRIx64 "] splits at 0x%016" PRIx64 ": %s\n", id, region,
		c->sm.regions[region].hash_lo, c->sm.regions[region].hash_hi, at, why);
}

/* ctld's own merge of a region and its right neighbour, small together for long enough
 * ([cluster] merge_bytes, merge_points_per_s): at most one per balance interval (none
 * when it is 0), never while any region switches or a replica move runs
 * (sl_ctld_merge_next). */
static void merge_duty(struct ctld *c, uint64_t now, uint64_t wall)
{
	uint32_t region = 0, with = 0;
	char why[SL_CTLD_WHY_MAX];
	if (c->cfg.balance_interval_ms == 0 || move_in_flight(c, now))
		return;
	int next = sl_ctld_merge_next(&c->sm, c->split_obs, now / 1000000ull, &c->cfg.split,
				      &region, &with, why, sizeof(why));
	if (next == 0) {
		snprintf(c->automerge_blocked, sizeof(c->automerge_blocked), "%s", why);
		return;
	}
	c->automerge_blocked[0] = '\0';
	if (now < c->automerge_next_ns)
		return;
	uint64_t id = next_move_id(c);
	if (!propose_paced(c, sl_ctld_cmd_automerge(id, region, with, wall, why), id, now,
			   &c->automerge_next_ns))
		return;
	c->st.auto_merges++;
	fprintf(stderr, "sluice-ctld: move %" PRIu64 " (auto-merge): region %u [0x%016" PRIx64
		", 0x%016" PRIx64 "] takes region %u [0x%016" PRIx64 ", 0x%016" PRIx64 "]: %s\n",
		id, region, c->sm.regions[region].hash_lo, c->sm.regions[region].hash_hi, with,
		c->sm.regions[with].hash_lo, c->sm.regions[with].hash_hi, why);
}

/* ctld's own split or merge toward [cluster] regions_target live regions: at most one
 * per balance interval (none when it is 0), never while any region switches or a replica
 * move runs (sl_ctld_count_next); recorded as an auto-split or auto-merge with its why. */
static void count_duty(struct ctld *c, uint64_t now, uint64_t wall)
{
	uint32_t region = 0, with = 0;
	uint64_t at = 0;
	char why[SL_CTLD_WHY_MAX], err[SL_CTLD_WHY_MAX];
	if (c->cfg.balance_interval_ms == 0 || move_in_flight(c, now))
		return;
	int next = sl_ctld_count_next(&c->sm, &c->cfg.split, &region, &with, why, sizeof(why));
	if (next == 0) {
		if (c->cfg.split.regions_target != 0)
			snprintf(c->autosplit_blocked, sizeof(c->autosplit_blocked), "%s", why);
		return;
	}
	c->autosplit_blocked[0] = '\0';
	if (now < c->autosplit_next_ns ||
	    (next == 1 && sl_ctld_check_split(&c->sm, region, 0, false, &at, err, sizeof(err)) != 0))
		return;
	uint64_t id = next_move_id(c);
	struct json_object *cmd = next == 1 ? sl_ctld_cmd_autosplit(id, region, at, wall, why)
					    : sl_ctld_cmd_automerge(id, region, with, wall, why);
	if (!propose_paced(c, cmd, id, now, &c->autosplit_next_ns))
		return;
	if (next == 1)
		c->st.auto_splits++;
	else
		c->st.auto_merges++;
	fprintf(stderr, "sluice-ctld: move %" PRIu64 " (%s): region %u %s: %s\n", id,
		next == 1 ? "auto-split" : "auto-merge", region,
		next == 1 ? "splits at its middle" : "takes its right neighbour", why);
}

static void move_duties(struct ctld *c, uint64_t now, uint64_t timeout)
{
	uint64_t first = c->sm.n_moves > SL_CTLD_MAX_MOVES ? c->sm.n_moves - SL_CTLD_MAX_MOVES + 1 : 1;
	uint64_t wall = wall_ms();
	bool running = false, any_running = false;
	for (uint64_t id = first; id <= c->sm.n_moves; id++) {
		const struct sl_ctld_move *m = sl_ctld_move_get(&c->sm, id);
		uint64_t *last = &c->move_end_proposed_ns[(id - 1) % SL_CTLD_MAX_MOVES];
		if (m == NULL)
			continue;
		bool proto = sl_ctld_move_is_switch(m->kind);
		/* a protocol switch or replica move may wait long (for a node that is down):
		 * leader moves go on meanwhile, on other regions (balance leaves a switching one
		 * alone) */
		running = running || (m->state == SL_CTLD_MOVE_RUNNING && !proto);
		any_running = any_running || m->state == SL_CTLD_MOVE_RUNNING;
		if (m->state != SL_CTLD_MOVE_RUNNING || now - *last < PROPOSE_RETRY_NS)
			continue;
		struct sl_ctld_observed ob;
		char why[SL_CTLD_WHY_MAX] = "";
		bool done = false;
		if (proto) {
			/* never failed by time: a seal cannot be undone, the switch only goes on;
			 * a replica move that switched onto a node now down fails (the region
			 * must take the next move, off that node) */
			char waiting[SL_CTLD_WHY_MAX];
			bool stuck = sl_ctld_replica_move_stuck(&c->sm, m, why, sizeof(why));
			const struct sl_ctld_region *mr = &c->sm.regions[m->region];
			if (!stuck && mr->learner != 0 && mr->learner == m->to &&
			    mr->next_protocol[0] == '\0' &&
			    wall > m->start_ms + c->cfg.learner_timeout_ms) {
				/* nothing sealed yet: giving up leaves the region as it was */
				char w[SL_CTLD_WHY_MAX];
				(void)sl_ctld_learner_caught_up(&c->sm, c->soft, m->region,
								c->learner_target[m->region], now,
								timeout, w, sizeof(w));
				snprintf(why, sizeof(why), "node %u not caught up as a learner in "
					 "%u ms (%.50s): nothing sealed, region %u as it was",
					 m->to, c->cfg.learner_timeout_ms, w, m->region);
				stuck = true;
			}
			if (!stuck && !sl_ctld_switch_done(&c->sm, c->soft, m, now, timeout, waiting,
							   sizeof(waiting)))
				continue;
			done = !stuck;
			if (stuck)
				;
			else if (m->kind == SL_CTLD_MOVE_PROTOCOL)
				snprintf(why, sizeof(why), "every replica runs epoch %u under %s",
					 c->sm.regions[m->region].epoch, m->to_protocol);
			else if (m->kind == SL_CTLD_MOVE_SPLIT)
				snprintf(why, sizeof(why), "split at 0x%016" PRIx64 ": every replica "
					 "runs epoch %u of regions %u and %u", m->split_at,
					 c->sm.regions[m->region].epoch, m->region,
					 sl_ctld_split_child(&c->sm, m));
			else if (m->kind == SL_CTLD_MOVE_AUTOSPLIT) /* keeps the reason it ran */
				snprintf(why, sizeof(why), "%.90s; done: regions %u and %u run epoch %u",
					 m->why, m->region, sl_ctld_split_child(&c->sm, m),
					 c->sm.regions[m->region].epoch);
			else if (m->kind == SL_CTLD_MOVE_MERGE)
				snprintf(why, sizeof(why), "merge: every replica runs epoch %u of region "
					 "%u, covering [0x%016" PRIx64 ", 0x%016" PRIx64 "] (region %u "
					 "retired)", c->sm.regions[m->region].epoch, m->region,
					 c->sm.regions[m->region].hash_lo,
					 c->sm.regions[m->region].hash_hi, m->merge_with - 1);
			else if (m->kind == SL_CTLD_MOVE_CORE)
				snprintf(why, sizeof(why), "every replica runs epoch %u on core %u",
					 c->sm.regions[m->region].epoch, m->core - 1);
			else if (m->kind == SL_CTLD_MOVE_AUTOMERGE) /* keeps the reason it ran */
				snprintf(why, sizeof(why), "%.90s; done: region %u runs epoch %u, "
					 "region %u retired", m->why, m->region,
					 c->sm.regions[m->region].epoch, m->merge_with - 1);
			else
				snprintf(why, sizeof(why), "node %u replaced node %u: every replica "
					 "runs epoch %u", m->to, m->from, c->sm.regions[m->region].epoch);
		} else if (sl_ctld_observe(&c->sm, c->soft, m->region, now, timeout, &ob) > 0 &&
		    ob.leader == m->to) {
			done = true;
			/* a balance by rate keeps the loads it ran for */
			snprintf(why, sizeof(why), "%.90s%snode %u leads region %u (term %" PRIu64 ")",
				 m->why, m->why[0] ? "; done: " : "", m->to, m->region, ob.term);
		} else if (c->sm.nodes[m->to].state != SL_CTLD_UP) {
			snprintf(why, sizeof(why), "node %u went down before it took the lead", m->to);
		} else if (wall > m->start_ms + MOVE_TIMEOUT_MS) {
			snprintf(why, sizeof(why),
				 "node %u did not lead region %u within %u s (leader reported: %u); "
				 "it stays the preferred leader and takes over once it can",
				 m->to, m->region, MOVE_TIMEOUT_MS / 1000, ob.leader);
		} else {
			continue;
		}
		*last = now;
		if (propose(c, sl_ctld_cmd_move_end(id, done, why, wall)) == 0) {
			if (proto)
				fprintf(stderr, "sluice-ctld: move %" PRIu64 " (region %u %s -> %s, "
					"nodes %u -> %u) %s: %s\n", id, m->region, m->from_protocol,
					m->to_protocol, m->from, m->to, done ? "done" : "failed", why);
			else
				fprintf(stderr, "sluice-ctld: move %" PRIu64 " (region %u to node %u) %s: "
					"%s\n", id, m->region, m->to, done ? "done" : "failed", why);
			if (done)
				c->st.moves_done++;
			else
				c->st.moves_failed++;
			if (done && sl_ctld_move_is_merge(m->kind))
				c->st.merges++;
		}
	}
	if (!running) /* one move at a time: balancing waits for the others to end */
		balance_duty(c, now, wall);
	replica_duty(c, now, wall, any_running);
	split_duty(c, now, wall);
	merge_duty(c, now, wall);
	count_duty(c, now, wall);
}

/* ---------------------------------------------------------------- ctl commands */

#define CTL_ERR(code, ...)                                                                  \
	do {                                                                                \
		*err_code = (code);                                                         \
		snprintf(err_msg, err_len, __VA_ARGS__);                                    \
		return -EINVAL;                                                             \
	} while (0)

static struct json_object *status_json(struct ctld *c)
{
	struct sl_cons_status s;
	sl_drv_status(c->drv, &s);
	struct json_object *o = json_object_new_object(), *m = json_object_new_array();
	json_object_object_add(o, "id", json_object_new_int64(c->cfg.id));
	json_object_object_add(o, "role", json_object_new_string(sl_cons_role_name(s.role)));
	json_object_object_add(o, "term", json_object_new_int64((int64_t)s.term));
	json_object_object_add(o, "leader",
			       s.leader ? json_object_new_int64(s.leader) : NULL);
	json_object_object_add(o, "commit_index", json_object_new_int64((int64_t)s.commit_index));
	json_object_object_add(o, "applied_index",
			       json_object_new_int64((int64_t)sl_drv_applied(c->drv)));
	json_object_object_add(o, "last_index", json_object_new_int64((int64_t)s.last_index));
	for (uint32_t i = 0; i < c->cfg.n_peers; i++) {
		char addr[96];
		snprintf(addr, sizeof(addr), "%s:%u", c->cfg.peers[i].host, c->cfg.peers[i].port);
		struct json_object *p = json_object_new_object();
		json_object_object_add(p, "id", json_object_new_int64(c->cfg.peers[i].id));
		json_object_object_add(p, "address", json_object_new_string(addr));
		json_object_array_add(m, p);
	}
	json_object_object_add(o, "members", m);
	json_object_object_add(o, "bootstrapped", json_object_new_boolean(c->sm.bootstrapped));
	json_object_object_add(o, "cluster_id", json_object_new_int64(c->sm.cluster_id));
	json_object_object_add(o, "nodes", json_object_new_int64(c->sm.n_nodes));
	json_object_object_add(o, "regions", json_object_new_int64(c->sm.n_regions));
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "version", json_object_new_string(SLUICE_VERSION));
	/* how this replica balances, as its config says (the leader's is the one in use) */
	struct json_object *bal = json_object_new_object();
	json_object_object_add(bal, "by", json_object_new_string(c->cfg.balance.by ==
							 SL_CTLD_BALANCE_RATE ? "rate" : "count"));
	json_object_object_add(bal, "interval_ms",
			       json_object_new_int64(c->cfg.balance_interval_ms));
	json_object_object_add(bal, "rate_slack_pct",
			       json_object_new_int64(c->cfg.balance.rate_slack_pct));
	json_object_object_add(o, "balance", bal);
	struct json_object *k = json_object_new_object();
#define CNT(f) json_object_object_add(k, #f, json_object_new_int64((int64_t)c->st.f))
	CNT(udp_rx);
	CNT(udp_rx_bad);
	CNT(udp_rx_refused);
	CNT(udp_tx);
	CNT(udp_tx_too_big);
	CNT(udp_tx_errors);
	CNT(proposals);
	CNT(proposals_failed);
	CNT(applied_refused);
	CNT(joins);
	CNT(heartbeats);
	CNT(heartbeats_bad);
	CNT(not_leader);
	CNT(nodes_marked_down);
	CNT(nodes_marked_up);
	CNT(leaders_recorded);
	CNT(moves_asked);
	CNT(moves_refused);
	CNT(moves_done);
	CNT(moves_failed);
	CNT(moves_balance);
	CNT(moves_drain);
	CNT(switches_asked);
	CNT(core_moves_asked);
	CNT(core_moves_refused);
	CNT(switches_refused);
	CNT(switches_proposed);
	CNT(replica_moves_asked);
	CNT(replica_moves_refused);
	CNT(moves_decommission);
	CNT(moves_rebalance);
	CNT(decommissions);
	CNT(splits_asked);
	CNT(splits_refused);
	CNT(splits_proposed);
	CNT(auto_splits);
	CNT(merges_asked);
	CNT(merges_refused);
	CNT(merges_proposed);
	CNT(merges);
	CNT(auto_merges);
	CNT(learners_caught_up);
#undef CNT
	json_object_object_add(k, "log_torn_bytes_cut",
			       json_object_new_int64((int64_t)c->log.torn_bytes));
	json_object_object_add(o, "counters", k);
	return o;
}

/* Writes go to the leader; a follower names it so the caller can try elsewhere. */
static int need_leader(struct ctld *c, const char **err_code, char *err_msg, size_t err_len)
{
	if (c->leader && !c->failed)
		return 0;
	struct sl_cons_status s;
	sl_drv_status(c->drv, &s);
	c->st.not_leader++;
	if (s.leader != SL_CONS_NODE_NONE && s.leader != c->cfg.id)
		CTL_ERR("not_leader", "ctld replica %u is not the leader; the leader is replica %u",
			c->cfg.id, s.leader);
	CTL_ERR("not_leader", "ctld replica %u is not the leader; no leader is known now",
		c->cfg.id);
}

static int arg_uint(struct json_object *args, const char *key, uint64_t min, uint64_t max,
		    uint64_t *out)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(args, key, &v) || !json_object_is_type(v, json_type_int))
		return -EINVAL;
	int64_t x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
		return -EINVAL;
	*out = (uint64_t)x;
	return 0;
}

static int ctl_join(struct ctld *c, struct json_object *args, struct json_object **result,
		    const char **err_code, char *err_msg, size_t err_len)
{
	int rc = need_leader(c, err_code, err_msg, err_len);
	if (rc != 0)
		return rc;
	if (!c->sm.bootstrapped)
		CTL_ERR("unavailable", "the cluster is not bootstrapped yet; try again");
	uint64_t node = 0, cores = 0, lineage = 0;
	struct json_object *a = NULL;
	if (arg_uint(args, "node", 1, c->sm.n_nodes, &node) != 0)
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "join: node must be an id in 1..%u", c->sm.n_nodes);
	if (arg_uint(args, "cores", 1, SL_CTLD_MAX_CORES, &cores) != 0)
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "join: cores must be in 1..%u", SL_CTLD_MAX_CORES);
	/* the count its data dir was made with, when its workers changed since */
	if (json_object_object_get_ex(args, "lineage_cores", &a) &&
	    arg_uint(args, "lineage_cores", 1, SL_CTLD_MAX_CORES, &lineage) != 0)
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "join: lineage_cores must be in 1..%u",
			SL_CTLD_MAX_CORES);
	if (lineage == cores)
		lineage = 0;
	if (!json_object_object_get_ex(args, "address", &a) ||
	    !json_object_is_type(a, json_type_string) ||
	    json_object_get_string_len(a) >= SL_CTLD_ADDR_MAX)
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "join: address must be a string under %u bytes",
			SL_CTLD_ADDR_MAX);
	c->st.joins++;
	const struct sl_ctld_node *n = &c->sm.nodes[node];
	uint64_t now = now_ns();
	c->soft->last_hb_ns[node] = now; /* talking to us counts as alive */
	c->soft->seen[node] = true;
	bool same = n->state == SL_CTLD_UP && n->cores == cores && n->lineage_cores == lineage &&
		    strcmp(n->address, json_object_get_string(a)) == 0;
	if (!same && now - c->proposed_ns[node] >= PROPOSE_RETRY_NS / 4) {
		c->proposed_ns[node] = now;
		rc = propose(c, sl_ctld_cmd_join((uint32_t)node, json_object_get_string(a),
						 (uint32_t)cores, (uint32_t)lineage));
		if (rc != 0)
			CTL_ERR("busy", "join: proposal refused: %s", strerror(-rc));
	}
	/* answered at once: the node asks again until the join is applied */
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "joined", json_object_new_boolean(same));
	json_object_object_add(o, "leader", json_object_new_int64(c->cfg.id));
	*result = o;
	return 0;
}

static int ctl_heartbeat(struct ctld *c, struct json_object *args, struct json_object **result,
			 const char **err_code, char *err_msg, size_t err_len)
{
	int rc = need_leader(c, err_code, err_msg, err_len);
	if (rc != 0)
		return rc;
	uint64_t node = 0;
	struct json_object *regions = NULL;
	if (!c->sm.bootstrapped || arg_uint(args, "node", 1, c->sm.n_nodes, &node) != 0 ||
	    c->sm.nodes[node].state == SL_CTLD_EXPECTED)
		CTL_ERR("not_joined", "heartbeat: node has not joined (send join first)");
	json_object_object_get_ex(args, "regions", &regions);
	char err[256];
	rc = sl_ctld_soft_heartbeat(c->soft, &c->sm, (uint32_t)node, regions, now_ns(), err,
				    sizeof(err));
	if (rc != 0) {
		c->st.heartbeats_bad++;
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "%s", err);
	}
	c->st.heartbeats++;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "state",
			       json_object_new_string(sl_ctld_state_name(c->sm.nodes[node].state)));
	/* a node whose map is older fetches `regions` again */
	json_object_object_add(o, "map_version", json_object_new_int64((int64_t)c->sm.map_version));
	*result = o;
	return 0;
}

/* drain {node, on}: the node's leaders move to other replicas (moves of kind drain, one
 * after the other) and no move goes to it until it is undrained. */
static int ctl_drain(struct ctld *c, struct json_object *args, struct json_object **result,
		     const char **err_code, char *err_msg, size_t err_len)
{
	int rc = need_leader(c, err_code, err_msg, err_len);
	if (rc != 0)
		return rc;
	uint64_t node = 0;
	struct json_object *on = NULL;
	if (!c->sm.bootstrapped || arg_uint(args, "node", 1, c->sm.n_nodes, &node) != 0)
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "drain needs args.node, a node id in 1..%u",
			c->sm.n_nodes);
	if (json_object_object_get_ex(args, "on", &on) && !json_object_is_type(on, json_type_boolean))
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "drain: args.on must be true or false");
	if (c->sm.nodes[node].state == SL_CTLD_EXPECTED)
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "drain: node %" PRIu64 " never joined", node);
	bool want = on == NULL || json_object_get_boolean(on);
	rc = propose(c, sl_ctld_cmd_drain((uint32_t)node, want));
	if (rc != 0)
		CTL_ERR("busy", "drain: proposal refused: %s", strerror(-rc));
	fprintf(stderr, "sluice-ctld: node %" PRIu64 ": %s\n", node,
		want ? "draining its leaders" : "drain ended");
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "node", json_object_new_int64((int64_t)node));
	json_object_object_add(o, "draining", json_object_new_boolean(want));
	*result = o;
	return 0;
}

/* transfer_leader {region, node}: recorded as a move in the log; the answer names it
 * (`moves` shows how it went). */
static int ctl_transfer_leader(struct ctld *c, struct json_object *args,
			       struct json_object **result, const char **err_code, char *err_msg,
			       size_t err_len)
{
	int rc = need_leader(c, err_code, err_msg, err_len);
	if (rc != 0)
		return rc;
	uint64_t region = 0, node = 0, now = now_ns();
	c->st.moves_asked++;
	if (arg_uint(args, "region", 0, UINT32_MAX, &region) != 0 ||
	    arg_uint(args, "node", 0, UINT32_MAX, &node) != 0) {
		c->st.moves_refused++;
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "transfer_leader needs args.region and args.node");
	}
	char err[256];
	if (sl_ctld_check_transfer(&c->sm, region, node, err, sizeof(err)) != 0) {
		c->st.moves_refused++;
		CTL_ERR(region < c->sm.n_regions ? SL_CTL_ERR_BAD_REQUEST : "not_found", "%s", err);
	}
	struct sl_ctld_observed ob;
	if (sl_ctld_observe(&c->sm, c->soft, (uint32_t)region, now,
			    (uint64_t)c->cfg.node_timeout_ms * 1000000ull, &ob) == 0)
		ob.leader = c->sm.regions[region].observed;
	uint64_t id = next_move_id(c);
	rc = propose(c, sl_ctld_cmd_transfer_leader(id, (uint32_t)region, (uint32_t)node,
						    ob.leader, wall_ms()));
	if (rc != 0) {
		c->st.moves_refused++;
		CTL_ERR("busy", "transfer_leader: proposal refused: %s", strerror(-rc));
	}
	c->move_proposed_id = id;
	c->move_proposed_ns = now;
	fprintf(stderr, "sluice-ctld: move %" PRIu64 ": region %" PRIu64 " leader %u -> node %" PRIu64
		"\n", id, region, ob.leader, node);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "move", json_object_new_int64((int64_t)id));
	json_object_object_add(o, "region", json_object_new_int64((int64_t)region));
	json_object_object_add(o, "from", ob.leader ? json_object_new_int64(ob.leader) : NULL);
	json_object_object_add(o, "to", json_object_new_int64((int64_t)node));
	json_object_object_add(o, "state", json_object_new_string("running"));
	*result = o;
	return 0;
}

/* The error code of a refused check (sl_ctld_check_*): no such region, a bad argument, or
 * not applicable now (busy, or the map is full). */
static const char *check_code(int rc)
{
	return rc == -ENOENT ? SL_CTL_ERR_NOT_FOUND : rc == -EINVAL ? SL_CTL_ERR_BAD_REQUEST : "invalid";
}

/* set_protocol {region, protocol}: the region's active segment is sealed and the next
 * runs `protocol`; recorded as a move of kind protocol (`moves` shows what it waits for). */
static int ctl_set_protocol(struct ctld *c, struct json_object *args, struct json_object **result,
			    const char **err_code, char *err_msg, size_t err_len)
{
	int rc = need_leader(c, err_code, err_msg, err_len);
	if (rc != 0)
		return rc;
	uint64_t region = 0;
	struct json_object *p = NULL;
	c->st.switches_asked++;
	if (!c->sm.bootstrapped) {
		c->st.switches_refused++;
		CTL_ERR("unavailable", "the cluster is not bootstrapped yet; try again");
	}
	if (arg_uint(args, "region", 0, UINT32_MAX, &region) != 0 ||
	    !json_object_object_get_ex(args, "protocol", &p) ||
	    !json_object_is_type(p, json_type_string)) {
		c->st.switches_refused++;
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "set_protocol needs args.region (a number) and "
			"args.protocol (standalone, raft or multileader)");
	}
	const char *proto = json_object_get_string(p);
	char err[256];
	rc = sl_ctld_check_set_protocol(&c->sm, region, proto, err, sizeof(err));
	if (rc != 0) {
		c->st.switches_refused++;
		CTL_ERR(check_code(rc), "%s", err);
	}
	char from[SL_CTLD_PROTO_MAX];
	snprintf(from, sizeof(from), "%s", c->sm.regions[region].protocol);
	uint64_t id = next_move_id(c);
	rc = propose(c, sl_ctld_cmd_set_protocol(id, (uint32_t)region, proto, wall_ms()));
	if (rc != 0) {
		c->st.switches_refused++;
		CTL_ERR("busy", "set_protocol: proposal refused: %s", strerror(-rc));
	}
	c->move_proposed_id = id;
	c->move_proposed_ns = now_ns();
	fprintf(stderr, "sluice-ctld: move %" PRIu64 ": region %" PRIu64 " protocol %s -> %s\n",
		id, region, from, proto);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "move", json_object_new_int64((int64_t)id));
	json_object_object_add(o, "region", json_object_new_int64((int64_t)region));
	json_object_object_add(o, "from_protocol", json_object_new_string(from));
	json_object_object_add(o, "to_protocol", json_object_new_string(proto));
	json_object_object_add(o, "state", json_object_new_string("running"));
	*result = o;
	return 0;
}

/* move_core {region, core}: the region's segment is sealed and the next runs the same
 * protocol on worker core `core` of every node; a move of kind core (`moves`). */
static int ctl_move_core(struct ctld *c, struct json_object *args, struct json_object **result,
			 const char **err_code, char *err_msg, size_t err_len)
{
	int rc = need_leader(c, err_code, err_msg, err_len);
	if (rc != 0)
		return rc;
	uint64_t region = 0, core = 0;
	c->st.core_moves_asked++;
	if (arg_uint(args, "region", 0, UINT32_MAX, &region) != 0 ||
	    arg_uint(args, "core", 0, UINT32_MAX, &core) != 0) {
		c->st.core_moves_refused++;
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "move_core needs args.region and args.core (numbers)");
	}
	char err[256];
	rc = sl_ctld_check_move_core(&c->sm, region, core, err, sizeof(err));
	if (rc != 0) {
		c->st.core_moves_refused++;
		CTL_ERR(check_code(rc), "%s", err);
	}
	uint64_t id = next_move_id(c);
	rc = propose(c, sl_ctld_cmd_move_core(id, (uint32_t)region, (uint32_t)core, wall_ms()));
	if (rc != 0) {
		c->st.core_moves_refused++;
		CTL_ERR("busy", "move_core: proposal refused: %s", strerror(-rc));
	}
	c->move_proposed_id = id;
	c->move_proposed_ns = now_ns();
	fprintf(stderr, "sluice-ctld: move %" PRIu64 ": region %" PRIu64 " to core %" PRIu64 "\n",
		id, region, core);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "move", json_object_new_int64((int64_t)id));
	json_object_object_add(o, "region", json_object_new_int64((int64_t)region));
	json_object_object_add(o, "to_core", json_object_new_int64((int64_t)core));
	json_object_object_add(o, "state", json_object_new_string("running"));
	*result = o;
	return 0;
}

/* split {region, at?}: the region's segment is sealed and the next is cut in two at hash
 * `at` (default: the middle of its range), the upper half a new region; a move of kind
 * split (`moves`). */
static int ctl_split(struct ctld *c, struct json_object *args, struct json_object **result,
		     const char **err_code, char *err_msg, size_t err_len)
{
	int rc = need_leader(c, err_code, err_msg, err_len);
	if (rc != 0)
		return rc;
	uint64_t region = 0, at = 0;
	struct json_object *a = NULL;
	bool has_at = json_object_object_get_ex(args, "at", &a);
	c->st.splits_asked++;
	if (!c->sm.bootstrapped) {
		c->st.splits_refused++;
		CTL_ERR("unavailable", "the cluster is not bootstrapped yet; try again");
	}
	if (arg_uint(args, "region", 0, UINT32_MAX, &region) != 0 ||
	    (has_at && (!json_object_is_type(a, json_type_string) ||
			!sl_ctld_parse_hash(json_object_get_string(a), &at)))) {
		c->st.splits_refused++;
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "split needs args.region (a number) and takes "
			"args.at (a hash: \"0x\" and 16 hex digits, the first of the new region)");
	}
	char err[256];
	rc = sl_ctld_check_split(&c->sm, region, at, has_at, &at, err, sizeof(err));
	if (rc != 0) {
		c->st.splits_refused++;
		CTL_ERR(check_code(rc), "%s", err);
	}
	uint64_t id = next_move_id(c);
	rc = propose(c, sl_ctld_cmd_split(id, (uint32_t)region, at, wall_ms()));
	if (rc != 0) {
		c->st.splits_refused++;
		CTL_ERR("busy", "split: proposal refused: %s", strerror(-rc));
	}
	c->move_proposed_id = id;
	c->move_proposed_ns = now_ns();
	const struct sl_ctld_region *r = &c->sm.regions[region];
	fprintf(stderr, "sluice-ctld: move %" PRIu64 ": region %" PRIu64 " [0x%016" PRIx64
		", 0x%016" PRIx64 "] splits at 0x%016" PRIx64 "\n",
		id, region, r->hash_lo, r->hash_hi, at);
	char hex[24];
	snprintf(hex, sizeof(hex), "0x%016" PRIx64, at);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "move", json_object_new_int64((int64_t)id));
	json_object_object_add(o, "region", json_object_new_int64((int64_t)region));
	json_object_object_add(o, "at", json_object_new_string(hex));
	json_object_object_add(o, "state", json_object_new_string("running"));
	*result = o;
	return 0;
}

/* merge {region}: the region and its right neighbour (the live region starting right
 * above it) both seal their segments and the region's next covers both ranges; the
 * neighbour is retired (its id is never reused); a move of kind merge (`moves`). */
static int ctl_merge(struct ctld *c, struct json_object *args, struct json_object **result,
		     const char **err_code, char *err_msg, size_t err_len)
{
	int rc = need_leader(c, err_code, err_msg, err_len);
	if (rc != 0)
		return rc;
	uint64_t region = 0;
	c->st.merges_asked++;
	if (!c->sm.bootstrapped) {
		c->st.merges_refused++;
		CTL_ERR("unavailable", "the cluster is not bootstrapped yet; try again");
	}
	if (arg_uint(args, "region", 0, UINT32_MAX, &region) != 0) {
		c->st.merges_refused++;
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "merge needs args.region (a number: the region that "
			"takes its right neighbour's range)");
	}
	char err[256];
	uint32_t with = 0;
	rc = sl_ctld_check_merge(&c->sm, region, &with, err, sizeof(err));
	if (rc != 0) {
		c->st.merges_refused++;
		CTL_ERR(check_code(rc), "%s", err);
	}
	uint64_t id = next_move_id(c);
	rc = propose(c, sl_ctld_cmd_merge(id, (uint32_t)region, with, wall_ms()));
	if (rc != 0) {
		c->st.merges_refused++;
		CTL_ERR("busy", "merge: proposal refused: %s", strerror(-rc));
	}
	c->move_proposed_id = id;
	c->move_proposed_ns = now_ns();
	const struct sl_ctld_region *r = &c->sm.regions[region], *s = &c->sm.regions[with];
	fprintf(stderr, "sluice-ctld: move %" PRIu64 ": region %" PRIu64 " [0x%016" PRIx64
		", 0x%016" PRIx64 "] takes region %u [0x%016" PRIx64 ", 0x%016" PRIx64 "]\n",
		id, region, r->hash_lo, r->hash_hi, with, s->hash_lo, s->hash_hi);
	char lo[24], hi[24];
	snprintf(lo, sizeof(lo), "0x%016" PRIx64, r->hash_lo);
	snprintf(hi, sizeof(hi), "0x%016" PRIx64, s->hash_hi);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "move", json_object_new_int64((int64_t)id));
	json_object_object_add(o, "region", json_object_new_int64((int64_t)region));
	json_object_object_add(o, "with", json_object_new_int64(with));
	/* the range the region covers once merged */
	json_object_object_add(o, "hash_lo", json_object_new_string(lo));
	json_object_object_add(o, "hash_hi", json_object_new_string(hi));
	json_object_object_add(o, "state", json_object_new_string("running"));
	*result = o;
	return 0;
}

/* move_replica {region, from, to}: the region's segment is sealed and the next runs on
 * its replicas with `from` replaced by `to`; a move of kind replica (`moves`). */
static int ctl_move_replica(struct ctld *c, struct json_object *args, struct json_object **result,
			    const char **err_code, char *err_msg, size_t err_len)
{
	int rc = need_leader(c, err_code, err_msg, err_len);
	if (rc != 0)
		return rc;
	uint64_t region = 0, from = 0, to = 0;
	c->st.replica_moves_asked++;
	if (arg_uint(args, "region", 0, UINT32_MAX, &region) != 0 ||
	    arg_uint(args, "from", 0, UINT32_MAX, &from) != 0 ||
	    arg_uint(args, "to", 0, UINT32_MAX, &to) != 0) {
		c->st.replica_moves_refused++;
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "move_replica needs args.region, args.from and "
			"args.to (numbers: a region id and two node ids)");
	}
	char err[256];
	rc = sl_ctld_check_move_replica(&c->sm, region, from, to, err, sizeof(err));
	if (rc != 0) {
		c->st.replica_moves_refused++;
		CTL_ERR(check_code(rc), "%s", err);
	}
	uint64_t id = next_move_id(c);
	rc = propose(c, sl_ctld_cmd_move_replica(id, (uint32_t)region, (uint32_t)from,
						 (uint32_t)to, SL_CTLD_MOVE_REPLICA, wall_ms()));
	if (rc != 0) {
		c->st.replica_moves_refused++;
		CTL_ERR("busy", "move_replica: proposal refused: %s", strerror(-rc));
	}
	c->move_proposed_id = id;
	c->move_proposed_ns = now_ns();
	fprintf(stderr, "sluice-ctld: move %" PRIu64 ": region %" PRIu64 " replica node %" PRIu64
		" -> node %" PRIu64 "\n", id, region, from, to);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "move", json_object_new_int64((int64_t)id));
	json_object_object_add(o, "region", json_object_new_int64((int64_t)region));
	json_object_object_add(o, "from", json_object_new_int64((int64_t)from));
	json_object_object_add(o, "to", json_object_new_int64((int64_t)to));
	json_object_object_add(o, "state", json_object_new_string("running"));
	*result = o;
	return 0;
}

/* decommission|recommission {node}: ctld moves the node's replicas to other nodes (moves
 * of kind decommission) and its leaders off it, or stops doing so. */
static int ctl_decommission(struct ctld *c, bool on, struct json_object *args,
			    struct json_object **result, const char **err_code, char *err_msg,
			    size_t err_len)
{
	int rc = need_leader(c, err_code, err_msg, err_len);
	if (rc != 0)
		return rc;
	const char *name = on ? "decommission" : "recommission";
	uint64_t node = 0;
	if (!c->sm.bootstrapped)
		CTL_ERR("unavailable", "the cluster is not bootstrapped yet; try again");
	if (arg_uint(args, "node", 1, c->sm.n_nodes, &node) != 0)
		CTL_ERR(SL_CTL_ERR_BAD_REQUEST, "%s needs args.node, a node id in 1..%u", name,
			c->sm.n_nodes);
	rc = propose(c, sl_ctld_cmd_decommission((uint32_t)node, on));
	if (rc != 0)
		CTL_ERR("busy", "%s: proposal refused: %s", name, strerror(-rc));
	c->st.decommissions++;
	fprintf(stderr, "sluice-ctld: node %" PRIu64 ": %s\n", node,
		on ? "decommissioning (its replicas move to other nodes)" : "recommissioned");
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "node", json_object_new_int64((int64_t)node));
	json_object_object_add(o, "decommissioning", json_object_new_boolean(on));
	json_object_object_add(o, "replicas", json_object_new_int64(
						   sl_ctld_node_replicas(&c->sm, (uint32_t)node)));
	*result = o;
	return 0;
}

static int ctl_handler(void *arg, const char *cmd, struct json_object *args,
		       struct json_object **result, const char **err_code, char *err_msg,
		       size_t err_len)
{
	struct ctld *c = arg;
	uint64_t now = now_ns();
	const struct sl_ctld_soft *soft = c->leader ? c->soft : NULL;
	if (strcmp(cmd, "status") == 0)
		*result = status_json(c);
	else if (strcmp(cmd, "members") == 0)
		*result = sl_ctld_view_members(&c->sm, soft, now);
	else if (strcmp(cmd, "regions") == 0) {
		*result = sl_ctld_view_regions(&c->sm, soft, now,
					       (uint64_t)c->cfg.node_timeout_ms * 1000000ull);
		/* the leader's: why a region due for an automatic split is not split (null:
		 * none is) */
		json_object_object_add(*result, "auto_split_blocked",
				       soft != NULL && c->autosplit_blocked[0]
					       ? json_object_new_string(c->autosplit_blocked)
					       : NULL);
		/* the same for an automatic merge */
		json_object_object_add(*result, "auto_merge_blocked",
				       soft != NULL && c->automerge_blocked[0]
					       ? json_object_new_string(c->automerge_blocked)
					       : NULL);
	} else if (strcmp(cmd, "placement") == 0)
		*result = sl_ctld_view_placement(&c->sm);
	else if (strcmp(cmd, "moves") == 0)
		*result = sl_ctld_view_moves(&c->sm, soft, now,
					     (uint64_t)c->cfg.node_timeout_ms * 1000000ull);
	else if (strcmp(cmd, "transfer_leader") == 0)
		return ctl_transfer_leader(c, args, result, err_code, err_msg, err_len);
	else if (strcmp(cmd, "set_protocol") == 0)
		return ctl_set_protocol(c, args, result, err_code, err_msg, err_len);
	else if (strcmp(cmd, "drain") == 0)
		return ctl_drain(c, args, result, err_code, err_msg, err_len);
	else if (strcmp(cmd, "move_replica") == 0)
		return ctl_move_replica(c, args, result, err_code, err_msg, err_len);
	else if (strcmp(cmd, "split") == 0)
		return ctl_split(c, args, result, err_code, err_msg, err_len);
	else if (strcmp(cmd, "move_core") == 0)
		return ctl_move_core(c, args, result, err_code, err_msg, err_len);
	else if (strcmp(cmd, "merge") == 0)
		return ctl_merge(c, args, result, err_code, err_msg, err_len);
	else if (strcmp(cmd, "decommission") == 0 || strcmp(cmd, "recommission") == 0)
		return ctl_decommission(c, cmd[0] == 'd', args, result, err_code, err_msg,
					err_len);
	else if (strcmp(cmd, "join") == 0)
		return ctl_join(c, args, result, err_code, err_msg, err_len);
	else if (strcmp(cmd, "heartbeat") == 0)
		return ctl_heartbeat(c, args, result, err_code, err_msg, err_len);
	else
		CTL_ERR(SL_CTL_ERR_UNKNOWN_COMMAND,
			"unknown command '%.64s' (sluice-ctld knows status, members, regions, "
			"placement, moves, transfer_leader, set_protocol, move_replica, split, merge, "
			"drain, decommission, recommission, join, heartbeat)",
			cmd);
	return 0;
}

/* ---------------------------------------------------------------- start-up */

static int create_driver(struct ctld *c, char *err, size_t err_len)
{
	sl_rlog_view(&c->log.rlog, &c->view);
	struct sl_raft_opts ro;
	memset(&ro, 0, sizeof(ro));
	ro.max_msg_bytes = RAFT_MSG_MAX;
	struct sl_drv_config dc;
	memset(&dc, 0, sizeof(dc));
	dc.protocol = "raft";
	dc.max_entry_bytes = RAFT_MSG_MAX / 2;
	dc.max_inflight = 64;
	dc.applied_index = 0; /* the state machine is rebuilt from the log at every start */
	struct sl_cons_config *cc = &dc.cons;
	cc->group_id = 0;
	cc->self = c->cfg.id;
	cc->n_voters = c->cfg.n_peers;
	for (uint32_t i = 0; i < c->cfg.n_peers; i++)
		cc->voters[i] = c->cfg.peers[i].id;
	cc->seed = ((uint64_t)c->cfg.id << 32) ^ now_ns();
	cc->election_timeout_ns = (uint64_t)c->cfg.election_timeout_ms * 1000000ull;
	cc->heartbeat_interval_ns = cc->election_timeout_ns / 10;
	cc->max_batch_entries = 16;
	cc->max_inflight_bytes = 1u << 20;
	cc->initial = c->log.hs;
	cc->log = &c->view;
	cc->proto_opts = &ro;
	struct sl_drv_host host = drv_host;
	host.ctx = c;
	int rc = sl_drv_create(&dc, &host, &c->drv);
	if (rc != 0)
		snprintf(err, err_len, "raft group: %s", strerror(-rc));
	return rc;
}

static int lock_dir(const char *dir, char *err, size_t err_len)
{
	char path[SL_CTLD_PATH_MAX + 16];
	if (snprintf(path, sizeof(path), "%s/ctld.lock", dir) >= (int)sizeof(path)) {
		snprintf(err, err_len, "data_dir too long");
		return -ENAMETOOLONG;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		snprintf(err, err_len, "%s: %s", path,
			 e == EWOULDBLOCK ? "another sluice-ctld uses this data_dir" : strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	return fd; /* held until exit */
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice-ctld [options]\n"
		"\n"
		"sluice control plane: keeps the region map and the data nodes in a raft log\n"
		"replicated over its 1 or 3 replicas (UDP), takes joins and heartbeats from the\n"
		"data nodes and serves members, regions and placement on its ctl socket.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE      INI config file ([ctld] and [cluster]; docs/cluster.md)\n"
		"      --set SEC.KEY=VAL  set any config key, e.g. --set ctld.id=2\n"
		"      --print-config     print the effective config and exit\n"
		"  -h, --help             this help\n"
		"  -V, --version          print the version\n");
}

static int set_kv(struct sl_ctld_conf *cfg, const char *kv)
{
	char buf[1024], err[256];
	snprintf(buf, sizeof(buf), "%s", kv);
	char *eq = strchr(buf, '='), *dot = strchr(buf, '.');
	if (eq == NULL || dot == NULL || dot > eq) {
		fprintf(stderr, "sluice-ctld: --set expects SECTION.KEY=VALUE, got '%s'\n", kv);
		return -EINVAL;
	}
	*eq = '\0';
	*dot = '\0';
	int rc = sl_ctld_conf_set(cfg, buf, dot + 1, eq + 1, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "sluice-ctld: %s\n", err);
	return rc;
}

/* Config file first, then the --set overrides in order, whatever their position. */
static int parse_args(int argc, char **argv, struct sl_ctld_conf *cfg, bool *print)
{
	static const struct option lo[] = {
	    {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
	    {"print-config", no_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, "c:hV", lo, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 's':
			break;
		case 'p':
			*print = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("sluice-ctld %s\n", SLUICE_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice-ctld: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	char err[512];
	if (config != NULL && sl_ctld_conf_load(cfg, config, err, sizeof(err)) != 0) {
		fprintf(stderr, "sluice-ctld: %s\n", err);
		return -EINVAL;
	}
	optind = 0;
	while ((opt = getopt_long(argc, argv, "c:hV", lo, NULL)) != -1)
		if (opt == 's' && set_kv(cfg, optarg) != 0)
			return -EINVAL;
	if (sl_ctld_conf_finish(cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "sluice-ctld: %s\n", err);
		return -EINVAL;
	}
	return 0;
}

static void run(struct ctld *c)
{
	while (!g_stop && !c->failed) {
		struct pollfd pfd[2] = {{c->udp, POLLIN, 0}, {sl_ctl_server_fd(c->srv), POLLIN, 0}};
		/* short: accepted ctl connections are polled by sl_ctl_server_poll itself */
		(void)poll(pfd, 2, 10);
		udp_poll(c);
		sl_ctl_server_poll(c->srv, 0);
		uint64_t now = now_ns();
		sl_drv_tick(c->drv, now);
		pump(c);
		duties(c, now);
		pump(c);
	}
}

int main(int argc, char **argv)
{
	static struct ctld ctld; /* large (the soft state is on the heap, the map is not) */
	struct ctld *c = &ctld;
	c->udp = -1;
	sl_ctld_conf_default(&c->cfg);
	bool print = false;
	if (parse_args(argc, argv, &c->cfg, &print) != 0)
		return 1;
	if (print) {
		sl_ctld_conf_dump(&c->cfg, stdout);
		return 0;
	}
	char err[512] = "";
	if (mkdir(c->cfg.data_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "sluice-ctld: data_dir %s: %s\n", c->cfg.data_dir, strerror(errno));
		return 1;
	}
	if (lock_dir(c->cfg.data_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "sluice-ctld: %s\n", err);
		return 1;
	}
	sl_ctld_sm_init(&c->sm);
	c->soft = calloc(1, sizeof(*c->soft));
	c->split_obs = calloc(1, sizeof(*c->split_obs));
	if (c->soft == NULL || c->split_obs == NULL) {
		fprintf(stderr, "sluice-ctld: out of memory\n");
		return 1;
	}
	int rc = sl_ctld_log_open(&c->log, c->cfg.data_dir, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "sluice-ctld: %s/%s\n", c->cfg.data_dir, err);
		return 1;
	}
	if (c->log.torn_bytes > 0)
		fprintf(stderr, "sluice-ctld: ctld.log: %" PRIu64
			" bytes of an unfinished record cut at the end\n", c->log.torn_bytes);
	if (create_driver(c, err, sizeof(err)) != 0 || udp_open(c, err, sizeof(err)) != 0) {
		fprintf(stderr, "sluice-ctld: %s\n", err);
		return 1;
	}
	rc = sl_ctl_server_open(c->cfg.ctl_socket, ctl_handler, c, &c->srv);
	if (rc != 0) {
		fprintf(stderr, "sluice-ctld: ctl socket %s: %s\n", c->cfg.ctl_socket,
			rc == -EADDRINUSE ? "another daemon answers there" : strerror(-rc));
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "sluice-ctld: replica %u of %u, log %" PRIu64 " entries (commit %" PRIu64
		"), ctl socket %s\n",
		c->cfg.id, c->cfg.n_peers, c->log.last, c->log.hs.commit, c->cfg.ctl_socket);
	run(c);
	sl_ctl_server_close(c->srv);
	sl_drv_destroy(c->drv);
	sl_ctld_log_close(&c->log);
	close(c->udp);
	free(c->soft);
	free(c->split_obs);
	return c->failed ? 1 : 0;
}
