#!/usr/bin/python3
"""malformed.py IFACE NODE_IP OUR_IP SOCKET - hostile traffic against sluiced, from inside
the test's network namespace: crafted Ethernet frames on a raw socket (truncated headers,
bad IP and UDP checksums, bad fragments, bad lengths; a point in two fragments), and line protocol datagrams with
oversize keys, invalid UTF-8 and out-of-range numbers, each interleaved with valid points.
Checks: the node keeps serving, every valid point is stored, and the per-reason counters
show each case."""
import socket
import struct
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sltest import ctl, query_points  # noqa: E402

T0 = 1700000000000000000


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def mac_of(ip):
    with open("/proc/net/arp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[0] == ip:
                return bytes.fromhex(parts[3].replace(":", ""))
    raise RuntimeError(f"no ARP entry for {ip}")


def ipv4(src, dst, payload, proto=17, flags_frag=0, bad_csum=False, total=None, ihl=5, ip_id=1):
    tl = total if total is not None else 20 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, tl, ip_id, flags_frag, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    c = csum(hdr)
    if bad_csum:
        c ^= 0x5555
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def udp(src, dst, sport, dport, data, bad_csum=False, length=None):
    ln = length if length is not None else 8 + len(data)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, 8 + len(data))
    h = struct.pack("!HHHH", sport, dport, ln, 0)
    c = csum(pseudo + h + data) or 0xFFFF
    if bad_csum:
        c ^= 0x00FF
    return struct.pack("!HHHH", sport, dport, ln, c) + data


def main():
    iface, node_ip, our_ip, sock_path = sys.argv[1:5]
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    raw.bind((iface, 0))
    node_mac = mac_of(node_ip)
    our_mac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
    eth = node_mac + our_mac + b"\x08\x00"
    good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    before = ctl(sock_path, "stats")["totals"]
    valid = {}  # series -> {ts: value}
    seq = [0]

    def send_valid():
        i = seq[0]
        seq[0] += 1
        key = f"mal,case=v{i % 7} x"
        valid.setdefault(key, {})[T0 + i] = float(i)
        good.sendto(f"mal,case=v{i % 7} x={i}.0 {T0 + i}\n".encode(), (node_ip, 8089))

    line = b"mal,case=raw x=1.0 1\n"

    def frags(dport, data, ip_id, cut=16):
        """A UDP datagram to dport as two IPv4 fragments, cut after `cut` bytes."""
        d = udp(our_ip, node_ip, 5000, dport, data)
        return [eth + ipv4(our_ip, node_ip, d[:cut], flags_frag=0x2000, ip_id=ip_id),
                eth + ipv4(our_ip, node_ip, d[cut:], flags_frag=cut // 8, ip_id=ip_id)]

    # a valid point that arrives as two fragments, the last one first
    valid.setdefault("mal,case=frag x", {})[T0] = 7.0
    whole = frags(8089, f"mal,case=frag x=7.0 {T0}\n".encode(), 100)
    cases = {
        "drop_truncated": [eth + b"\x45\x00", eth + ipv4(our_ip, node_ip, b"")[:12]],
        "drop_bad_ip_csum": [eth + ipv4(our_ip, node_ip, udp(our_ip, node_ip, 5000, 8089, line), bad_csum=True)],
        "frag_reassembled": whole[::-1],
        # fragments of ICMP (not reassembled), and of a datagram for a port that takes none
        "drop_fragment": [eth + ipv4(our_ip, node_ip, b"\x08" + bytes(15), proto=1, flags_frag=0x2000)]
        + frags(5353, line, 101),
        # not the last yet not 8-byte units; no data at all
        "drop_bad_fragment": [eth + ipv4(our_ip, node_ip, line[:13], flags_frag=0x2000, ip_id=102),
                              eth + ipv4(our_ip, node_ip, b"", flags_frag=0x0002, ip_id=102)],
        "drop_fragment_oversize": [eth + ipv4(our_ip, node_ip, line[:16], flags_frag=0x3fff, ip_id=103)],
        # the first fragment twice
        "frag_bad": [frags(8089, line, 104)[0], frags(8089, line, 104)[0]],
        # a datagram whose last fragment never comes (freed after [net] frag_timeout_ms)
        "frag_expired": [frags(8089, line, 105)[0]],
        "drop_bad_udp_csum": [eth + ipv4(our_ip, node_ip, udp(our_ip, node_ip, 5000, 8089, line, bad_csum=True))],
        "drop_bad_udp_len": [eth + ipv4(our_ip, node_ip, udp(our_ip, node_ip, 5000, 8089, line, length=4000))],
        "drop_bad_ip_len": [eth + ipv4(our_ip, node_ip, udp(our_ip, node_ip, 5000, 8089, line), total=4000)],
        "drop_bad_ihl": [eth + ipv4(our_ip, node_ip, udp(our_ip, node_ip, 5000, 8089, line), ihl=3)],
        "drop_bad_ip_version": [eth + bytes([0x65]) + ipv4(our_ip, node_ip, line)[1:]],
        "drop_unsupported_proto": [eth + ipv4(our_ip, node_ip, b"\0" * 20, proto=6)],
    }
    for name, frames in cases.items():
        for fr in frames:
            send_valid()
            raw.send(fr)
            send_valid()
    # line protocol: bad lines inside datagrams that also carry valid lines
    bad_lines = {
        "lp_key_too_long": "mal," + "t=" + "k" * 300 + " x=1.0 5\n",
        "lp_invalid_utf8": None,
        "lp_out_of_range": "mal,case=oor x=9223372036854775808i 5\n",
        "lp_bad_number": "mal,case=bn x=1.2.3 5\n",
        "lp_bad_timestamp": "mal,case=bt x=1.0 12ab\n",
        "lp_no_fields": "mal,case=nf\n",
    }
    for name, text in bad_lines.items():
        i = seq[0]
        seq[0] += 1
        key = f"mal,case=v{i % 7} x"
        valid.setdefault(key, {})[T0 + i] = float(i)
        ok_line = f"mal,case=v{i % 7} x={i}.0 {T0 + i}\n".encode()
        bad = b"mal,case=u\xff\xfe x=1.0 5\n" if text is None else text.encode()
        good.sendto(bad + ok_line + bad, (node_ip, 8089))
    # session protocol port: garbage, a truncated header, a bad CRC
    for bad in (b"\x00" * 40, b"SLSP\x01", b"SLSP" + bytes(60)):
        send_valid()
        good.sendto(bad, (node_ip, 7400))
    # wait (bounded) for every valid point and every counter (an expiry takes the
    # node's fragment timeout)
    names = list(cases) + list(bad_lines) + ["sess_bad_magic", "sess_truncated"]
    deadline = time.time() + 15
    while True:
        missing = 0
        for key, pts in valid.items():
            got = {ts: v for ts, v in query_points(sock_path, key)}
            missing += sum(1 for ts, v in pts.items() if got.get(ts) != v)
        after = ctl(sock_path, "stats")["totals"]
        failed = [n for n in names if after[n] - before.get(n, 0) <= 0]
        if (missing == 0 and not failed) or time.time() > deadline:
            break
        time.sleep(0.2)
    for name in names:
        print(f"  {name:24s} +{after[name] - before.get(name, 0)}")
    n_valid = sum(len(v) for v in valid.values())
    print(f"malformed: {n_valid} valid points interleaved with the bad traffic: {missing} missing")
    if failed:
        print(f"malformed: counters did not move: {failed}")
    return 0 if missing == 0 and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
