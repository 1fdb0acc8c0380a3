#!/usr/bin/python3
"""foreign_client: a client that is not Branchmark's agent (Python protobuf +
pyzmq over CURVE), sending the hostile cases of issue 14 part 5 to a real
collector, as the outside tester did.  Driven by
tests/integration/test_foreign_client.sh, which starts PostgreSQL and the
collector, generates branchmark_pb2 from proto/ with protoc into the test's
directory and passes everything on the command line.

For each case it checks that the reply arrives, parses as a protobuf Reply
(which also proves that every string in it is valid UTF-8: Python's
protobuf refuses to parse anything else), carries the expected result and
error code and names the field; and, with SQL through psql, that the good
records around the hostile one are stored exactly once and the hostile one
not at all.  Prints one line per case and exits 1 on the first failure.

With --dump DIR it sends nothing and writes the first frame of each case
to DIR/foreign_<case> instead (seeds of the fuzzers, tests/fuzz/make_corpus.sh).

Owns: one ZeroMQ context and DEALER socket for the run.
"""
import argparse
import os
import subprocess
import sys
import time

import zmq

import branchmark_pb2 as pb

ARGS = None
SOCK = None
TIMEOUT_MS = 10000


def fail(case, what):
    print(f"FAIL {case}: {what}", flush=True)
    sys.exit(1)


def sql(query):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                          "-d", ARGS.db, "-c", query],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def stored_count(source_id):
    """How many rows of receipts carry source_id (exactly once = 1)."""
    q = source_id.replace("'", "''")
    return int(sql(f"SELECT count(*) FROM receipts WHERE source_id = '{q}'"))


def receipt(source_id):
    r = pb.Record(source_id=source_id)
    r.receipt.at_ms = int(time.time() * 1000) - 3600 * 1000
    r.receipt.amount_minor = 1999
    r.receipt.currency = "EUR"
    return r


_stream_counter = [0]


def envelope(records, sequence=1):
    """A fresh stream per case, so each case is a first batch."""
    _stream_counter[0] += 1
    e = pb.Envelope(protocol_version=1, agent_id=ARGS.agent, branch_code=ARGS.branch,
                    stream_id=os.urandom(16).hex(), sequence=sequence,
                    sent_at_ms=int(time.time() * 1000))
    e.batch.records.extend(records)
    return e


class Dumped(Exception):
    """--dump: the case's frame is written, the case ends here."""


def exchange(case, frame):
    """Sends one frame, returns the parsed Reply (failing the case when none
    arrives or it does not parse)."""
    if ARGS.dump:
        with open(os.path.join(ARGS.dump, "foreign_" + case.replace("^", "")), "wb") as f:
            f.write(frame)
        raise Dumped()
    SOCK.send(frame)
    if not SOCK.poll(TIMEOUT_MS, zmq.POLLIN):
        fail(case, f"no reply within {TIMEOUT_MS} ms")
    parts = SOCK.recv_multipart()
    raw = parts[-1]
    reply = pb.Reply()
    try:
        reply.ParseFromString(raw)
    except Exception as exc:  # DecodeError: not protobuf, or a string not UTF-8
        fail(case, f"the reply does not parse as a Reply: {exc!r} ({raw[:80]!r})")
    # Belt and braces: every text of the reply is valid UTF-8 text.
    texts = [reply.stream_id]
    if reply.HasField("error"):
        texts.append(reply.error.message)
    if reply.HasField("ack"):
        for j in reply.ack.rejected:
            texts += [j.source_id, j.reason]
    for t in texts:
        t.encode("utf-8")
    return reply


def expect_error(case, reply, code_name, needle):
    if reply.WhichOneof("result") != "error":
        fail(case, f"expected {code_name}, got {reply}")
    got = pb.ErrorCode.Name(reply.error.code)
    if got != code_name:
        fail(case, f"expected {code_name}, got {got}: {reply.error.message}")
    if needle not in reply.error.message:
        fail(case, f"message \"{reply.error.message}\" does not name \"{needle}\"")
    print(f"ok {case}: {got} \"{reply.error.message}\"", flush=True)


def expect_ack(case, reply, stored, rejected):
    """rejected: {index: needle in the reason}."""
    if reply.WhichOneof("result") != "ack":
        fail(case, f"expected an ack, got {reply}")
    a = reply.ack
    if a.stored != stored or len(a.rejected) != len(rejected):
        fail(case, f"expected stored={stored} rejected={len(rejected)}, got stored={a.stored} "
                   f"duplicates={a.duplicates} rejected={[(j.index, j.reason) for j in a.rejected]}")
    for j in a.rejected:
        if j.index not in rejected or rejected[j.index] not in j.reason:
            fail(case, f"rejection {j.index} \"{j.reason}\" is not the expected one "
                       f"({rejected.get(j.index)!r})")
    reasons = "; ".join(f"{j.index}:{j.source_id!r}: {j.reason}" for j in a.rejected)
    print(f"ok {case}: ack stored={a.stored} duplicates={a.duplicates} "
          f"rejected={len(a.rejected)} [{reasons}]", flush=True)


def expect_rows(case, ids, n):
    for sid in ids:
        got = stored_count(sid)
        if got != n:
            fail(case, f"receipt {sid!r} is stored {got} times, expected {n}")


def replace_once(case, data, old, new):
    assert len(old) == len(new)
    if data.count(old) != 1:
        fail(case, f"test bug: placeholder {old!r} occurs {data.count(old)} times")
    return data.replace(old, new)


# ---------------------------------------------------------------- the cases

def case_nul_in_source_id():
    c = "nul-in-source-id"
    e = envelope([receipt("FC-NUL-1"), receipt("X\0a"), receipt("X\0b"), receipt("FC-NUL-2")])
    r = exchange(c, e.SerializeToString())
    expect_ack(c, r, 2, {1: "source_id: contains a NUL byte", 2: "source_id: contains a NUL byte"})
    for j in r.ack.rejected:
        if j.source_id != "":
            fail(c, f"the rejection echoes the cut source_id {j.source_id!r}")
    expect_rows(c, ["FC-NUL-1", "FC-NUL-2"], 1)
    expect_rows(c, ["X"], 0)


def case_nul_in_agent_id():
    c = "nul-in-agent-id"
    e = envelope([receipt("FC-NULA-1")])
    e.agent_id = ARGS.agent + "\0x"
    expect_error(c, exchange(c, e.SerializeToString()), "ERROR_MALFORMED", "agent_id")
    expect_rows(c, ["FC-NULA-1"], 0)


def case_bad_utf8_stream_id():
    c = "bad-utf8-stream-id"
    e = envelope([receipt("FC-U8S-1")])
    e.stream_id = "Z" * 32
    frame = replace_once(c, e.SerializeToString(), b"Z" * 32, b"\xff\xfe" + b"Z" * 30)
    r = exchange(c, frame)
    expect_error(c, r, "ERROR_INVALID_ENVELOPE", "stream_id")
    if r.stream_id != "":
        fail(c, f"the reply echoes stream_id {r.stream_id!r}")
    expect_rows(c, ["FC-U8S-1"], 0)


def case_bad_utf8_source_id():
    c = "bad-utf8-source-id"
    e = envelope([receipt("FC-U8R-1"), receipt("QQQQ-bad"), receipt("FC-U8R-2")])
    frame = replace_once(c, e.SerializeToString(), b"QQQQ", b"\xff\xfe\xc3\x28")
    r = exchange(c, frame)
    expect_ack(c, r, 2, {1: "source_id: is not valid UTF-8"})
    if r.ack.rejected[0].source_id != "":
        fail(c, f"the rejection echoes source_id {r.ack.rejected[0].source_id!r}")
    expect_rows(c, ["FC-U8R-1", "FC-U8R-2"], 1)


def case_sequence_2_63():
    c = "sequence-2^63"
    e = envelope([receipt("FC-SEQ-1")], sequence=2 ** 63)
    expect_error(c, exchange(c, e.SerializeToString()), "ERROR_INVALID_ENVELOPE", "sequence")
    expect_rows(c, ["FC-SEQ-1"], 0)
    n = sql(f"SELECT count(*) FROM ingest_batches WHERE stream_id = '{e.stream_id}'")
    if n != "0":
        fail(c, f"the ledger has {n} rows for the stream")


def case_sent_at_min():
    c = "sent-at-int64-min"
    e = envelope([receipt("FC-T-1")])
    e.sent_at_ms = -2 ** 63
    expect_error(c, exchange(c, e.SerializeToString()), "ERROR_INVALID_ENVELOPE", "sent_at")
    expect_rows(c, ["FC-T-1"], 0)


def case_split_batch():
    c = "batch-split-in-two-chunks"
    first = envelope([receipt("FC-SPL-1")])
    second = pb.Envelope()
    second.batch.records.append(receipt("FC-SPL-2"))
    frame = first.SerializeToString() + second.SerializeToString()
    # Python's own parser merges the chunks: two records were meant.
    merged = pb.Envelope.FromString(frame)
    assert len(merged.batch.records) == 2
    expect_error(c, exchange(c, frame), "ERROR_MALFORMED", "batch: appears twice")
    expect_rows(c, ["FC-SPL-1", "FC-SPL-2"], 0)
    # Sent as one batch, both are stored, once.
    c2 = "batch-split-resent-whole"
    e = envelope([receipt("FC-SPL-1"), receipt("FC-SPL-2")])
    expect_ack(c2, exchange(c2, e.SerializeToString()), 2, {})
    expect_rows(c2, ["FC-SPL-1", "FC-SPL-2"], 1)


def case_unknown_kind():
    c = "unknown-record-kind"
    future = pb.Record()
    # Field 18 (a kind of a newer protocol), kept by protobuf as an unknown field.
    future.ParseFromString(pb.Record(source_id="FC-UK-X").SerializeToString() + b"\x92\x01\x00")
    e = envelope([receipt("FC-UK-1"), future, receipt("FC-UK-2")])
    r = exchange(c, e.SerializeToString())
    expect_ack(c, r, 2, {1: "field 18 is not a record kind"})
    expect_rows(c, ["FC-UK-1", "FC-UK-2"], 1)


def case_still_serving():
    c = "still-serving"
    e = envelope([receipt("FC-END-1")])
    expect_ack(c, exchange(c, e.SerializeToString()), 1, {})
    expect_rows(c, ["FC-END-1"], 1)
    hb = pb.Envelope(protocol_version=1, agent_id=ARGS.agent, branch_code=ARGS.branch,
                     stream_id=e.stream_id, sequence=0, sent_at_ms=int(time.time() * 1000))
    hb.heartbeat.spool_depth = 0
    r = exchange(c, hb.SerializeToString())
    if r.WhichOneof("result") != "heartbeat_ok":
        fail(c, f"heartbeat: expected heartbeat_ok, got {r}")
    print(f"ok {c}: heartbeat_ok", flush=True)


CASES = [case_nul_in_source_id, case_nul_in_agent_id, case_bad_utf8_stream_id,
         case_bad_utf8_source_id, case_sequence_2_63, case_sent_at_min, case_split_batch,
         case_unknown_kind, case_still_serving]


def first_line(path):
    with open(path, "rb") as f:
        return f.readline().strip()


def main():
    global ARGS, SOCK
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint")
    p.add_argument("--secret", help="the client's secret key file (Z85)")
    p.add_argument("--server", help="the collector's public key file (Z85)")
    p.add_argument("--db", help="libpq conninfo for the SQL checks")
    p.add_argument("--agent", default="rawtest")
    p.add_argument("--branch", default="B001")
    p.add_argument("--dump", help="write the frames into this directory, send nothing")
    ARGS = p.parse_args()
    if ARGS.dump:
        for case in CASES:
            try:
                case()
            except Dumped:
                pass
        return
    if not (ARGS.endpoint and ARGS.secret and ARGS.server and ARGS.db):
        p.error("--endpoint, --secret, --server and --db are required (or --dump)")
    ctx = zmq.Context()
    SOCK = ctx.socket(zmq.DEALER)
    SOCK.setsockopt(zmq.LINGER, 0)
    secret = first_line(ARGS.secret)
    SOCK.curve_secretkey = secret
    SOCK.curve_publickey = zmq.curve_public(secret)
    SOCK.curve_serverkey = first_line(ARGS.server)
    SOCK.connect(ARGS.endpoint)
    try:
        for case in CASES:
            case()
    finally:
        SOCK.close()
        ctx.term()
    print(f"all {len(CASES)} case groups passed", flush=True)


if __name__ == "__main__":
    main()
