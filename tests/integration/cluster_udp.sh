#!/usr/bin/env bash
# cluster_udp.sh SLUICED PRODUCER VERIFY - three sluiced nodes linked by the fabric over
# Ethernet/IPv4/UDP ([cluster] fabric = udp), as on three hosts: each node runs
# net_af_packet on its own veth, the veths meet on a bridge, all inside a network
# namespace this test creates (nothing outside it is touched); jumbo frames (MTU 9000).
# Every region is a 3-replica raft group. Under load from a producer per node: the
# leader of region 0 SIGKILLed and restarted with another MAC, then frames dropped on one
# of its links by debug_fabric. Checks: peers resolve each other by ARP, writes go on with
# a node down, the node catches up, every acknowledged point reads back exactly from
# every node, the fabric counters show UDP traffic and no damaged or misrouted frame, and
# a host on the network can ping a node.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3
# paced (10 ms after each batch): the load outlasts the kill and the 2 s that follow it
# however fast the build (each producer's 480 batches take at least 4.8 s)
POINTS=${POINTS:-240000} SERIES=${SERIES:-100} BATCH=${BATCH:-500}
NAME=clu9u$$
CL_PROD_ARGS=(--pace-ms 10)
. "$(dirname "$0")/lib.sh"
sl_need_root cluster_udp
NS=slu9u$$
CL_EXEC=(ip netns exec "$NS")
. "$(dirname "$0")/cluster_lib.sh"

# the fabric network: a bridge and a veth pair per node, only inside the namespace
# (removed with it by sl_cleanup, also on failure)
SL_NS=$NS
ip netns add "$NS"
# no IPv6 chatter on the fabric network (a kernel without IPv6 has none anyway)
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
ip -n "$NS" link set lo up
ip -n "$NS" link add slu9br type bridge
for i in 1 2 3; do
	ip -n "$NS" link add "slu9a$i" mtu 9000 type veth peer name "slu9n$i" mtu 9000
	ip -n "$NS" link set "slu9a$i" master slu9br up
	ip -n "$NS" link set "slu9n$i" up
done
ip -n "$NS" link set slu9br mtu 9000 up
ADDRS=1=10.99.0.1,2=10.99.0.2,3=10.99.0.3
FABRIC_MTU=${FABRIC_MTU:-8000} # e.g. 1500 for a network without jumbo frames
# af_packet frames of 8 KiB hold a 8000-byte IP packet (fabric_mtu + 80 bytes), and fit
# the fabric's buffers (the power of two above fabric_mtu + 14); one queue pair per worker
FRAMESZ=$([ "$FABRIC_MTU" -le 1968 ] && echo 2048 || echo 8192)
cl_node_args() {
	printf '%s\n' --set cluster.fabric=udp \
		--set "cluster.fabric_port=net_af_packet9,iface=slu9n$1,qpairs=2,framesz=$FRAMESZ,blocksz=8192,framecnt=256" \
		--set "cluster.addresses=$ADDRS" --set cluster.fabric_mtu="$FABRIC_MTU" \
		--set debug.fault_injection=true
}
total() { echo $(($(cl_stat 1 "$1") + $(cl_stat 2 "$1") + $(cl_stat 3 "$1"))); }

for i in 1 2 3; do cl_start "$i"; done
cl_wait_leaders 1 0
echo "leaders: $(cl_regions 1 "[r['leader'] for r in rs]")"
for i in 1 2 3; do
	[ "$(cl_stat "$i" fab_arp_learned)" -ge 2 ] || { echo "FAIL: node $i did not learn its peers' MACs"; exit 1; }
done
cl_producers
cl_wait_acks 60
K=$(cl_regions 1 "rs[0]['leader']")
cl_kill "$K"
echo "node $K killed after $(cl_acks) acknowledged batches"
cl_writes_go_on "$K"
# it comes back with another MAC (a replaced NIC): its peers must learn the new one
NEWMAC=02:59:00:00:00:0$K
ip -n "$NS" link set "slu9n$K" down
ip -n "$NS" link set "slu9n$K" address "$NEWMAC"
ip -n "$NS" link set "slu9n$K" up
cl_start "$K"
# tests-only fault injection works on UDP links too: a lossy link between the restarted
# node and the next one until frames were dropped (bounded: 10 s)
P=$((K % 3 + 1))
"$CTL" --socket "$(cl_sock "$K")" call debug_fabric "{\"peer\":$P,\"drop_pct\":20}" >/dev/null
for _ in $(seq 1 100); do
	[ "$(cl_stat "$K" fab_fault_dropped)" -gt 20 ] && break
	sleep 0.1
done
"$CTL" --socket "$(cl_sock "$K")" call debug_fabric "{\"peer\":$P,\"drop_pct\":0}" >/dev/null
fd=$(cl_stat "$K" fab_fault_dropped)
[ "$fd" -gt 20 ] || { echo "FAIL: debug_fabric dropped $fd frames on a UDP link in 10 s"; exit 1; }
echo "debug_fabric: node $K dropped $fd frames to and from node $P"
sl_wait_producers
c=$(cl_caught_up)
# status shows every node's peers up with the MAC it learned for them (node K's new one)
for i in 1 2 3; do
	st=$("$CTL" --socket "$(cl_sock "$i")" --json status | python3 -c "import json,sys; f=json.load(sys.stdin)['fabric']; print(f['link'], f['address'], len(f['peers']), all(p['up'] and p['mac'] for p in f['peers']), [p['mac'] for p in f['peers'] if p['node'] == $K])")
	want="udp 10.99.0.$i 2 True ['$NEWMAC']"
	[ "$i" = "$K" ] && want="udp 10.99.0.$i 2 True []"
	[ "$st" = "$want" ] || { echo "FAIL: node $i fabric status: $st, expected $want"; exit 1; }
done
cl_verify_all
# a host on the fabric network reaches a node: the kernel in the namespace resolves the
# node's address by ARP (the node answers) and pings it (the node answers that too)
if command -v ping >/dev/null; then
	ip -n "$NS" addr add 10.99.0.100/24 dev slu9br
	ip netns exec "$NS" ping -c 2 -i 0.2 -W 2 10.99.0.1 >/dev/null ||
		{ echo "FAIL: node 1 did not answer ARP and ping on the fabric network"; exit 1; }
	[ "$(cl_stat 1 fab_echo_replies)" -ge 2 ] || { echo "FAIL: node 1 counted no echo reply"; exit 1; }
else
	echo "no ping on this host: the ping of a node is left out"
fi
for i in 1 2 3; do
	for ctr in fab_drop_crc fab_drop_dest fab_drop_ip_hdr fab_drop_udp fab_drop_udp_port fab_drop_ip_src fab_drop_ip_frag; do
		v=$(cl_stat "$i" $ctr)
		[ "$v" -eq 0 ] || { echo "FAIL: node $i: $ctr = $v"; exit 1; }
	done
	rx=$(cl_stat "$i" fab_frames_rx)
	[ "$rx" -gt 100 ] || { echo "FAIL: node $i received only $rx fabric frames"; exit 1; }
done
fwd=$(total fwd_answers)
[ "$fwd" -gt 0 ] || { echo "FAIL: nothing was forwarded to a leader on another node"; exit 1; }
echo "cluster_udp: frames $(total fab_frames_tx) sent, $(total fab_frames_rx) received over UDP;" \
	"$(total fab_handoffs) handed to their core; ARP $(total fab_arp_requests) requests," \
	"$(total fab_arp_replies) replies; $(total fab_seq_gaps) sequence gaps, $(total fab_tx_full) TX full; $fwd forwarded batches; node $K caught up to $c"
echo "cluster_udp: PASS"
