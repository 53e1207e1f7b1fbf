#!/usr/bin/python3
"""Peer benchmark for BenchmarkGEMM (matmul_test.go): numpy matmul, i.e.
OpenBLAS sgemm/dgemm, on the same shapes, printing GFLOP/s = 2*M*N*K / time.

Run with the Debian numpy (the default pyenv python3 has none), one thread
count per process because OpenBLAS reads OPENBLAS_NUM_THREADS at load time:

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/gemm_numpy.py
    OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/gemm_numpy.py

numpy must run on OpenBLAS for this to be the peer number. Debian's numpy
links libblas.so.3, which is the slow reference BLAS unless OpenBLAS is
installed (`apt-get install libopenblas0-pthread` makes it the libblas.so.3
alternative; the script prints the BLAS library it loaded). Without changing
the system, unpack OpenBLAS and point the loader at it:

    apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb /tmp/ob
    export LD_LIBRARY_PATH=/tmp/ob/usr/lib/x86_64-linux-gnu/openblas-pthread

Each shape is timed for at least -time seconds per repetition; the best of
-reps repetitions is printed (the machine is shared, so the best is the
least disturbed run). Transposed operands are numpy views (.T), which
OpenBLAS reads as transposed without a copy, like the Go packing does.
"""
import argparse
import os
import time

import numpy as np

# (M, K, N, transA, transB): keep in sync with gemmBenchShapes.
SHAPES = [
    (4160, 192, 576, False, False),   # qkv
    (4160, 192, 192, False, False),   # proj
    (4160, 192, 768, False, False),   # fc1
    (4160, 768, 192, False, False),   # fc2
    (12544, 64, 64, False, False),
    (256, 256, 256, False, False),
    (1024, 1024, 1024, False, False),
    (192, 4160, 576, True, False),    # qkv dW = X^T dY
    (4160, 576, 192, False, True),    # qkv dX = dY W^T
]


def bench(m, k, n, ta, tb, dtype, min_time, reps, rng):
    a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(dtype)
    b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(dtype)
    opa, opb = (a.T if ta else a), (b.T if tb else b)
    c = np.empty((m, n), dtype)
    np.matmul(opa, opb, out=c)  # warm up
    best = 0.0
    for _ in range(reps):
        iters, t0 = 0, time.perf_counter()
        while True:
            np.matmul(opa, opb, out=c)
            iters += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        best = max(best, 2.0 * m * n * k * iters / dt / 1e9)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-time", type=float, default=0.5, help="seconds per repetition")
    ap.add_argument("-reps", type=int, default=3, help="repetitions (best is printed)")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    libs = sorted({ln.split()[-1] for ln in open("/proc/self/maps") if "blas" in ln and "/" in ln})
    print(f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={threads}, BLAS: {' '.join(libs)}")
    for dtype, name in ((np.float32, "f32"), (np.float64, "f64")):
        for m, k, n, ta, tb in SHAPES:
            g = bench(m, k, n, ta, tb, dtype, args.time, args.reps, rng)
            t = ("T" if ta else "N") + ("T" if tb else "N")
            print(f"{name}/M={m},K={k},N={n}/{t}\t{g:8.1f} GFLOP/s")


if __name__ == "__main__":
    main()
