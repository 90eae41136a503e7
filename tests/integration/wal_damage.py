#!/usr/bin/env python3
"""wal_damage.py - edits a stopped node's WAL (format 3, docs/wal.md) for wal_damage.sh.
  flip DIR TARGET   flips one payload byte of a record: TARGET first|middle|last (data
                    records) | lastflush (first record of the last data flush) | close
                    (header of the clean-shutdown record); prints "SEGMENT OFFSET LSN".
  torn DIR          appends, after the log's end, a flush that never fully reached the disk:
                    one 3000-byte record whose third sector reads as zeros; prints its lsn."""
import os
import struct
import sys

HDR, BLOCK, SECTOR, MAGIC = 40, 4096, 512, 0x4C574C53
POLY = 0x82F63B78
TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (POLY if _c & 1 else 0)
    TABLE.append(_c)


def crc32c(data, c=0xFFFFFFFF):
    """The raw CRC32C register the WAL stores (no final xor)."""
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c


def records(wal_dir):
    """Every record of every segment: (segment, offset, kind, lsn, flush lsn, length)."""
    out = []
    for name in sorted(n for n in os.listdir(wal_dir) if n.startswith("wal-")):
        with open(os.path.join(wal_dir, name), "rb") as f:
            data = f.read()
        off = 0
        while off + HDR <= len(data):
            if BLOCK - off % BLOCK < HDR:
                off += BLOCK - off % BLOCK
                continue
            magic, ver, kind, _typ, length = struct.unpack_from("<IBBHI", data, off)
            if magic != MAGIC or ver != 3:
                break
            lsn, flush = struct.unpack_from("<QQ", data, off + 16)
            out.append((name, off, kind & 0x7F, lsn, flush, length))
            off += (HDR + length + 7) & ~7
    return out


def flip(wal_dir, target):
    recs = records(wal_dir)
    data = [r for r in recs if r[2] == 1]
    if target == "close":
        rec = [r for r in recs if r[2] == 3][-1]
        at = rec[1] + 16  # its lsn field
    else:
        if target == "first":
            rec = data[0]
        elif target == "middle":
            rec = data[len(data) // 2]
        elif target == "last":
            rec = data[-1]
        else:  # lastflush
            rec = [r for r in data if r[4] == data[-1][4]][0]
        at = rec[1] + HDR + min(5, rec[5] - 1)
    path = os.path.join(wal_dir, rec[0])
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x20]))
    print(rec[0], rec[1], rec[3])


def torn(wal_dir):
    recs = records(wal_dir)
    name = recs[-1][0]
    last = max(r[3] for r in recs)
    end = recs[-1][1] + ((HDR + recs[-1][5] + 7) & ~7)
    end = (end + BLOCK - 1) // BLOCK * BLOCK  # the next flush starts on a block
    payload = bytes((i * 13 + 1) & 0xFF or 1 for i in range(3000))
    hdr = struct.pack("<IBBHII", MAGIC, 3, 1, 1, len(payload), crc32c(payload))
    hdr += struct.pack("<QQI", last + 1, last + 1, 0)
    hdr += struct.pack("<I", crc32c(hdr))
    rec = bytearray(hdr + payload)
    rec[2 * SECTOR:3 * SECTOR] = bytes(SECTOR)  # this sector never reached the disk
    with open(os.path.join(wal_dir, name), "r+b") as f:
        f.seek(end)
        f.write(rec)
    print(last + 1)


if __name__ == "__main__":
    if sys.argv[1] == "flip":
        flip(sys.argv[2], sys.argv[3])
    else:
        torn(sys.argv[2])
