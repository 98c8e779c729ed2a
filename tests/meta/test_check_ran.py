#!/usr/bin/python3
"""test_check_ran.py - tests/check-ran.py passes a run only when every
expected test ran and passed: a test not run, skipped, disabled, failed, or
missing from the list fails it.

    test_check_ran.py PATH_TO_CHECK_RAN
"""
import os
import subprocess
import sys
import tempfile
import unittest

CHECK = None


def junit(cases):
    """A CTest-style JUnit file of (name, status, child element or None)."""
    body = "".join(
        '<testcase name="%s" classname="%s" time="0" status="%s">%s'
        "</testcase>\n" % (n, n, st, child or "") for n, st, child in cases)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="x" '
            'tests="%d">\n%s</testsuite>\n' % (len(cases), body))


class CheckRan(unittest.TestCase):
    def run_check(self, cases, expected=("a", "b")):
        with tempfile.TemporaryDirectory() as tmp:
            xml = os.path.join(tmp, "j.xml")
            lst = os.path.join(tmp, "expected.txt")
            with open(xml, "w") as f:
                f.write(junit(cases))
            with open(lst, "w") as f:
                f.write("# comment\n\n" + "\n".join(expected) + "\n")
            r = subprocess.run([sys.executable, CHECK, xml, lst],
                               capture_output=True, text=True)
            return r.returncode, r.stdout

    def test_all_ran(self):
        rc, out = self.run_check([("a", "run", None), ("b", "run", None)])
        self.assertEqual(rc, 0, out)
        self.assertIn("2 of 2", out)

    def test_filtered_out(self):
        rc, out = self.run_check([("a", "run", None)])
        self.assertEqual(rc, 1)
        self.assertIn("did not run or did not pass: b", out)

    def test_not_run_or_disabled(self):
        for st in ("notrun", "disabled"):
            rc, out = self.run_check([("a", "run", None),
                                      ("b", st, '<skipped message="x"/>')])
            self.assertEqual(rc, 1, st)
            self.assertIn(": b", out)

    def test_failed(self):
        rc, out = self.run_check([("a", "run", '<failure message="x"/>'),
                                  ("b", "run", None)])
        self.assertEqual(rc, 1)
        self.assertIn(": a", out)

    def test_not_listed(self):
        rc, out = self.run_check([("a", "run", None), ("b", "run", None),
                                  ("c", "run", None)])
        self.assertEqual(rc, 1)
        self.assertIn("ran, but not in", out)


if __name__ == "__main__":
    CHECK = sys.argv.pop(1)
    unittest.main(verbosity=2)
