"""Instructions per statement and per row, counted by valgrind's callgrind (issue 19).

Runs the release `cloudpg serve --emulator` under callgrind, warms each case up, zeroes the
counters, runs the case, dumps, and prints instructions per statement (or per row) with the
top functions by inclusive cost in the dump files it leaves (`--keep DIR`). `perf` has no
hardware counters on these machines; instruction counts are also steadier than time.

    .venv/bin/python bench/profile.py --binary target/release/cloudpg [--rows 10000] [--keep DIR]

The release binary is stripped: its counts are right but its dumps name no function. Build
`cargo build --profile profiling` (release code, symbols kept) and pass
`--binary target/profiling/cloudpg` to read where the instructions go.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the benchmark's server config and scripts)
import local_postgres  # noqa: E402


def totals(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")


def measure(pid, out_dir, name, run):
    """Zero the counters, run, dump; the instructions the run cost, all threads together."""
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    run()
    subprocess.run(["callgrind_control", "-d", name, str(pid)], check=True, capture_output=True)
    dumps = sorted(glob.glob(os.path.join(out_dir, "callgrind.out*")), key=os.path.getmtime)
    return totals(dumps[-1]), dumps[-1]


def pgbench_run(port, script, mode, transactions):
    subprocess.run(
        ["pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n", "-M", mode, "-c", "1", "-t",
         str(transactions), "-f", script, "awscc"],
        check=True,
        capture_output=True,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--keep", help="directory for the callgrind dumps")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="cloudpg-profile-")
    out_dir = args.keep or root
    os.makedirs(out_dir, exist_ok=True)
    port = local_postgres.free_port()
    config = bench.write_config(root, port, args.rows)
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/callgrind.out.%p", args.binary, "serve",
         "--emulator", "--config", config],
        stdout=open(os.path.join(root, "cloudpg.log"), "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        dsn = f"host=127.0.0.1 port={port} user=postgres dbname=awscc"
        bench.wait_for(dsn, proc, "cloudpg under callgrind", limit=600)
        scan = f"SELECT * FROM {bench.TABLE} WHERE region = '{bench.REGION}'"
        bench.psycopg_scan(dsn, scan, args.rows)  # cold: fills the cache
        one = os.path.join(root, "select1.sql")
        with open(one, "w") as f:
            f.write("SELECT 1;\n")
        lookup = bench.lookup_scripts(root, args.rows, bench.TABLE, count=1)[0]
        n = 500
        cases = [
            ("SELECT 1, simple", "statement", n, lambda: pgbench_run(port, one, "simple", n)),
            ("SELECT 1, prepared", "statement", n, lambda: pgbench_run(port, one, "prepared", n)),
            ("cached lookup, prepared", "statement", n, lambda: pgbench_run(port, lookup, "prepared", n)),
            ("cached scan, psql", "row", 3 * args.rows, lambda: [bench.psql_scan(port, "awscc", scan) for _ in range(3)]),
        ]
        print(f"| case | instructions per unit | dump |\n|---|---|---|")
        for name, unit, count, run in cases:
            run()  # warm-up
            total, dump = measure(proc.pid, out_dir, name, run)
            print(f"| {name} | {total / count:,.0f} per {unit} | {os.path.basename(dump)} |", flush=True)
    finally:
        local_postgres.stop(proc)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
