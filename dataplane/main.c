/* main.c - sluiced, the node daemon. Parses the command line and config, starts the EAL
 * with safe defaults (--no-pci unless the operator allows a NIC, --no-huge when the host
 * has no free hugepages), launches one loop per worker lcore and serves the ctl socket on
 * the main lcore until SIGTERM/SIGINT or a `shutdown` request. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>

#include "config.h"
#include "consensus.h"
#include "ctl.h"
#include "datadir.h"
#include "http.h"
#include "kernel_port.h"
#include "kernel_udp.h"
#include "port.h"
#include "local_ingest.h"
#include "log.h"
#include "node.h"
#include "stats.h"

#define MAX_EAL_ARGS 64

static atomic_int g_signal;

static void on_signal(int sig) { atomic_store(&g_signal, sig); }

static char kudp_addr[64];
static bool kernel_mode; /* line and session protocol on kernel UDP sockets */

/* [net] kernel_udp: on, off, or auto = when the EAL found no ingest device (the fabric's
 * and the exception path's devices are not ones). */
static bool kernel_wanted(const struct sl_config *cfg)
{
	if (strcmp(cfg->kernel_udp, "on") == 0)
		return true;
	if (strcmp(cfg->kernel_udp, "auto") != 0)
		return false;
	uint16_t pid;
	RTE_ETH_FOREACH_DEV(pid)
	{
		char name[RTE_ETH_NAME_MAX_LEN];
		if (rte_eth_dev_get_name_by_port(pid, name) == 0 && !sl_port_reserved(name))
			return false;
	}
	return true;
}

/* HTTP on [http] listen; line protocol on a kernel UDP socket ([net] kernel_udp: auto =
 * when no DPDK port serves ingest). A taken port is fatal when the operator chose it, a
 * warning when it is the default (several nodes on one host: the first one serves). */
static int start_kernel_doors(struct sl_node *node, const struct sl_config *cfg,
			      struct sl_http **http, struct sl_kudp **kudp)
{
	char err[256];
	if (cfg->http_enabled) {
		int rc = sl_http_start(node, cfg, http, err, sizeof(err));
		bool dflt = strcmp(cfg->http_listen, SL_CFG_HTTP_LISTEN_DEFAULT) == 0;
		if (rc == -EADDRINUSE && dflt) {
			sl_log_plain(RTE_LOG_WARNING,
				     "%s; HTTP is off (set [http] listen to another port, or "
				     "[http] enabled = false)\n", err);
		} else if (rc != 0) {
			sl_log_plain(RTE_LOG_ERR, "%s\n", err);
			return -1;
		}
	}
	if (kernel_mode) {
		int rc = sl_kudp_start(node, cfg, kudp, err, sizeof(err));
		if (rc == -EADDRINUSE && strcmp(cfg->kernel_udp, "auto") == 0) {
			sl_log_plain(RTE_LOG_WARNING, "%s; kernel UDP line protocol is off\n", err);
		} else if (rc != 0) {
			sl_log_plain(RTE_LOG_ERR, "%s\n", err);
			return -1;
		}
		if (*kudp != NULL)
			snprintf(kudp_addr, sizeof(kudp_addr), "%s:%u", cfg->kernel_address,
				 cfg->line_port);
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluiced [EAL options --] [options]\n"
		"\n"
		"sluice node daemon: takes points from the shm ingest ring, HTTP (InfluxDB\n"
		"1.x/2.x writes, Prometheus remote write; /metrics) and DPDK ports, shards them\n"
		"to per-core regions, persists them in a per-core WAL and serves queries on the\n"
		"ctl socket. With no arguments it starts on any machine with data under\n"
		"./sluice-data (no NIC is touched, hugepages are used only when free) and serves\n"
		"HTTP on 8086, line protocol on UDP 8089 and the session protocol on UDP 7400\n"
		"(docs/http.md).\n"
		"\n"
		"options:\n"
		"  -c, --config FILE      INI config file (see sluice.conf.example, docs/config.md)\n"
		"  -d, --data-dir DIR     data directory (default ./sluice-data; its parent must\n"
		"                         exist; one sluiced per data dir)\n"
		"  -n, --name NAME        node name; names /dev/shm/sluice-NAME.* (default node1;\n"
		"                         one running sluiced per name on a host)\n"
		"  -w, --workers N        worker lcores (default: CPUs - 1, at least 1)\n"
		"  -r, --regions N        regions on this node (default 8)\n"
		"  -s, --socket PATH      ctl socket (default DATA_DIR/sluiced.sock)\n"
		"      --perf             perf mode: workers busy-poll and never sleep\n"
		"      --rejoin           this cluster node lost its data dir: start on a new one,\n"
		"                         catch up from the other replicas before voting again\n"
		"                         (ignored when the data dir holds state; docs/cluster.md)\n"
		"      --set SEC.KEY=VAL  set any config key, e.g. --set wal.checkpoint_mb=64\n"
		"      --print-config     print the effective config (all keys, as this start\n"
		"                         would use them: worker count, paths, vdevs) and exit\n"
		"      --print-defaults   print every key with its default and exit\n"
		"  -h, --help             this help\n"
		"  -V, --version          print the version\n"
		"\n"
		"EAL options before '--' are passed to DPDK after sluiced's own defaults\n"
		"(--no-pci, --in-memory, lcore pinning, --no-huge fallback).\n");
}

/* The EAL's own --vdev arguments, added to the [net] vdevs shown as in use (the EAL gets
 * them once, from the command line, as given). */
static void merge_eal_vdevs(struct sl_config *cfg, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		const char *v = NULL;
		if (strcmp(argv[i], "--vdev") == 0 && i + 1 < argc)
			v = argv[++i];
		else if (strncmp(argv[i], "--vdev=", 7) == 0)
			v = argv[i] + 7;
		if (v == NULL)
			continue;
		size_t used = strlen(cfg->vdevs);
		snprintf(cfg->vdevs + used, sizeof(cfg->vdevs) - used, "%s%s", used ? " " : "", v);
	}
}

/* A segment of this node's name held by a live process: another sluiced runs under the
 * same name (with another data dir). Refused before the EAL or any file is touched. */
static int check_segment_free(const char *what, const char *path, const char *name)
{
	int32_t pid = 0;
	int rc = sl_shm_file_probe(path, &pid);
	if (rc == -EBUSY)
		fprintf(stderr,
			"sluiced: %s %s is held by a running process (pid %d): another sluiced "
			"serves under the node name '%s'; give each node its own --name (or "
			"[ingest] shm_path / stats_path)\n",
			what, path, (int)pid, name);
	else if (rc != 0)
		fprintf(stderr, "sluiced: %s %s: %s\n", what, path, strerror(-rc));
	return rc;
}

/* Free hugepages and a hugetlbfs mount are both needed for EAL hugepage memory. */
static bool hugepages_usable(char *why, size_t len)
{
	FILE *f = fopen("/proc/meminfo", "r");
	long free_pages = 0;
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "HugePages_Free: %ld", &free_pages);
	if (f)
		fclose(f);
	if (free_pages <= 0) {
		snprintf(why, len, "no free hugepages (HugePages_Free=%ld)", free_pages);
		return false;
	}
	bool mounted = false;
	f = fopen("/proc/mounts", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, " hugetlbfs "))
			mounted = true;
	if (f)
		fclose(f);
	if (!mounted) {
		snprintf(why, len, "no hugetlbfs mount");
		return false;
	}
	return true;
}

static int set_kv(struct sl_config *cfg, const char *kv)
{
	char buf[SL_CFG_PATH_MAX + 64], err[256];
	snprintf(buf, sizeof(buf), "%s", kv);
	char *eq = strchr(buf, '=');
	char *dot = strchr(buf, '.');
	if (eq == NULL || dot == NULL || dot > eq) {
		fprintf(stderr, "sluiced: --set expects SECTION.KEY=VALUE, got '%s'\n", kv);
		return -EINVAL;
	}
	*eq = '\0';
	*dot = '\0';
	int rc = sl_config_set(cfg, buf, dot + 1, eq + 1, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "sluiced: %s\n", err);
	return rc;
}

int main(int argc, char **argv)
{
	/* split: [EAL args] -- [app args], or only app args */
	int dd = -1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			dd = i;
			break;
		}
	int user_eal_argc = dd < 0 ? 0 : dd - 1;
	char **user_eal_argv = argv + 1;
	int app_argc = dd < 0 ? argc : argc - dd;
	char **app_argv = dd < 0 ? argv : argv + dd;
	if (dd >= 0)
		app_argv[0] = argv[0];

	struct sl_config cfg;
	sl_config_default(&cfg);
	char err[512];
	const char *config_file = NULL;
	bool print_config = false, print_defaults = false;
	/* First pass for --config so later options override the file. */
	static const struct option opts[] = {
		{"config", required_argument, 0, 'c'}, {"data-dir", required_argument, 0, 'd'},
		{"name", required_argument, 0, 'n'},   {"workers", required_argument, 0, 'w'},
		{"regions", required_argument, 0, 'r'}, {"socket", required_argument, 0, 's'},
		{"perf", no_argument, 0, 'P'},          {"set", required_argument, 0, 'S'},
		{"rejoin", no_argument, 0, 'J'},
		{"print-config", no_argument, 0, 'C'},  {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},       {"print-defaults", no_argument, 0, 'D'},
		{0, 0, 0, 0}};
	int c;
	opterr = 0;
	while ((c = getopt_long(app_argc, app_argv, "c:d:n:w:r:s:hV", opts, NULL)) != -1) {
		if (c == 'c')
			config_file = optarg;
		else if (c == 'h') {
			usage(stdout);
			return 0;
		} else if (c == 'V') {
			printf("sluiced %s\n", SLUICE_VERSION);
			return 0;
		} else if (c == '?') {
			fprintf(stderr, "sluiced: unknown or incomplete option '%s' (see --help)\n",
				app_argv[optind - 1]);
			return 2;
		}
	}
	if (optind < app_argc) {
		fprintf(stderr, "sluiced: unexpected argument '%s' (see --help)\n", app_argv[optind]);
		return 2;
	}
	if (config_file && sl_config_load(&cfg, config_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "sluiced: %s\n", err);
		return 2;
	}
	optind = 1;
	while ((c = getopt_long(app_argc, app_argv, "c:d:n:w:r:s:hV", opts, NULL)) != -1) {
		int rc = 0;
		switch (c) {
		case 'd': rc = sl_config_set(&cfg, "node", "data_dir", optarg, err, sizeof(err)); break;
		case 'n': rc = sl_config_set(&cfg, "node", "name", optarg, err, sizeof(err)); break;
		case 'w': rc = sl_config_set(&cfg, "eal", "workers", optarg, err, sizeof(err)); break;
		case 'r': rc = sl_config_set(&cfg, "regions", "count", optarg, err, sizeof(err)); break;
		case 's': rc = sl_config_set(&cfg, "node", "ctl_socket", optarg, err, sizeof(err)); break;
		case 'P': cfg.poll_mode = SL_POLL_PERF; break;
		case 'J': cfg.rejoin = true; break;
		case 'S':
			if (set_kv(&cfg, optarg) != 0)
				return 2;
			break;
		case 'C': print_config = true; break;
		case 'D': print_defaults = true; break;
		default: break;
		}
		if (rc != 0) {
			fprintf(stderr, "sluiced: %s\n", err);
			return 2;
		}
	}
	struct sl_config as_given = cfg; /* derived paths stay empty = "default" in the dump */
	if (print_defaults) {
		sl_config_dump(&as_given, stdout);
		return 0;
	}
	if (sl_config_finish(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "sluiced: %s\n", err);
		return 2;
	}

	/* lcores: main on the first allowed CPU, workers spread over the others */
	cpu_set_t set;
	int cpus[CPU_SETSIZE], ncpu = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				cpus[ncpu++] = i;
	if (ncpu == 0)
		cpus[ncpu++] = 0;
	unsigned workers = cfg.workers ? cfg.workers : (unsigned)(ncpu > 1 ? ncpu - 1 : 1);
	/* From here cfg holds the values in use: what --print-config and ctl `config` show. */
	struct sl_config eal_cfg = cfg; /* the EAL gets the command line's vdevs once */
	cfg.workers = workers;
	merge_eal_vdevs(&cfg, user_eal_argc, user_eal_argv);
	if (print_config) {
		sl_config_dump(&cfg, stdout);
		return 0;
	}
	/* Before anything is created: the data dir is ours, the node name's segments too. */
	int lock_fd;
	if (sl_datadir_lock(cfg.data_dir, &lock_fd, err, sizeof(err)) != 0) {
		fprintf(stderr, "sluiced: %s\n", err);
		return 1;
	}
	if (check_segment_free("stats segment", cfg.stats_path, cfg.name) != 0 ||
	    check_segment_free("shm ingest ring", cfg.shm_ingest_path, cfg.name) != 0)
		return 1;
	char lcores[1024];
	int off = snprintf(lcores, sizeof(lcores), "0@%d", cpus[0]);
	for (unsigned i = 1; i <= workers; i++)
		off += snprintf(lcores + off, sizeof(lcores) - (size_t)off, ",%u@%d", i,
				cpus[ncpu > 1 ? 1 + (i - 1) % (unsigned)(ncpu - 1) : 0]);

	char *eal[MAX_EAL_ARGS];
	int ne = 0;
	char mem[32], hugewhy[128] = "";
	eal[ne++] = argv[0];
	eal[ne++] = "--lcores";
	eal[ne++] = lcores;
	eal[ne++] = "--log-level=lib.eal:warning";
	char pcis[SL_CFG_PATH_MAX];
	/* a fabric on a NIC ([cluster] fabric = udp, fabric_port a PCI address) is allowed
	 * by itself; nothing else is probed unless [eal] pci_allow names it */
	bool fab_pci = cfg.cluster_nodes > 1 && cfg.fabric == SL_FABRIC_UDP && cfg.fabric_pci;
	if (cfg.pci_allow[0] == '\0' && !fab_pci) {
		eal[ne++] = "--no-pci";
	} else {
		snprintf(pcis, sizeof(pcis), "%s", cfg.pci_allow);
		for (char *tok = strtok(pcis, ","); tok && ne < MAX_EAL_ARGS - 8; tok = strtok(NULL, ",")) {
			eal[ne++] = "-a";
			eal[ne++] = tok;
		}
		if (fab_pci) {
			eal[ne++] = "-a";
			eal[ne++] = cfg.fabric_port;
		}
	}
	bool huge = cfg.hugepages == SL_HUGE_ON ||
		    (cfg.hugepages == SL_HUGE_AUTO && hugepages_usable(hugewhy, sizeof(hugewhy)));
	if (cfg.hugepages == SL_HUGE_OFF)
		snprintf(hugewhy, sizeof(hugewhy), "hugepages = off in the config");
	/* no runtime files left behind a SIGKILL; one prefix per node for several nodes on
	 * a host (--in-memory needs hugepages: --no-huge implies legacy memory) */
	char prefix[96];
	snprintf(prefix, sizeof(prefix), "--file-prefix=sluice-%s", cfg.name);
	eal[ne++] = prefix;
	if (huge)
		eal[ne++] = "--in-memory";
	if (!huge) {
		snprintf(mem, sizeof(mem), "%u", cfg.memory_mb);
		eal[ne++] = "--no-shconf";
		eal[ne++] = "--no-huge";
		eal[ne++] = "-m";
		eal[ne++] = mem;
		sl_log_plain(RTE_LOG_NOTICE, "%s: running with --no-huge -m %u (normal pages)\n", hugewhy,
			cfg.memory_mb);
	}
	char vdevs[SL_CFG_PATH_MAX];
	snprintf(vdevs, sizeof(vdevs), "%s", eal_cfg.vdevs);
	for (char *tok = strtok(vdevs, "; \t"); tok && ne < MAX_EAL_ARGS - 8; tok = strtok(NULL, "; \t")) {
		eal[ne++] = "--vdev";
		eal[ne++] = tok;
	}
	static char exc_vdev[256];
	if (nd_exc_vdev(&cfg, workers, exc_vdev, sizeof(exc_vdev)) == 1 && ne < MAX_EAL_ARGS - 8) {
		eal[ne++] = "--vdev";
		eal[ne++] = exc_vdev;
	}
	static char fab_vdevs[SL_CONS_MAX_PEERS][SL_FAB_VDEV_MAX];
	char fab_err[256];
	int n_fab = nd_fab_vdevs(&cfg, fab_vdevs, SL_CONS_MAX_PEERS, fab_err, sizeof(fab_err));
	if (n_fab < 0) {
		sl_log_plain(RTE_LOG_ERR, "%s\n", fab_err);
		return 1;
	}
	for (int i = 0; i < n_fab && ne < MAX_EAL_ARGS - 8; i++) {
		eal[ne++] = "--vdev";
		eal[ne++] = fab_vdevs[i];
	}
	char extra[SL_CFG_PATH_MAX];
	snprintf(extra, sizeof(extra), "%s", cfg.eal_extra);
	for (char *tok = strtok(extra, " "); tok && ne < MAX_EAL_ARGS - 4; tok = strtok(NULL, " "))
		eal[ne++] = tok;
	for (int i = 0; i < user_eal_argc && ne < MAX_EAL_ARGS - 1; i++)
		eal[ne++] = user_eal_argv[i];
	eal[ne] = NULL;
	char eal_line[2048];
	int el = 0;
	for (int i = 1; i < ne; i++)
		el += snprintf(eal_line + el, sizeof(eal_line) - (size_t)el, "%s%s", i > 1 ? " " : "",
			       eal[i]);

	if (rte_eal_init(ne, eal) < 0) {
		sl_log_plain(RTE_LOG_ERR, "EAL init failed (%s); EAL args: %s\n",
			rte_strerror(rte_errno), eal_line);
		return 1;
	}
	struct sl_node_env env = {.n_workers = workers,
				  .hugepage_mode = huge ? "hugepages" : "no-huge",
				  .eal_args = eal_line};
	unsigned wi = 0, lc;
	RTE_LCORE_FOREACH_WORKER(lc)
	{
		if (wi < workers)
			env.worker_lcores[wi++] = lc;
	}
	if (wi != workers) {
		sl_log_plain(RTE_LOG_ERR, "EAL gave %u worker lcores, %u needed\n", wi, workers);
		rte_eal_cleanup();
		return 1;
	}

	/* no DPDK port: the session protocol comes through a kernel socket's ring port */
	struct sl_kport *kport = NULL;
	kernel_mode = kernel_wanted(&cfg);
	if (kernel_mode) {
		int krc = sl_kport_create(&cfg, workers, &kport, err, sizeof(err));
		if (krc == -EADDRINUSE && strcmp(cfg.kernel_udp, "auto") == 0) {
			sl_log_plain(RTE_LOG_WARNING, "%s; the kernel UDP doors are off\n", err);
			kernel_mode = false;
		} else if (krc != 0) {
			sl_log_plain(RTE_LOG_ERR, "%s\n", err);
			rte_eal_cleanup();
			return 1;
		}
	}
	struct sl_node *node = NULL;
	if (sl_node_create(&cfg, &env, &node, err, sizeof(err)) != 0) {
		sl_log_plain(RTE_LOG_ERR, "%s\n", err);
		sl_kport_destroy(kport);
		rte_eal_cleanup();
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Launch the workers first: raft regions re-apply their recovered log after electing
	 * themselves. The ctl socket opens once every region has applied it, so a query
	 * never sees less than what was acknowledged before a restart. */
	for (unsigned i = 0; i < workers; i++)
		rte_eal_remote_launch(sl_node_worker_main, sl_node_worker_arg(node, i),
				      env.worker_lcores[i]);
	/* housekeeping meanwhile: a cluster's regions need their fabric links up to learn
	 * what is committed */
	for (int i = 0; i < 6000 && !sl_node_recovered(node) && atomic_load(&g_signal) == 0; i++) {
		sl_node_housekeeping(node);
		rte_delay_us_sleep(10000);
	}
	if (!sl_node_recovered(node))
		sl_log_plain(RTE_LOG_WARNING, "regions still re-applying their log after 60 s; "
				"serving anyway\n");
	struct sl_ctl_server *srv = NULL;
	int rc = sl_ctl_server_open(cfg.ctl_socket, sl_node_ctl, node, &srv);
	if (rc != 0) {
		sl_log_plain(RTE_LOG_ERR, "ctl socket %s: %s\n", cfg.ctl_socket,
			rc == -EADDRINUSE ? "another sluiced is serving it" : strerror(-rc));
		sl_node_stop(node);
		rte_eal_mp_wait_lcore();
		sl_kport_destroy(kport);
		sl_node_destroy(node);
		rte_eal_cleanup();
		return 1;
	}

	/* kernel-socket doors: HTTP, and UDP line protocol when the node has no DPDK port */
	struct sl_http *http = NULL;
	struct sl_kudp *kudp = NULL;
	err[0] = '\0';
	if (start_kernel_doors(node, &cfg, &http, &kudp) != 0 ||
	    (kport != NULL && sl_kport_start(kport, err, sizeof(err)) != 0)) {
		if (kport != NULL && err[0] != '\0')
			sl_log_plain(RTE_LOG_ERR, "%s\n", err);
		sl_http_stop(http);
		sl_kudp_stop(kudp);
		sl_ctl_server_close(srv);
		sl_node_stop(node);
		rte_eal_mp_wait_lcore();
		sl_kport_destroy(kport);
		sl_node_destroy(node);
		rte_eal_cleanup();
		return 1;
	}
	sl_log_plain(RTE_LOG_NOTICE,
		"node %u (%s) serving: %u workers, %u regions (%s), data %s, ctl %s, "
		"shm ingest %s, http %s, kernel udp %s\n",
		cfg.node_id, cfg.name, workers, cfg.regions, cfg.protocol, cfg.data_dir,
		cfg.ctl_socket, cfg.shm_ingest_path, http ? sl_http_listening(http) : "off",
		kudp ? kudp_addr : "off");
	if (kport != NULL)
		sl_log_plain(RTE_LOG_NOTICE, "session protocol on kernel UDP %s:%u\n",
			     cfg.kernel_address, cfg.session_port);
	fflush(stderr);

	/* The main lcore: ctl requests and housekeeping, never the data path. */
	while (atomic_load(&g_signal) == 0) {
		sl_ctl_server_poll(srv, 50);
		sl_node_housekeeping(node);
		if (sl_node_stopping(node))
			break;
	}
	if (atomic_load(&g_signal) != 0)
		sl_log_plain(RTE_LOG_NOTICE, "signal %d: draining\n", atomic_load(&g_signal));
	/* the doors close first: writes in progress are answered by the running workers */
	sl_http_stop(http);
	sl_kudp_stop(kudp);
	sl_node_stop(node);
	rte_eal_mp_wait_lcore();
	sl_kport_destroy(kport); /* after the workers: their last acks leave */
	bool failed = sl_node_failed(node);
	sl_ctl_server_close(srv);
	sl_node_destroy(node);
	rte_eal_cleanup();
	close(lock_fd); /* the data dir is free for the next sluiced */
	sl_log_plain(RTE_LOG_NOTICE, "stopped%s\n", failed ? " (after a WAL failure)" : "");
	return failed ? 1 : 0;
}
