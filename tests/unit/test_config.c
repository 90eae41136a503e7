/* test_config.c - sluiced's configuration: defaults hold, the INI file and --set override
 * them, and every bad value is rejected with a message naming the key. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "datadir.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/sl_cfg_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_defaults(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256];
	sl_config_default(&c);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), 0);
	assert_string_equal(c.data_dir, "./sluice-data");
	assert_string_equal(c.ctl_socket, "./sluice-data/sluiced.sock");
	assert_string_equal(c.stats_path, "/dev/shm/sluice-node1.stats");
	assert_string_equal(c.shm_ingest_path, "/dev/shm/sluice-node1.ingest");
	assert_string_equal(c.protocol, "standalone");
	assert_int_equal(c.hugepages, SL_HUGE_AUTO);
	assert_int_equal(c.pci_allow[0], '\0'); /* --no-pci unless an operator says so */
}

static void test_file_overrides(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256];
	sl_config_default(&c);
	char *p = write_tmp("; comment\n[node]\nname = lab7\ndata_dir = /tmp/x\n"
			    "[regions]\ncount = 12\n[wal]\ndirect_io = false\n"
			    "[poll]\nmode = perf\n[eal]\nhugepages = off\n");
	int rc = sl_config_load(&c, p, err, sizeof(err));
	unlink(p);
	assert_int_equal(rc, 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "lab7");
	assert_int_equal(c.regions, 12);
	assert_false(c.wal_direct_io);
	assert_int_equal(c.poll_mode, SL_POLL_PERF);
	assert_int_equal(c.hugepages, SL_HUGE_OFF);
	assert_string_equal(c.stats_path, "/dev/shm/sluice-lab7.stats");
	assert_string_equal(c.ctl_socket, "/tmp/x/sluiced.sock");
}

static void test_bad_values(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256];
	sl_config_default(&c);
	assert_int_equal(sl_config_set(&c, "regions", "count", "0", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "count"));
	assert_int_equal(sl_config_set(&c, "regions", "count", "12x", err, sizeof(err)), -EINVAL);
	assert_int_equal(sl_config_set(&c, "regions", "count", "-3", err, sizeof(err)), -EINVAL);
	assert_int_equal(sl_config_set(&c, "regions", "count", "99999999999999999999", err,
				       sizeof(err)),
			 -EINVAL);
	assert_int_equal(sl_config_set(&c, "wal", "direct_io", "maybe", err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(sl_config_set(&c, "poll", "mode", "turbo", err, sizeof(err)), -EINVAL);
	assert_int_equal(sl_config_set(&c, "nope", "x", "1", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "unknown key"));
	assert_int_equal(c.regions, 8); /* untouched by the failures */

	char *p = write_tmp("[node]\nbogus = 1\n");
	assert_int_not_equal(sl_config_load(&c, p, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "bogus"));
	unlink(p);
	assert_int_not_equal(sl_config_load(&c, "/nonexistent/sluice.conf", err, sizeof(err)), 0);

	sl_config_default(&c);
	assert_int_equal(sl_config_set(&c, "node", "name", "bad/name", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), -EINVAL);
	sl_config_default(&c);
	c.shm_ring_entries = 1000;
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), -EINVAL);
	sl_config_default(&c);
	assert_int_equal(sl_config_set(&c, "regions", "protocol", "paxos", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), -EINVAL);
	/* multileader, whole or per region */
	sl_config_default(&c);
	assert_int_equal(sl_config_set(&c, "regions", "protocol", "multileader", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), 0);
	sl_config_default(&c);
	assert_int_equal(sl_config_set(&c, "regions", "protocols", "0:multileader", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), 0);
	assert_string_equal(sl_cfg_region_protocol(&c, 0), "multileader");
	assert_string_equal(sl_cfg_region_protocol(&c, 1), "standalone");
}

static void test_dump_roundtrip(void **u)
{
	(void)u;
	struct sl_config a, b;
	char err[256];
	sl_config_default(&a);
	assert_int_equal(sl_config_set(&a, "wal", "checkpoint_mb", "77", err, sizeof(err)), 0);
	char path[] = "/tmp/sl_cfg_dump_XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	sl_config_dump(&a, f);
	fclose(f);
	sl_config_default(&b);
	assert_int_equal(sl_config_load(&b, path, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(b.checkpoint_mb, 77);
	assert_int_equal(b.regions, a.regions);
	assert_string_equal(b.data_dir, a.data_dir);
}


/* A line rte_cfgfile would drop or reject without a word is an error naming its line. */
static void test_bad_lines(void **u)
{
	(void)u;
	static const struct {
		const char *text;
		const char *want;
	} bad[] = {
		{"[node]\nname = a\nbogus line\n", "line 3: 'bogus line'"},
		{"[node]\n# name = b\n", "line 2"},
		{"name = a\n[node]\n", "line 1: 'name = a': key = value before any [section]"},
		{"\n[node\nname = a\n", "line 2: '[node'"},
		{"[node]\n = a\n", "line 2"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sl_config c;
		char err[512] = "";
		sl_config_default(&c);
		char *p = write_tmp(bad[i].text);
		int rc = sl_config_load(&c, p, err, sizeof(err));
		unlink(p);
		assert_int_equal(rc, -EINVAL);
		if (strstr(err, bad[i].want) == NULL)
			fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].want);
		assert_string_equal(c.name, "node1"); /* nothing applied */
	}
	/* blank lines, ';' comments (also after a value) and blanks around '=' are fine */
	struct sl_config c;
	char err[512] = "";
	sl_config_default(&c);
	char *p = write_tmp("; top\n\n[node] ; section\n  name=lab9 ; the name\n\t\n[wal]\n"
			    "segment_mb = 8\n");
	int rc = sl_config_load(&c, p, err, sizeof(err));
	unlink(p);
	assert_int_equal(rc, 0);
	assert_string_equal(c.name, "lab9");
	assert_int_equal(c.wal_segment_mb, 8);
}

static void test_segment_smaller_than_buffer(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256];
	sl_config_default(&c);
	assert_int_equal(sl_config_set(&c, "wal", "segment_mb", "2", err, sizeof(err)), 0);
	assert_int_equal(sl_config_set(&c, "wal", "buffer_kb", "4096", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "segment_mb"));
	assert_non_null(strstr(err, "buffer_kb"));
	/* equal is enough: a segment holds one whole buffer */
	assert_int_equal(sl_config_set(&c, "wal", "buffer_kb", "2048", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), 0);
}

/* A WAL buffer holds the worst consensus ready (node_limits.h): the driver stage waits
 * for that much room and never for more, so a smaller buffer is refused at start. */
static void test_wal_buffer_holds_a_ready(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256];
	sl_config_default(&c);
	assert_int_equal(sl_config_set(&c, "wal", "buffer_kb", "128", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "buffer_kb = 128"));
	assert_non_null(strstr(err, "129 KiB"));
	assert_int_equal(sl_config_set(&c, "wal", "buffer_kb", "129", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), 0);
}

/* [cluster] fabric = udp: a cluster config with these [cluster] keys set (NULL = left). */
static int udp_cfg(struct sl_config *c, const char *port, const char *addrs, const char *macs,
		   char *err, size_t err_len)
{
	sl_config_default(c);
	assert_int_equal(sl_config_set(c, "cluster", "nodes", "3", err, err_len), 0);
	assert_int_equal(sl_config_set(c, "cluster", "fabric", "udp", err, err_len), 0);
	if (port != NULL)
		assert_int_equal(sl_config_set(c, "cluster", "fabric_port", port, err, err_len), 0);
	if (addrs != NULL)
		assert_int_equal(sl_config_set(c, "cluster", "addresses", addrs, err, err_len), 0);
	if (macs != NULL)
		assert_int_equal(sl_config_set(c, "cluster", "fabric_macs", macs, err, err_len), 0);
	return sl_config_finish(c, err, err_len);
}

#define ADDRS3 "1=10.9.0.1,2=10.9.0.2,3=10.9.0.3"

/* fabric = udp: the device's ethdev name (a vdev's, a PCI address in long form), every
 * node's address, static MACs; memif stays the default and needs no address. */
static void test_fabric_udp(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256];
	sl_config_default(&c);
	assert_int_equal(c.fabric, SL_FABRIC_MEMIF);
	assert_int_equal(sl_config_set(&c, "cluster", "fabric", "tcp", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "memif or udp"));
	assert_int_equal(udp_cfg(&c, "net_af_packet3,iface=veth1,qpairs=2,framesz=8192", ADDRS3,
				 "2=02:00:00:00:00:02", err, sizeof(err)),
			 0);
	assert_string_equal(c.fabric_dev, "net_af_packet3");
	assert_false(c.fabric_pci);
	assert_int_equal(c.fabric_ip[1], 0x0a090001);
	assert_int_equal(c.fabric_ip[3], 0x0a090003);
	assert_true(c.fabric_mac_set[2]);
	assert_false(c.fabric_mac_set[3]);
	assert_int_equal(c.fabric_mac[2][5], 2);
	assert_int_equal(c.fabric_udp_port, 7600);
	/* no fabric_dir needed: the memif sockets are not used */
	assert_string_equal(c.fabric_dir, "");
	assert_int_equal(udp_cfg(&c, "1:00.0", ADDRS3, NULL, err, sizeof(err)), 0);
	assert_true(c.fabric_pci);
	assert_string_equal(c.fabric_dev, "0000:01:00.0");
	assert_int_equal(udp_cfg(&c, "0000:af:1f.7", ADDRS3, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.fabric_dev, "0000:af:1f.7");
	/* the dump names the link type */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	sl_config_dump(&c, f);
	fclose(f);
	assert_non_null(strstr(buf, "\nfabric = udp\n"));
	assert_non_null(strstr(buf, "\naddresses = " ADDRS3 "\n"));
	free(buf);
}

/* Every mistake in the udp keys is refused at start with a message naming the key. */
static void test_fabric_udp_errors(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256];
	static const struct {
		const char *port, *addrs, *macs, *msg;
	} bad[] = {
		{NULL, ADDRS3, NULL, "needs [cluster] fabric_port"},
		{"eth1", ADDRS3, NULL, "expected a PCI address"},
		{"0000:01:40.0", ADDRS3, NULL, "not a PCI address"},
		{"net_tap0", NULL, NULL, "node 1 has no address"},
		{"net_tap0", "1=10.9.0.1,2=10.9.0.2", NULL, "node 3 has no address"},
		{"net_tap0", "1=10.9.0.1,2=10.9.0.2,2=10.9.0.3", NULL, "node 2 is given twice"},
		{"net_tap0", "1=10.9.0.1,2=10.9.0.2,4=10.9.0.3", NULL, "node id 1..3"},
		{"net_tap0", "1=10.9.0.1,2=10.9.0.1,3=10.9.0.3", NULL, "the same address"},
		{"net_tap0", "1=10.9.0.1,2=10.9.0.256,3=10.9.0.3", NULL, "IPv4"},
		{"net_tap0", "1=10.9.0.1,2=224.0.0.1,3=10.9.0.3", NULL, "IPv4"},
		{"net_tap0", "1=10.9.0.1,2 10.9.0.2,3=10.9.0.3", NULL, "expected ID="},
		{"net_tap0", ADDRS3, "2=01:00:00:00:00:02", "unicast MAC"},
		{"net_tap0", ADDRS3, "2=02:00:00:00:00", "unicast MAC"},
		/* af_packet's default frames (2048 bytes) are too small for fabric_mtu 8000 */
		{"net_af_packet0,iface=v1", ADDRS3, NULL, "give framesz=8192"},
		{"net_af_packet0,iface=v1,framesz=8064", ADDRS3, NULL, "packets of 7984 bytes"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(udp_cfg(&c, bad[i].port, bad[i].addrs, bad[i].macs, err,
					 sizeof(err)),
				 -EINVAL);
		if (strstr(err, bad[i].msg) == NULL)
			fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].msg);
	}
	/* a frame must fit in the IP and UDP headers of the MTU */
	sl_config_default(&c);
	assert_int_equal(sl_config_set(&c, "cluster", "fabric_mtu", "270", err, sizeof(err)), 0);
	assert_int_equal(sl_config_set(&c, "cluster", "nodes", "3", err, sizeof(err)), 0);
	assert_int_equal(sl_config_set(&c, "cluster", "fabric", "udp", err, sizeof(err)), 0);
	assert_int_equal(sl_config_set(&c, "cluster", "fabric_port", "net_tap0", err, sizeof(err)), 0);
	assert_int_equal(sl_config_set(&c, "cluster", "addresses", ADDRS3, err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "fabric_mtu = 270"));
	/* the last worker's port must exist */
	assert_int_equal(sl_config_set(&c, "cluster", "fabric_udp_port", "65535", err, sizeof(err)),
			 -EINVAL);
}

/* The shm ingest ring: the range the ring itself accepts, and a size limit naming both keys
 * (sluiced used to fail later with a bare "Invalid argument"). */
static void test_ingest_ring_geometry(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256];
	sl_config_default(&c);
	assert_int_equal(sl_config_set(&c, "ingest", "shm_ring_entries", "1048576", err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(sl_config_set(&c, "ingest", "shm_ring_entries", "65536", err, sizeof(err)), 0);
	assert_int_equal(sl_config_set(&c, "ingest", "shm_slots", "256", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "shm_slots"));
	assert_non_null(strstr(err, "shm_ring_entries"));
	assert_int_equal(sl_config_set(&c, "ingest", "shm_slots", "16", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(&c, err, sizeof(err)), 0);
}

/* The data dir: its parent must exist (never created), and one holder at a time. */
static void test_datadir_lock(void **u)
{
	(void)u;
	char base[] = "/tmp/sl_datadir_XXXXXX";
	assert_non_null(mkdtemp(base));
	char dir[128], missing[128], lockf[160];
	snprintf(dir, sizeof(dir), "%s/data", base);
	snprintf(missing, sizeof(missing), "%s/nonexistent/data", base);
	snprintf(lockf, sizeof(lockf), "%s/%s", dir, SL_DATADIR_LOCK_FILE);
	char err[512] = "";
	int fd1 = -1, fd2 = -1;
	assert_int_equal(sl_datadir_lock(missing, &fd1, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "does not exist"));
	char parent[160];
	snprintf(parent, sizeof(parent), "%s/nonexistent", base);
	assert_int_equal(access(parent, F_OK), -1); /* nothing was created */
	assert_int_equal(fd1, -1);

	assert_int_equal(sl_datadir_lock(dir, &fd1, err, sizeof(err)), 0);
	assert_true(fd1 >= 0);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* a second holder (another open file, as another process would have) is refused
	 * with the first one's pid in the message */
	assert_int_equal(sl_datadir_lock(dir, &fd2, err, sizeof(err)), -EBUSY);
	assert_int_equal(fd2, -1);
	char pid[32];
	snprintf(pid, sizeof(pid), "pid %d", (int)getpid());
	if (strstr(err, pid) == NULL)
		fail_msg("'%s' does not name %s", err, pid);
	/* released with its descriptor (also when the process dies) */
	close(fd1);
	assert_int_equal(sl_datadir_lock(dir, &fd2, err, sizeof(err)), 0);
	close(fd2);
	/* a file where the data dir should be */
	unlink(lockf);
	rmdir(dir);
	FILE *f = fopen(dir, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(sl_datadir_lock(dir, &fd1, err, sizeof(err)), -ENOTDIR);
	unlink(dir);
	rmdir(base);
}

/* Node 2 of a three-node cluster of four raft regions. */
static void map_config(struct sl_config *c)
{
	char err[256];
	sl_config_default(c);
	assert_int_equal(sl_config_set(c, "regions", "count", "4", err, sizeof(err)), 0);
	assert_int_equal(sl_config_set(c, "regions", "protocol", "raft", err, sizeof(err)), 0);
	assert_int_equal(sl_config_set(c, "cluster", "nodes", "3", err, sizeof(err)), 0);
	assert_int_equal(sl_config_set(c, "node", "id", "2", err, sizeof(err)), 0);
	assert_int_equal(sl_config_set(c, "cluster", "fabric_dir", "/tmp", err, sizeof(err)), 0);
	assert_int_equal(sl_config_finish(c, err, sizeof(err)), 0);
}

/* A region map (sluice-ctld's, kept in a data dir): the derived one round-trips through
 * its text form; a set map replaces placement; maps that do not fit the node are refused
 * whole with the region named; damaged text does not parse; diff names the region. */
static void test_region_map(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256], text[4096];
	map_config(&c);
	int len = sl_cfg_map_format(&c, text, sizeof(text));
	assert_true(len > 0);
	assert_string_equal(text, "regions 4\n0 raft 1 1,2,3\n1 raft 2 2,3,1\n2 raft 3 3,1,2\n"
				  "3 raft 2 1,2,3\n");
	struct sl_cfg_map_region m[8], d[8];
	assert_int_equal(sl_cfg_map_parse(text, m, 8), 4);
	for (uint32_t r = 0; r < 4; r++)
		sl_cfg_map_get(&c, r, &d[r]);
	assert_int_equal(sl_cfg_map_diff(m, d, 4), -1);
	/* region 3 single-copy on node 1: node 2 holds no replica of it then */
	snprintf(m[3].protocol, sizeof(m[3].protocol), "standalone");
	m[3].copies = 1;
	m[3].nodes[0] = 1;
	m[3].preferred = 1;
	assert_int_equal(sl_cfg_map_diff(m, d, 4), 3);
	assert_true(sl_cfg_region_here(&c, 3));
	assert_int_equal(sl_cfg_map_set(&c, m, 4, err, sizeof(err)), 0);
	assert_false(sl_cfg_region_here(&c, 3));
	assert_string_equal(sl_cfg_region_protocol(&c, 3), "standalone");
	assert_string_equal(sl_cfg_region_protocol(&c, 2), "raft");
	assert_int_equal(sl_cfg_region_preferred(&c, 1), 2);
	assert_true(sl_cfg_map_format(&c, text, sizeof(text)) > 0);
	assert_non_null(strstr(text, "\n3 standalone 1 1\n"));
	assert_int_equal(sl_cfg_map_format(&c, text, 20), -ENOSPC);
	/* a protocol switch changes a region's protocol at run time: not a map difference
	 * (the replicas are); every protocol built in is registered first */
	struct sl_cfg_map_region sw[4];
	memcpy(sw, m, sizeof(sw));
	snprintf(sw[2].protocol, sizeof(sw[2].protocol), "multileader");
	assert_int_equal(sl_cfg_map_diff(m, sw, 4), -1);
	assert_int_equal(sl_cfg_protocols_register(&c), 0);
	assert_int_equal(sl_cfg_region_set_protocol(&c, 2, "multileader"), 0);
	assert_string_equal(sl_cfg_region_protocol(&c, 2), "multileader");
	assert_string_equal(sl_cfg_region_protocol(&c, 1), "raft");
	assert_int_equal(sl_cfg_region_set_protocol(&c, 2, "paxos"), -ENOENT);
	assert_int_equal(sl_cfg_region_set_protocol(&c, 4, "raft"), -ENOENT);
	assert_string_equal(sl_cfg_region_protocol(&c, 2), "multileader");
	assert_int_equal(sl_cfg_region_set_protocol(&c, 2, "raft"), 0);
	/* refused, and nothing of it taken: a replica twice, a node beyond the cluster, the
	 * preferred leader not a replica, two copies of a single-copy protocol, an unknown
	 * protocol, another region count */
	struct sl_cfg_map_region bad[4];
	for (int k = 0; k < 6; k++) {
		memcpy(bad, m, sizeof(bad));
		uint32_t n = 4;
		if (k == 0)
			bad[1].nodes[1] = bad[1].nodes[0];
		else if (k == 1)
			bad[2].nodes[2] = 4;
		else if (k == 2)
			bad[0].preferred = 9;
		else if (k == 3)
			bad[3].copies = 2, bad[3].nodes[1] = 2;
		else if (k == 4)
			snprintf(bad[2].protocol, sizeof(bad[2].protocol), "paxos");
		else
			n = 3;
		assert_int_equal(sl_cfg_map_set(&c, bad, n, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "region"));
	}
	assert_false(sl_cfg_region_here(&c, 3)); /* still the map set before */
	/* damaged text */
	static const char *const broken[] = {
	    "", "regions 0\n", "regions 2\n0 raft 1 1,2,3\n", "regions 1\n1 raft 1 1\n",
	    "regions 1\n0 raft 1 1,\n", "regions 1\n0 raft 1 1\nextra", "regions 1\n0 raft 1\n",
	    "regions 1\n0 raft 1 1,2,3,4,5,6,7,8,9,10\n"};
	for (size_t k = 0; k < sizeof(broken) / sizeof(broken[0]); k++)
		assert_int_equal(sl_cfg_map_parse(broken[k], m, 8), -EBADMSG);
}

/* A map after a split (sluice-ctld's `regions` once a region was cut): ranged, more
 * regions than [regions] regions, each past them split from a lower one; it round-trips
 * through the data dir's text; ranges that do not tile the hash space, a region past the
 * first ones born of no split, or more regions unranged are refused whole. */
static void test_region_map_split(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256], text[4096];
	map_config(&c);
	uint64_t lo = 1, hi = 1;
	uint32_t from = 9, ep = 9;
	sl_cfg_region_range(&c, 1, &lo, &hi, &from, &ep); /* even shares before a split */
	assert_true(lo == 0x4000000000000000ull && hi == 0x7fffffffffffffffull);
	assert_true(from == 0 && ep == 0);
	struct sl_cfg_map_region m[8];
	for (uint32_t r = 0; r < 4; r++) {
		sl_cfg_map_get(&c, r, &m[r]);
		m[r].ranged = true;
	}
	m[4] = m[0];
	m[0].hash_hi = 0x1fffffffffffffffull; /* region 0 cut at 2^61: region 4 the rest */
	m[4].hash_lo = 0x2000000000000000ull;
	m[4].split_from = 1; /* region 0, + 1 */
	m[4].split_epoch = 1;
	assert_int_equal(sl_cfg_map_set(&c, m, 5, err, sizeof(err)), 0);
	assert_int_equal(c.regions, 5);
	sl_cfg_region_range(&c, 4, &lo, &hi, &from, &ep);
	assert_true(lo == 0x2000000000000000ull && hi == 0x3fffffffffffffffull);
	assert_true(from == 1 && ep == 1);
	sl_cfg_region_range(&c, 0, &lo, &hi, &from, &ep);
	assert_true(lo == 0 && hi == 0x1fffffffffffffffull && from == 0);
	int len = sl_cfg_map_format(&c, text, sizeof(text));
	assert_true(len > 0);
	assert_non_null(strstr(text, "\n4 raft 1 1,2,3 2000000000000000 3fffffffffffffff 1 1\n"));
	struct sl_cfg_map_region back[8];
	assert_int_equal(sl_cfg_map_parse(text, back, 8), 5);
	for (uint32_t r = 0; r < 5; r++) {
		assert_true(back[r].ranged);
		assert_true(back[r].hash_lo == m[r].hash_lo && back[r].hash_hi == m[r].hash_hi);
		assert_int_equal(back[r].split_from, m[r].split_from);
		assert_int_equal(back[r].split_epoch, m[r].split_epoch);
	}
	/* refused, nothing taken: a gap, an overlap, region 4 born of no split, five
	 * regions without ranges */
	struct sl_config keep = c;
	for (int k = 0; k < 4; k++) {
		struct sl_cfg_map_region bad[8];
		memcpy(bad, m, sizeof(bad));
		if (k == 0)
			bad[4].hash_lo++;
		else if (k == 1)
			bad[0].hash_hi++;
		else if (k == 2)
			bad[4].split_from = 0;
		else
			for (uint32_t r = 0; r < 5; r++)
				bad[r].ranged = false;
		c.regions = 4; /* as a node starting from [regions] regions */
		assert_int_equal(sl_cfg_map_set(&c, bad, 5, err, sizeof(err)), -EINVAL);
		c.regions = keep.regions;
	}
	assert_int_equal(c.regions, 5);
	/* a ranged map's lines all say their range */
	assert_int_equal(sl_cfg_map_parse("regions 2\n0 raft 1 1 0 7fffffffffffffff 0 0\n"
					  "1 raft 1 1\n",
					  back, 8),
			 -EBADMSG);
}

/* A merge after the split: region 4 merged back into region 0 at its segment 2; the
 * merged region's range is history, outside the tiling; its line says into and epoch. */
static void test_region_map_merge(void **u)
{
	(void)u;
	struct sl_config c;
	char err[256], text[4096];
	map_config(&c);
	struct sl_cfg_map_region m[8];
	for (uint32_t r = 0; r < 4; r++) {
		sl_cfg_map_get(&c, r, &m[r]);
		m[r].ranged = true;
	}
	m[4] = m[0];
	m[4].hash_lo = 0x2000000000000000ull;
	m[4].split_from = 1;
	m[4].split_epoch = 1;
	m[4].merged_into = 1; /* into region 0 (+ 1), whose range is the whole again */
	m[4].merge_epoch = 2;
	assert_int_equal(sl_cfg_map_set(&c, m, 5, err, sizeof(err)), 0);
	uint32_t ep = 0;
	assert_int_equal(sl_cfg_region_merged(&c, 4, &ep), 1);
	assert_int_equal(ep, 2);
	assert_int_equal(sl_cfg_region_merged(&c, 0, &ep), 0);
	int len = sl_cfg_map_format(&c, text, sizeof(text));
	assert_true(len > 0);
	assert_non_null(strstr(text, "\n4 raft 1 1,2,3 2000000000000000 3fffffffffffffff 1 1 1 2\n"));
	struct sl_cfg_map_region back[8];
	assert_int_equal(sl_cfg_map_parse(text, back, 8), 5);
	assert_int_equal(back[4].merged_into, 1);
	assert_int_equal(back[4].merge_epoch, 2);
	assert_int_equal(back[0].merged_into, 0);
	/* refused: the live ranges leave a gap (region 0 back at its half), a region merged
	 * into itself, a merge without its segment */
	for (int k = 0; k < 3; k++) {
		struct sl_cfg_map_region bad[8];
		memcpy(bad, m, sizeof(bad));
		if (k == 0)
			bad[0].hash_hi = 0x1fffffffffffffffull;
		else if (k == 1)
			bad[4].merged_into = 5;
		else
			bad[4].merge_epoch = 0;
		assert_int_equal(sl_cfg_map_set(&c, bad, 5, err, sizeof(err)), -EINVAL);
	}
	assert_int_equal(sl_cfg_map_parse("regions 2\n0 raft 1 1 0 ffffffffffffffff 0 0\n"
					  "1 raft 1 1 0 ffffffffffffffff 0 0 0 3\n",
					  back, 8),
			 -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file_overrides),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_dump_roundtrip),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_region_map_split),
		cmocka_unit_test(test_region_map_merge),
		cmocka_unit_test(test_segment_smaller_than_buffer),
	    cmocka_unit_test(test_wal_buffer_holds_a_ready),
		cmocka_unit_test(test_datadir_lock),
		cmocka_unit_test(test_ingest_ring_geometry),
		cmocka_unit_test(test_fabric_udp),
		cmocka_unit_test(test_fabric_udp_errors),
		cmocka_unit_test(test_region_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
