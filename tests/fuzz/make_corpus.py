#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora of the queue fuzzers into tests/fuzz/corpus/<target>/.

An implementation of the formats independent of queue_format.c (from the layout in
daemon/queue.h and queue_format.h), so the seeds also cross-check the C code: a seed
that the daemon does not read as intended shows up as lost coverage. Run it after a
format change and commit the result; the seeds stay small (a few KiB in all).
"""
import os
import re
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SALT = 0x0123456789ABCDEF
STREAM_ID = 0x5EED0000C0A9A7E5
FRAME_MAGIC = 0x46514743
SEAL = 1
F64, I64, BOOL, STRING = 1, 2, 3, 4


def ckpt_len():
    """QUEUE_CKPT_LEN, read from the header: gaps from byte 72, a reserved u32, the CRC."""
    path = os.path.join(HERE, "..", "..", "daemon", "queue_format.h")
    with open(path) as f:
        m = re.search(r"#define\s+QUEUE_CKPT_LEN\s+([0-9+*() ]+)", f.read())
    return int(eval(m.group(1), {"__builtins__": {}}))  # digits and + * ( ) only


CKPT_LEN = ckpt_len()


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def zigzag(v):
    return ((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF


class Encoder:
    """Readings into one frame payload, sharing schemas like queue_record_append()."""

    def __init__(self):
        self.out = bytearray()
        self.prev_ts = 0
        self.schemas = []

    def add(self, ts, topic, fields):
        schema = varint(len(topic)) + topic + varint(len(fields))
        for name, ftype, _ in fields:
            schema += bytes([ftype]) + varint(len(name)) + name
        values = b""
        for _, ftype, value in fields:
            if ftype == F64:
                values += struct.pack("<d", value)
            elif ftype == I64:
                values += varint(zigzag(value))
            elif ftype == BOOL:
                values += bytes([1 if value else 0])
            else:
                values += varint(len(value)) + value
        delta = (ts - self.prev_ts + 2**63) % 2**64 - 2**63
        self.out += varint(zigzag(delta))
        self.prev_ts = ts
        if schema in self.schemas:
            self.out += varint(self.schemas.index(schema) + 1)
        else:
            self.out += b"\0" + schema
            if len(self.schemas) < 64:
                self.schemas.append(schema)
        self.out += values
        return self


def frame(first_seq, count, payload, flags=0, salt=SALT):
    head = struct.pack("<IIQIHHII", FRAME_MAGIC, 32 + len(payload), first_seq, count,
                       flags, 0, 0, len(payload))
    crc = zlib.crc32(struct.pack("<Q", salt) + head + payload)
    head = head[:24] + struct.pack("<I", crc) + head[28:]
    data = head + payload
    return data + b"\0" * (-len(data) % 8)


def seal(last_seq, n_readings, data_bytes):
    return frame(last_seq + 1, 0, struct.pack("<QQQ", last_seq, n_readings, data_bytes),
                 flags=SEAL)


def checkpoint(generation, acked, reserved, gaps=()):
    slot = b"CGQCKPT1" + struct.pack("<II", 1, 0)
    slot += struct.pack("<6Q", generation, STREAM_ID, acked, reserved, 0, len(gaps))
    slot = slot[:64] + struct.pack("<II", len(gaps), 0)
    for first, last in gaps:
        slot += struct.pack("<QQ", first, last)
    slot = slot.ljust(CKPT_LEN - 4, b"\0")[: CKPT_LEN - 4]
    return slot + struct.pack("<I", zlib.crc32(slot))


def sample_payloads():
    climate = lambda i: [(b"temperature", F64, 20.5 + i), (b"humidity", F64, 40.0 - i),
                         (b"pressure", F64, 1013.25)]
    a = Encoder()
    for i in range(3):
        a.add(1700000000000 + 1000 * i, b"site/room1", climate(i))
    b = Encoder()
    b.add(1700000000000, b"meter/7", [(b"kwh", I64, 123456), (b"on", BOOL, True),
                                        (b"state", STRING, b"running")])
    b.add(1699999999000, b"site/room1", climate(0))  # time goes backwards
    b.add(1700000001000, b"meter/7", [(b"kwh", I64, -(2**63)), (b"on", BOOL, False),
                                        (b"state", STRING, b"")])
    c = Encoder()
    for i in range(66):  # more schemas than the table holds
        c.add(i, b"t/%d" % i, [(b"v", I64, i)])
    c.add(100, b"t/0", [(b"v", I64, 0)])
    c.add(101, b"t/65", [(b"v", I64, 65)])
    return bytes(a.out), bytes(b.out), bytes(c.out)


def segment_seeds():
    pa, pb, _ = sample_payloads()
    f1 = frame(1, 3, pa)
    f2 = frame(4, 3, pb)
    f3 = frame(7, 3, pa)
    plain = bytes(8)
    seeds = {
        "unsealed-one-frame": plain + f1,
        "unsealed-torn-tail": plain + f1 + f2[:45],
        "unsealed-preallocated": bytes([0x10]) + bytes(7) + f1 + f2,
        "sealed": plain + f1 + f2 + seal(6, 6, len(f1 + f2)),
        "sealed-empty": plain + seal(0, 0, 0),
        # A damaged middle frame in a sealed segment: the reader skips to the next.
        "sealed-damaged-middle": plain + f1 + b"\xff" * 8 + f2[8:] + f3
        + seal(9, 9, len(f1 + f2 + f3)),
        # A frame from a segment with another salt.
        "unsealed-foreign-frame": plain + f1 + frame(4, 3, pb, salt=SALT + 1),
        # Checkpoint: acked 2, seqs reserved to 100, one counted gap, ack on close.
        "checkpoint-acked": bytes([0x1 | 0x8 | 0x20, 2, 0, 100, 0, 5, 3, 1]) + f1 + f2,
        "checkpoint-slot1-ack-half": bytes([0x1 | 0x2 | 0x20 | 0x40, 0, 0, 0, 0, 9, 0, 0])
        + f1 + f2 + seal(6, 6, len(f1 + f2)),
        "checkpoint-foreign": bytes([0x1 | 0x4, 0, 0, 0, 0, 1, 0, 0]) + f1,
        # A damaged header byte (base_seq): the segment goes to quarantine.
        "header-damaged": bytes([0x80, 0, 0, 0, 0, 0, 24, 0x10]) + f1,
    }
    return seeds


def checkpoint_seeds():
    s0 = checkpoint(4, 100, 200, [(150, 160)])
    s1 = checkpoint(5, 120, 200, [(150, 160)])
    s2 = checkpoint(6, 0, 0)
    head = lambda flags, n: bytes([flags]) + struct.pack("<H", n)
    gap = struct.pack("<QQ", 155, 170)
    return {
        "both": head(0, len(s0)) + s0 + s1,
        "both-repair": head(1, len(s0)) + s0 + s1 + gap,
        "one": head(1, len(s2)) + s2 + gap,
        "none": head(0, 4) + b"junk" + b"more junk",
        "null-slot0": head(2 | 1, len(s0)) + s0 + s1 + gap,
    }


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    pa, pb, pc = sample_payloads()
    write("fuzz_segment", segment_seeds())
    write("fuzz_payload", {"climate": pa, "mixed": pb, "many-schemas": pc})
    write("fuzz_checkpoint", checkpoint_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
