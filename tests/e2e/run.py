#!/usr/bin/python3
"""run.py: runs the end-to-end tests (tests/e2e/test_*.py) against a running stack.

Usage: run.py [FILTER]   FILTER is a substring of "file::name"; only matching tests run.
Prints "ok - file::name" or "not ok - file::name" with the failure, then "N passed, N failed".
Exit status 1 when any test failed.
"""
import importlib.util
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lib  # noqa: E402


class Context:
    """Passed to every test: the environment plus a place for shared fixtures."""

    def __init__(self):
        self.env = lib.env()
        self.cache = {}

    def once(self, name, make):
        """Returns the fixture called name, making it with make() the first time."""
        if name not in self.cache:
            self.cache[name] = make()
        return self.cache[name]


def discover():
    tests = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location("e2e_" + fname[:-3], os.path.join(HERE, fname))
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception:
            tests.append(("%s::<import>" % fname, None, traceback.format_exc()))
            continue
        for name, obj in list(vars(mod).items()):
            if name.startswith("test_") and callable(obj) and getattr(obj, "__module__", None) == mod.__name__:
                tests.append(("%s::%s" % (fname, name), obj, None))
    return tests


def indent(text):
    return "\n".join("    " + line for line in text.rstrip().split("\n"))


def main(argv):
    filt = argv[1] if len(argv) > 1 else ""
    tests = [t for t in discover() if filt in t[0]]
    passed = failed = 0
    try:
        ctx = Context()
    except Exception:
        print("not ok - <setup>")
        print(indent(traceback.format_exc()))
        print("0 passed, %d failed" % max(1, len(tests)))
        return 1
    for tid, fn, import_error in tests:
        if fn is None:
            failed += 1
            print("not ok - %s" % tid)
            print(indent(import_error))
            continue
        try:
            fn(ctx)
        except AssertionError as e:
            failed += 1
            print("not ok - %s" % tid)
            msg = str(e) or "assertion failed"
            tb = traceback.extract_tb(e.__traceback__)
            where = ""
            for fr in reversed(tb):
                if os.path.basename(fr.filename).startswith("test_"):
                    where = "%s:%d" % (os.path.basename(fr.filename), fr.lineno)
                    break
            print(indent("%s%s" % (msg, ("\n(at %s)" % where) if where else "")))
        except Exception:
            failed += 1
            print("not ok - %s" % tid)
            print(indent(traceback.format_exc()))
        else:
            passed += 1
            print("ok - %s" % tid)
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
