#!/usr/bin/env python3
"""check-ran.py - fails unless a CTest run ran every expected test.

    check-ran.py JUNIT_XML EXPECTED_LIST

JUNIT_XML is what `ctest --output-junit` wrote; EXPECTED_LIST is
tests/expected-tests.txt (one name per line, # comments). CTest's own exit
code covers failures; this covers the tests that never ran: filtered out
with -R/-E/-L, disabled, skipped, or not found, which a green CTest run
does not report. Prints the count, and each missing or unexpected name.
"""
import sys
import xml.etree.ElementTree as ET


def expected(path):
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f]
    return {n for n in names if n and not n.startswith("#")}


def ran(path):
    """Names of the test cases that ran and passed."""
    root = ET.parse(path).getroot()
    out = set()
    for case in root.iter("testcase"):
        if case.get("status") != "run":
            continue
        if case.find("failure") is not None or case.find("error") is not None:
            continue
        out.add(case.get("name"))
    return out


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    want, got = expected(argv[2]), ran(argv[1])
    missing, extra = sorted(want - got), sorted(got - want)
    for name in missing:
        print("did not run or did not pass: %s" % name)
    for name in extra:
        print("ran, but not in %s: %s" % (argv[2], name))
    print("%d of %d expected tests ran and passed" %
          (len(want & got), len(want)))
    return 1 if missing or extra else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
