#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/<target>/: a few inputs per target that reach
deep (valid requests, records, logs and configs), for libFuzzer and the stable harness to
mutate. Protobuf and the fuzz byte layouts are encoded by hand so this needs only Python."""
import hashlib
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- protobuf, by hand -------------------------------------------------------------------------
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_str(field, s):
    b = s.encode() if isinstance(s, str) else s
    return varint(field << 3 | 2) + varint(len(b)) + b


def pb_int(field, n):
    return varint(field << 3) + varint(n)


def citizen(**kw):
    order = ["citizen_id", "full_name", "date_of_birth", "sex", "place_of_origin",
             "permanent_address", "current_address", "ethnicity", "religion", "nationality",
             "card_issued_on", "card_expires_on", "household_head_id", "life_status"]
    out = b""
    for i, name in enumerate(order, start=1):
        if name in kw:
            v = kw[name]
            out += pb_int(i, v) if isinstance(v, int) else pb_str(i, v)
    return out


# --- citizen_id --------------------------------------------------------------------------------
for i, s in enumerate(["001203012345", "079185000001", "00120301234a", "٠٠١٢٠٣٠١٢٣٤٥",
                       "999203012345", "001299012345"]):
    put("citizen_id", f"seed-{i}", s)

# --- read_mask ---------------------------------------------------------------------------------
put("read_mask", "seed-text-0", "full_name,date_of_birth")
put("read_mask", "seed-text-1", "citizen_id")
put("read_mask", "seed-text-2", "permanent_address,religion")
mask = pb_str(1, "full_name") + pb_str(1, "permanent_address")
put("read_mask", "seed-pb-0", pb_str(1, "001203012345") + pb_str(2, mask) + pb_str(3, "contract")
    + pb_str(4, "evn"))
mask = pb_str(1, "full_name") + pb_str(1, "version")
put("read_mask", "seed-pb-1", pb_str(1, "001203012345") + pb_str(2, mask) + pb_str(3, "licensing")
    + pb_str(4, "mot"))

# --- verify_normalize --------------------------------------------------------------------------
for i, s in enumerate(["Nguyễn Văn An|NGUYEN VAN AN", "Đặng Đức Dũng|DANG DUC DUNG",
                       "  nguyễn   VĂN an |Nguyễn Văn An", "2003-04-05",
                       "Ksor Y Ðhăm|KSOR Y DHAM", "H’HEN NIE|H'Hen Niê",
                       "Nguye\u0302\u0303n Văn An|Nguyễn Văn An"]):
    put("verify_normalize", f"seed-{i}", s)

# --- verify_request ----------------------------------------------------------------------------
claims = pb_str(1, "NGUYEN VAN AN") + pb_str(2, "2003-04-05") + pb_int(3, 1) + pb_str(4, "Hà Nội")
put("verify_request", "seed-0", pb_str(1, "001203012345") + pb_str(2, claims)
    + pb_str(3, "subscriber-verification") + pb_int(5, 2))
put("verify_request", "seed-1", pb_str(1, "001203012345") + pb_str(2, pb_str(1, "Nguyễn Văn An")))
put("verify_request", "seed-2", pb_str(2, pb_str(2, "2003-02-30")) + pb_int(5, 1))
put("verify_request", "seed-3", pb_str(2, pb_int(3, 0)) + pb_int(5, 7))

# --- citizen_record ----------------------------------------------------------------------------
good = dict(citizen_id="001203012345", full_name="Nguye\u0302\u0303n Văn An",
            date_of_birth="2003-04-05", sex=1, place_of_origin="Hà Nội",
            permanent_address="1 Tràng Tiền, Hà Nội", ethnicity="Kinh", religion="Không",
            nationality="Việt Nam", card_issued_on="2021-05-01", card_expires_on="2028-04-05",
            household_head_id="001170012345", life_status=1)
put("citizen_record", "seed-0", citizen(**good))
put("citizen_record", "seed-1", citizen(citizen_id="079185000001", full_name="Trần Thị B",
                                        date_of_birth="1985-12-31", sex=2, life_status=2))
put("citizen_record", "seed-2", citizen(**dict(good, full_name=" Đặng Đức Dũng ",
                                               card_issued_on="", card_expires_on="")))
put("citizen_record", "seed-3", citizen(**dict(good, date_of_birth="2004-02-29")))

# --- audit_record ------------------------------------------------------------------------------
def record(seq, prev_hex, **over):
    body = (f'{{"seq":{seq},"ts":"2026-11-24T05:12:33.123456Z","client":"viettel",'
            f'"cert_sha256":"{"ab" * 32}","peer":"127.0.0.1:5555","method":"Verify",'
            f'"citizen_id":"001203012345","fields":["full_name","date_of_birth"],'
            f'"purpose":"subscriber-verification","request_id":"tx-\\n81","outcome":"ok",'
            f'"reused":false,"latency_us":412,"prev":"{prev_hex}"')
    for k, v in over.items():
        body = body.replace(k, v)
    body = body.encode()
    h = hashlib.sha256(body).hexdigest()
    return body + b',"hash":"' + h.encode() + b'"}', h


line, h1 = record(1, "0" * 64)
put("audit_record", "seed-line-0", b"\x00" + line)
put("audit_record", "seed-line-1", b"\x00" + b'{"seq":3,"hash":"' + h1.encode()
    + b'","ts":"2026-11-24T05:12:33.123456Z"}')
put("audit_record", "seed-line-2", b"\x00" + b"2026-11-24T05:12:33.123456+07:00")


def chunk(s):
    b = s.encode() if isinstance(s, str) else s
    if len(b) < 255:
        return bytes([len(b)]) + b
    return bytes([255]) + struct.pack("<H", len(b)) + b


def event(client="viettel", purpose="subscriber-verification", request_id="tx-1", flags=0x0F):
    out = chunk(client) + chunk("ab" * 32) + chunk("127.0.0.1:5555") + bytes([1])
    out += chunk(purpose) + chunk(request_id) + bytes([0, flags])
    if flags & 1:
        out += chunk("001203012345")
    if flags & 4:
        out += struct.pack("<Q", 17)
    if flags & 8:
        out += chunk("rate")
    out += struct.pack("<H", 0b11) + struct.pack("<Q", 412)
    return out


put("audit_record", "seed-event-0", b"\x01" + event() + struct.pack("<QQ", 7, 1_795_000_353_000_007)
    + bytes(range(32)))
put("audit_record", "seed-event-1", b"\x01" + event(request_id="a\"b\\c\nd\x1b[31m\x7f\u0085\u2028ễ")
    + struct.pack("<QQ", 1, 0))

# --- audit_dir ---------------------------------------------------------------------------------
# Layout (see write_dir in src/lib.rs): nfiles-1, then per file: name choice, line count, per
# line an op (0/1 record, 2 sealed, 3 raw) and its bytes, torn-tail choice; then checkpoints.
def rec_op(**kw):
    return bytes([0]) + event(**kw) + bytes([5])


def file(ops, name=0, torn=None):
    out = bytes([name, len(ops)]) + b"".join(ops)
    out += (bytes([0]) + chunk(torn)) if torn is not None else bytes([1])
    return out


put("audit_dir", "seed-0", bytes([0]) + file([rec_op(), rec_op(client="evn")]) + bytes([0]))
put("audit_dir", "seed-1", bytes([1]) + file([rec_op(), rec_op()]) + file([rec_op(flags=0)])
    + bytes([1, 0, 0, 0]))
put("audit_dir", "seed-2", bytes([2]) + file([rec_op()]) + file([rec_op()], torn='{"seq":3,"ts')
    + file([]) + bytes([0]))
put("audit_dir", "seed-3", bytes([0]) + file([rec_op(), bytes([2]) + chunk(line[:-75]),
                                           bytes([3]) + chunk("not a record")]) + bytes([3, 9, 0]))

# --- config ------------------------------------------------------------------------------------
base = """[server]
listen = "127.0.0.1:7443"
metrics_listen = "127.0.0.1:9464"

[tls]
cert = "certs/server.pem"
key = "certs/server.key"
client_ca = "certs/ca.pem"
crl = "certs/ca.crl"

[store]
path = "data/population"

[audit]
dir = "data/audit"
durability = "sync"
flush_ms = 5

[cache]
capacity = 1000000
ttl_secs = 300

[[clients]]
id = "viettel"
kind = "telecom"
role = "agency"
read = []
verify = ["full_name", "date_of_birth"]
purposes = ["subscriber-verification"]
rate_per_sec = 2000
burst = 4000
"""
put("config", "seed-0", base)
put("config", "seed-1", base + """
[[clients]]
id = "moh"
kind = "ministry"
role = "agency"
read = ["full_name", "date_of_birth", "sex", "life_status"]
verify = ["full_name"]
purposes = ["insurance", "vaccination"]
rate_per_sec = 500

[[clients]]
id = "ops"
kind = "operator"
role = "operator"
rate_per_sec = 5

[limits]
max_in_flight = 64
max_streams_per_connection = 16
max_message_bytes = 65536
""")
put("config", "seed-2", base.replace("read = []", 'read = ["citizen_id"]'))
put("config", "seed-3", base.replace('"sync"', '"batch"').replace("flush_ms = 5", "flush_ms = 0"))
