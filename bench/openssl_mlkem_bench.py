#!/usr/bin/env python3
"""OpenSSL's ML-KEM-768, reached through the Python `cryptography` package, timed like
bench/crypto_bench so bench/run-crypto can compare it with ours in the same session.

    python3 bench/openssl_mlkem_bench.py [--json]

Python adds a fixed cost to every call (interpreter dispatch, argument conversion, the bytes
objects it returns). That cost is measured here too, with a no-op Python method and with the
cheapest call into the same binding (public_bytes_raw, which copies 1184 bytes out of OpenSSL),
and reported next to the raw figures so the comparison with native code is honest: subtracting
the no-op call gives a lower bound on what Python adds, not an exact OpenSSL-only figure.

When the installed `cryptography` has no ML-KEM (it arrived with the OpenSSL 3.5 builds), prints
one "skipped: ..." line and exits 0.
"""

import itertools
import json
import os
import statistics
import sys
import time

REPS = 5
TARGET_S = 0.3


def main() -> int:
    want_json = "--json" in sys.argv[1:]
    try:
        import cryptography
        from cryptography.hazmat.primitives.asymmetric import mlkem
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl
    except ImportError as e:
        reason = f"skipped: Python cryptography with ML-KEM is not available ({e})"
        print(json.dumps({"skipped": reason}) if want_json else reason)
        return 0

    openssl_version = rust_openssl.openssl_version_text()

    def measure(fn):
        # Warm-up doubles as calibration: grow until a batch takes >= 50 ms.
        n = 1
        while True:
            t = time_loop(fn, n)
            if t >= 0.05:
                break
            n *= 2
        n = max(1, round(n * TARGET_S / t))
        per_op = sorted(time_loop(fn, n) / n * 1e6 for _ in range(REPS))
        return {"us": statistics.median(per_op), "min": per_op[0], "max": per_op[-1], "iterations": n}

    def time_loop(fn, n):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - start

    seed = os.urandom(64)
    priv = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    pub = priv.public_key()
    ss, ct = pub.encapsulate()
    if priv.decapsulate(ct) != ss:
        print("openssl_mlkem_bench: round trip failed", file=sys.stderr)
        return 1

    class Nothing:
        def noop(self):
            return None

    nothing = Nothing()
    # Per-call inputs rotate through a pool of distinct keys, as in crypto_bench: matrix expansion
    # rejection-samples on public data, and a single repeated key would train the branch predictor.
    seeds = [os.urandom(64) for _ in range(64)]
    eks = [mlkem.MLKEM768PrivateKey.from_seed_bytes(s).public_key().public_bytes_raw() for s in seeds]
    rotation = itertools.cycle(range(64))
    ops = {
        "keygen": mlkem.MLKEM768PrivateKey.generate,
        "keygen_from_seed": lambda: mlkem.MLKEM768PrivateKey.from_seed_bytes(seeds[next(rotation)]),
        "ek_parse": lambda: mlkem.MLKEM768PublicKey.from_public_bytes(eks[next(rotation)]),
        "encaps": pub.encapsulate,
        "encaps_from_bytes": lambda: mlkem.MLKEM768PublicKey.from_public_bytes(eks[next(rotation)]).encapsulate(),
        "decaps": lambda: priv.decapsulate(ct),
        # Call overhead references (see the module docstring).
        "python_noop_call": nothing.noop,
        "python_lambda_noop_call": lambda: nothing.noop(),
        "binding_public_bytes_raw": pub.public_bytes_raw,
    }
    results = {name: measure(fn) for name, fn in ops.items()}

    if want_json:
        print(json.dumps({
            "implementation": f"{openssl_version} via Python cryptography {cryptography.__version__}",
            "python": sys.version.split()[0],
            "results": results,
        }))
    else:
        print(f"{openssl_version} ML-KEM-768 via Python cryptography {cryptography.__version__}, "
              f"Python {sys.version.split()[0]} (median of {REPS})")
        for name, r in results.items():
            print(f"{name:26} {r['us']:9.2f} µs/op   (min {r['min']:.2f}, max {r['max']:.2f})")
        print("lambda-wrapped rows carry python_lambda_noop_call of overhead, direct rows python_noop_call.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
