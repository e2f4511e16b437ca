#!/usr/bin/env python3
"""Runs integration test modules: tests/integration/run.py [module ...] [-k substring].

Prints "PASS module.test", "FAIL module.test" (with the reason) or "SKIP module.test" per
test and ends with "N passed, N failed, N skipped". Exit status 1 when anything failed.
"""
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402


def main(argv):
    only = None
    if "-k" in argv:
        i = argv.index("-k")
        only = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    names = argv or sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    passed = failed = skipped = 0
    for name in names:
        mod = importlib.import_module(name)
        tests = [(n, getattr(mod, n)) for n in dir(mod) if n.startswith("test_") and callable(getattr(mod, n))]
        tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
        setup = getattr(mod, "setup_module", None)
        teardown = getattr(mod, "teardown_module", None)
        if setup:
            try:
                setup()
            except lib.Skip as e:
                for n, _ in tests:
                    print("SKIP %s.%s: %s" % (name, n, e), flush=True)
                    skipped += 1
                continue
            except Exception:
                print("FAIL %s.setup_module" % name, flush=True)
                print("  " + traceback.format_exc().replace("\n", "\n  "), flush=True)
                failed += 1
                if teardown:
                    teardown()
                continue
        try:
            for n, fn in tests:
                if only and only not in n:
                    continue
                t0 = time.time()
                try:
                    fn()
                    passed += 1
                    print("PASS %s.%s (%.2fs)" % (name, n, time.time() - t0), flush=True)
                except lib.Skip as e:
                    skipped += 1
                    print("SKIP %s.%s: %s" % (name, n, e), flush=True)
                except Exception:
                    failed += 1
                    print("FAIL %s.%s" % (name, n), flush=True)
                    print("  " + traceback.format_exc().replace("\n", "\n  "), flush=True)
        finally:
            if teardown:
                teardown()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
