#!/usr/bin/env python3
"""How close does a zarr read over HTTP from ``LocalServer`` come to the ideal set by its latency?

A chunked uint8 array (Zarr v3, 256 x 256 x 256 in 64^3 chunks: 64 chunk files)
is written to a scratch folder and served by ``data_helpers.LocalServer`` with
a latency per request (0.05 s by default), as a stand-in for a cloud store.
zarr-python reads chunks in parallel, at most ``async.concurrency`` at a time
(a zarr setting), so a read of N chunks needs at least ceil(N / concurrency)
rounds of one latency each. That is the ideal; the figure to look at is the
median measured time against it.

Two reads are timed, each ``--repeats`` times, interleaved: the whole array
(64 chunks) and one z-plane (16 chunks). The array is opened once, untimed.
Run it on demand, not in the tests:

    .venv/bin/python benchmarks/server_concurrency.py
    .venv/bin/python benchmarks/server_concurrency.py --latency 0.1 --repeats 11
    .venv/bin/python benchmarks/server_concurrency.py --backlog 5   # the listen backlog of old

Only 127.0.0.1 is contacted. The scratch folder is deleted at the end.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from data_helpers import server as server_module
from data_helpers.server import LocalServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request (default 0.05)")
    parser.add_argument("--repeats", type=int, default=7, help="timed reads of each kind (default 7)")
    parser.add_argument(
        "--backlog", type=int, default=None,
        help=f"listen backlog of the server (default: LISTEN_BACKLOG = {server_module.LISTEN_BACKLOG})",
    )
    args = parser.parse_args()
    if args.backlog is not None:
        server_module._Server.request_queue_size = args.backlog
    backlog = server_module._Server.request_queue_size

    shape, chunk = (256, 256, 256), 64
    concurrency = int(zarr.config.get("async.concurrency"))
    workdir = Path(tempfile.mkdtemp(prefix="server-concurrency-"))
    try:
        rng = np.random.default_rng(0)
        data = rng.integers(0, 255, size=shape, dtype=np.uint8)
        zarr.create_array(store=workdir / "a.zarr", data=data, chunks=(chunk,) * 3, zarr_format=3)

        reads = {
            "whole array": (np.s_[...], math.prod(s // chunk for s in shape)),
            "one z-plane": (np.s_[100], (shape[1] // chunk) * (shape[2] // chunk)),
        }
        times: dict[str, list[float]] = {name: [] for name in reads}
        requests: dict[str, int] = {}
        with LocalServer(workdir, latency=args.latency) as server:
            remote = zarr.open_array(f"{server.url}/a.zarr", mode="r")
            for name, (selection, _) in reads.items():  # warm-up, untimed: check the data too
                assert np.array_equal(remote[selection], data[selection]), name
            for _ in range(args.repeats):
                for name, (selection, _) in reads.items():
                    server.clear_requests()
                    start = time.perf_counter()
                    remote[selection]
                    times[name].append(time.perf_counter() - start)
                    requests[name] = len(server.requests)

        print(
            f"zarr {zarr.__version__}, async.concurrency = {concurrency}, listen backlog = {backlog}, "
            f"latency = {args.latency:g} s, median of {args.repeats} reads"
        )
        print(f"{'read':<12} {'chunks':>6} {'requests':>8} {'rounds':>6} {'ideal s':>8} "
              f"{'median s':>8} {'ratio':>6} {'max s':>7}")
        for name, (_, n_chunks) in reads.items():
            rounds = math.ceil(n_chunks / concurrency)
            ideal = rounds * args.latency
            median = statistics.median(times[name])
            print(
                f"{name:<12} {n_chunks:>6} {requests[name]:>8} {rounds:>6} {ideal:>8.3f} "
                f"{median:>8.3f} {median / ideal:>6.2f} {max(times[name]):>7.3f}"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
