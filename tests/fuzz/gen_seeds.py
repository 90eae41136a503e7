#!/usr/bin/env python3
# gen_seeds.py - writes the seed corpus of fuzz_pkt (binary frames), fuzz_lineproto (text
# datagrams), fuzz_shm (shm ingest record streams) and fuzz_session_snap (session snapshot
# images) into corpus/; rerun after changing it. Frames address 02:00:00:00:00:01 /
# 10.0.0.1, the local endpoint fuzz_pkt.c classifies for.
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
US_MAC = bytes([2, 0, 0, 0, 0, 1])
PEER_MAC = bytes([2, 0, 0, 0, 0, 0x99])
US_IP = bytes([10, 0, 0, 1])
PEER_IP = bytes([10, 0, 0, 99])


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(payload, ethertype=0x0800, dst=US_MAC):
    return dst + PEER_MAC + struct.pack("!H", ethertype) + payload


def ipv4(proto, l4, frag=0x4000, opts=b"", src=PEER_IP, dst=US_IP, ttl=64):
    ihl = 5 + len(opts) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(l4), 0x1234, frag, ttl,
                    proto, 0, src, dst) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + l4


def udp(payload, sport=40000, dport=8089, with_csum=True):
    u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if with_csum:
        pseudo = PEER_IP + US_IP + struct.pack("!BBH", 0, 17, len(u))
        c = csum(pseudo + u) or 0xFFFF
        u = u[:6] + struct.pack("!H", c) + u[8:]
    return u


def icmp_echo(data):
    m = struct.pack("!BBHHH", 8, 0, 0, 0xBEEF, 1) + data
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def arp(op, tpa=US_IP, dst=b"\xff" * 6):
    a = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + PEER_MAC + PEER_IP + b"\0" * 6 + tpa
    return eth(a, 0x0806, dst)


PKT = {
    "udp_lineproto": eth(ipv4(17, udp(b"cpu,host=a usage=1.5 1000\nmem free=3i\n"))),
    "udp_no_csum": eth(ipv4(17, udp(b"m f=1", with_csum=False))),
    "udp_ip_options": eth(ipv4(17, udp(b"m f=1"), opts=b"\x01\x01\x01\x00")),
    "udp_padded": eth(ipv4(17, udp(b"x"))) + b"\0" * 17,
    "icmp_echo": eth(ipv4(1, icmp_echo(b"abcdefghijklmnop"))),
    "icmp_echo_odd": eth(ipv4(1, icmp_echo(b"odd"), opts=b"\x01" * 8)),
    "arp_request": arp(1),
    "arp_reply": arp(2, dst=US_MAC),
    "fragment": eth(ipv4(17, udp(b"frag"), frag=0x2000)),
    "vlan": eth(b"\x00\x05\x08\x00" + ipv4(17, udp(b"v")), 0x8100),
    "tcp": eth(ipv4(6, b"\0" * 20)),
    "ipv6_ethertype": eth(b"\x60" + b"\0" * 39, 0x86DD),
}

LP = {
    "basic": b"cpu,host=a,region=eu usage=1.5,idle=98i,up=true,name=\"x\" 1700000000000000000\n",
    "escapes": b"my\\ meas\\,x,t\\=k=v\\ 1\\,2 f\\ k=\"q\\\"uote \\\\ b\\x\" 5\r\n",
    "types": b"m a=1,b=-2i,c=3u,d=T,e=FALSE,f=-1e9,g=.5,h=\"\"\n# comment\n\nm2 x=1\n",
    "limits": b"m v=9223372036854775807i,w=18446744073709551615u,x=1.7976931348623157e308 -9223372036854775808\n",
    "bad_lines": b"m f=1\nbad line\nm,t=1\nm f=inf\nm f=1i,f=2i\nm,a=1,a=2 f=1\nm f=\"open\nm f=1 12a\n",
    "utf8": "m,host=h\u00e9llo \u6e29\u5ea6=1,s=\"\U0001F600\"\n".encode() + b"m,t=\xed\xa0\x80 f=1\n",
    "quoted_newline": b"log msg=\"x\nfake,host=evil value=666 5\n\" 7\nm s=\"a\\\"\nb\\\\\",t=1 2\n"
                      b"baz,t=\"a x=1 5\nm,t=a\\\nb f=1\nm s=\"open\nm f=1\n",
    "backslashes": b"m,t=a\\b v=1\nm,t=a\\\\b v=1\ncpu,reg\\\\=ion=east value=1\n"
                   b"cpu,r=east\\\\  value=1\nm\\\\ q,k=v f=1\nm \\a=1,f\\\\\"=2,f\"=3,g\\\\=4\n",
    "tab_field_key": b"m2 x=-1e-9,\tn=.5,h=1\nm \tv=1\n",
    "dup_fields": b"m f=1,f=2i,g=3,f=\"x\" 5\nm f\\,=1,f\\,=2\n",
    "nul": b"\0\0m f=1 \0 5\nm,t=a\0b f=1\nm f\0=1\nm s=\"a\0b\"\n",
}


def rec(seq, index, count, key_len=5, typ=1, value=0, head=False):
    """fuzz_shm's compact record: op byte (bit 0: head reached after it), then 7 bytes."""
    return bytes([1 if head else 0, seq, index, count]) + struct.pack("<HBB", key_len, typ, value)


def wide(seq, index, count, key_len=5, typ=1, value=0, head=False):
    """fuzz_shm's raw 40-byte wire header (op bit 1)."""
    return bytes([3 if head else 2]) + struct.pack("<QIIqQHB5x", seq, index, count, 7, value,
                                                    key_len, typ)


SHM = {
    # ring of 16: two whole batches, then one the head cuts short
    "batches": bytes([4]) + rec(1, 0, 2) + rec(1, 1, 2) + rec(2, 0, 1, head=True)
    + rec(3, 0, 3) + rec(3, 1, 3, head=True),
    # bad key, type and bool inside a well-framed batch
    "bad_points": bytes([4]) + rec(1, 0, 3, key_len=0) + rec(1, 1, 3, typ=9)
    + rec(1, 2, 3, typ=4, value=7, head=True),
    # count 0, index beyond the count, replayed seq, a start abandoning an open batch
    "framing": bytes([4]) + rec(5, 0, 0) + rec(5, 3, 2) + rec(6, 0, 2) + rec(7, 0, 1)
    + rec(6, 1, 2) + rec(6, 0, 1, head=True),
    # absurd counts and key lengths through raw headers
    "wide": bytes([7]) + wide(1, 0, 0xFFFFFFFF) + wide(2, 0, 128, key_len=0xFFFF)
    + wide(2, 1, 128, key_len=256) + wide(0xFFFFFFFFFFFFFFFF, 0, 1, head=True),
}


def snap_image(records, count=None, applied=12345):
    """fuzz_session_snap seed: byte 0 = 0x03 (capacity 1; fix up count, length and CRCs)."""
    body = b"".join(struct.pack("<QQIBBH", sid, dur, cnt, st, lvl, 0)
                    for sid, dur, cnt, st, lvl in records)
    hdr = struct.pack("<IHHIIQ", 0x54534C53, 1, 0, len(records) if count is None else count, 0,
                      applied) + b"\0" * 8  # reserved u32, header CRC (fixed up)
    return hdr + body + b"\0\0\0\0"


SNAP = {
    "empty": bytes([0x03]) + snap_image([]),
    "three": bytes([0x33]) + snap_image([(7, 10, 5, 0, 1), (8, 0, 0, 0, 0), (2**63, 99, 1, 6, 2)]),
    "too_many": bytes([0x03]) + snap_image([(1, 1, 1, 0, 1), (2, 2, 2, 0, 1)]),
    "duplicate_id": bytes([0x13]) + snap_image([(5, 1, 1, 0, 1), (5, 2, 1, 0, 1)]),
    "unsealed": bytes([0x10]) + snap_image([(9, 3, 3, 0, 1)]),
}


def main():
    for sub, seeds in (("pkt", PKT), ("lineproto", LP), ("shm", SHM), ("session_snap", SNAP)):
        d = os.path.join(HERE, "corpus", sub)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
