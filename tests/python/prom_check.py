#!/usr/bin/python3
"""prom_check: reads a page in the Prometheus text format with the parser of
python3-prometheus-client (Debian's /usr/bin/python3), checks that it is
well formed beyond what the parser enforces, and evaluates checks on its
samples.  Driven by tests/integration/test_prom_metrics.sh.

    prom_check.py FILE [CHECK...]

Every page must parse, and every family must have a HELP text and a TYPE
(no "unknown" family), counter samples must end in _total, no sample may
appear twice, and every histogram's buckets must be cumulative and end in
le="+Inf" equal to its _count.

CHECK is SAMPLE OP NUMBER with OP one of == >= <= >, or a bare SAMPLE,
whose value is printed (one line per bare SAMPLE, in order).  SAMPLE is
name or name{label="value",...}: it matches the sample with exactly that
name and label set.  A missing sample is an error (exit 1), as is a failed
check; the messages go to stderr.

Owns nothing but the page it reads.
"""
import math
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

SPEC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s*(==|>=|<=|>)?\s*([-+0-9.eE]+|[+-]?Inf|NaN)?$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def fail(msg):
    print("prom_check: " + msg, file=sys.stderr)
    sys.exit(1)


def parse_labels(text):
    labels = {}
    pos = 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            fail("bad label list in check: {%s}" % text)
        labels[m.group(1)] = m.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        pos = m.end()
    return frozenset(labels.items())


def load(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        fail("%s: the last line has no line feed" % path)
    samples = {}
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and friends
        fail("%s: does not parse: %s" % (path, e))
    if not families:
        fail("%s: no metrics" % path)
    for fam in families:
        if fam.type == "unknown":
            fail("%s: family %s has no TYPE" % (path, fam.name))
        if not fam.documentation:
            fail("%s: family %s has no HELP" % (path, fam.name))
        for s in fam.samples:
            if fam.type == "counter" and not s.name.endswith("_total"):
                fail("%s: counter sample %s does not end in _total" % (path, s.name))
            key = (s.name, frozenset(s.labels.items()))
            if key in samples:
                fail("%s: sample %s%s appears twice" % (path, s.name, dict(s.labels)))
            samples[key] = s.value
        if fam.type == "histogram":
            check_histogram(path, fam)
    return samples


def check_histogram(path, fam):
    series = {}
    for s in fam.samples:
        rest = frozenset((k, v) for k, v in s.labels.items() if k != "le")
        series.setdefault(rest, []).append(s)
    for rest, ss in series.items():
        buckets = [(float(s.labels["le"]), s.value) for s in ss if s.name.endswith("_bucket")]
        counts = [s.value for s in ss if s.name.endswith("_count")]
        if not buckets or len(counts) != 1 or not any(s.name.endswith("_sum") for s in ss):
            fail("%s: histogram %s%s lacks buckets, _sum or _count" % (path, fam.name, dict(rest)))
        if buckets[-1][0] != math.inf or buckets[-1][1] != counts[0]:
            fail("%s: histogram %s: le=\"+Inf\" must be last and equal _count" % (path, fam.name))
        for (b0, v0), (b1, v1) in zip(buckets, buckets[1:]):
            if b1 <= b0 or v1 < v0:
                fail("%s: histogram %s: buckets not ascending and cumulative" % (path, fam.name))


def main():
    if len(sys.argv) < 2:
        fail("usage: prom_check.py FILE [CHECK...]")
    path = sys.argv[1]
    samples = load(path)
    bad = 0
    for check in sys.argv[2:]:
        m = SPEC.match(check.strip())
        if not m or (m.group(4) is None) != (m.group(5) is None):
            fail("bad check: %s" % check)
        name, labels = m.group(1), parse_labels(m.group(3) or "")
        key = (name, labels)
        if key not in samples:
            fail("%s: no sample %s (the page has: %s)" % (
                path, check, ", ".join(sorted("%s%s" % (n, dict(l)) for n, l in samples if n == name)) or "none of that name"))
        v = samples[key]
        if m.group(4) is None:
            print("%d" % v if math.isfinite(v) and v == int(v) else repr(v))
            continue
        want = float(m.group(5))
        ok = {"==": v == want, ">=": v >= want, "<=": v <= want, ">": v > want}[m.group(4)]
        if not ok:
            print("prom_check: %s: %s is %s" % (path, check, v), file=sys.stderr)
            bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
