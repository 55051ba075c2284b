"""Issue 19's B4-B9: cloudpg against bounds of its own (Cloud Control latency, memory, startup)
and, for B8, against PostgreSQL. Each case starts the servers it needs with the emulated
latency it names and stops them; `bench.py` prints the rows these return.
"""

import concurrent.futures
import math
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

import psycopg

import local_postgres

# The regions every account has enabled (no opt-in), as the emulator answers them.
REGIONS = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "sa-east-1",
]
SCAN = "SELECT * FROM awscc.sqs.queues WHERE region = 'us-east-1'"


class Server:
    """A `cloudpg serve` with the given config sections (TOML text), on a free port."""

    def __init__(self, binary, sections, emulator=True):
        self.root = tempfile.mkdtemp(prefix="cloudpg-bench-case-")
        self.port = local_postgres.free_port()
        self.config = os.path.join(self.root, "cloudpg.toml")
        with open(self.config, "w") as f:
            f.write(f'listen = "127.0.0.1:{self.port}"\n{sections}')
        self.args = [binary, "serve", *(["--emulator"] if emulator else []), "--config", self.config]
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=awscc"
        self.proc = None

    def start(self):
        """Starts it; returns seconds from exec to the first answered `SELECT 1`."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
        started = time.perf_counter()
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = started + 120
        while True:
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=2) as conn:
                    conn.execute("SELECT 1").fetchall()
                return time.perf_counter() - started
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.perf_counter() > deadline:
                    raise SystemExit(f"cloudpg did not start (exit {self.proc.poll()}): {self.args}")
                time.sleep(0.002)

    def memory_kib(self, field):
        """VmRSS (now) or VmHWM (peak) of the server process, in KiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))

    def misses(self):
        """Cloud Control calls made through the cache so far (each miss is one call)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute("SELECT misses FROM cloudpg.cache").fetchone()[0]

    def stop(self):
        if self.proc:
            local_postgres.stop(self.proc)


def emulator_sections(rows, latency_ms, page_size=100, ttl="0s"):
    return (
        f'[cache]\nttl = "{ttl}"\n[limits]\nmax_api_calls = 1000000\n'
        f"[emulator]\nresources_per_type = {rows}\npage_size = {page_size}\nlatency_ms = {latency_ms}\n"
    )


def fetch(dsn, sql, prepare=None):
    """Rows of `sql`, all received by libpq but not turned into Python objects: B4-B6 time
    the server against the API's latency, and 50 Python threads decoding rows under the GIL
    on the server's two cores would time the client instead."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, prepare=prepare).rowcount


def timed_query(dsn, sql, expected):
    started = time.perf_counter()
    got = fetch(dsn, sql)
    if got != expected:
        raise SystemExit(f"{sql}: {got} rows, expected {expected}")
    return time.perf_counter() - started


def median_spread(samples, scale=1.0, fmt="{:,.0f}"):
    m = statistics.median(samples) * scale
    return m, f"{fmt.format(m)} ({fmt.format(min(samples) * scale)}–{fmt.format(max(samples) * scale)})"


def b4_cold_list_and_read(binary, runs):
    rows, latency, page, concurrency = 2000, 20, 100, 16
    sections = emulator_sections(rows, latency, page) + f"[api]\nhydrate_concurrency = {concurrency}\n"
    server = Server(binary, sections)
    try:
        server.start()
        samples = [timed_query(server.dsn, SCAN, rows) for _ in range(runs)]
    finally:
        server.stop()
    bound = max(math.ceil(rows / page), math.ceil(rows / concurrency)) * latency / 1000
    m, shown = median_spread(samples, 1000, "{:,.0f}")
    return (
        f"| B4 cold list + read, {rows:,} resources, pages of {page}, {latency} ms per call | {shown} ms | "
        f"bound {bound * 1000:,.0f} ms | {m / 1000 / bound:.2f}× the bound | ≤ 1.1× |"
    )


def b5_region_fan_out(binary, runs):
    pages, latency, page = 5, 50, 100
    server = Server(binary, emulator_sections(pages * page, latency, page))
    regions = ", ".join(f"'{r}'" for r in REGIONS)
    sql = f"SELECT * FROM awscc.sqs.queues_list_only WHERE region IN ({regions})"
    try:
        server.start()
        samples = [timed_query(server.dsn, sql, pages * page * len(REGIONS)) for _ in range(runs)]
    finally:
        server.stop()
    bound = pages * latency / 1000
    m, shown = median_spread(samples, 1000)
    return (
        f"| B5 region fan-out, `_list_only` over {len(REGIONS)} regions, {pages} pages each, {latency} ms | "
        f"{shown} ms | bound {bound * 1000:,.0f} ms | {m / 1000 / bound:.2f}× the bound | ≤ 1.1× |"
    )


def b6_single_flight(binary):
    rows, latency, clients = 2000, 20, 50
    sections = emulator_sections(rows, latency, ttl="2h")

    def run(n):
        server = Server(binary, sections)
        try:
            server.start()
            before = server.misses()
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                got = list(pool.map(lambda _: fetch(server.dsn, SCAN), range(n)))
            wall = time.perf_counter() - started
            if any(g != rows for g in got):
                raise SystemExit(f"single flight: rows {set(got)}, expected {rows}")
            return wall, server.misses() - before
        finally:
            server.stop()

    alone, alone_calls = run(1)
    together, together_calls = run(clients)
    return (
        f"| B6 single flight, {clients} concurrent identical cold queries | {together * 1000:,.0f} ms, "
        f"{together_calls:,} calls | alone {alone * 1000:,.0f} ms, {alone_calls:,} calls | "
        f"{together / alone:.2f}× the wall, calls {'equal' if together_calls == alone_calls else 'NOT equal'} | "
        f"calls equal; wall ≤ 1.2× |"
    )


def b7_memory(binary, counts):
    """Peak RSS of a server streaming `n` uncached rows from an emulator in its own process
    (the emulator's memory grows with `n`; the server's must not)."""

    def peak(n, prepare):
        emulator = subprocess.Popen(
            [binary, "emulator", "--listen", "127.0.0.1:0", "--resources-per-type", str(n), "--page-size", "100"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            url = re.search(r"listening on (\S+)", emulator.stdout.readline()).group(1)
            server = Server(
                binary,
                f'[aws]\nendpoint_url = "{url}"\n[cache]\nttl = "0s"\n[limits]\nmax_api_calls = 1000000\n',
                emulator=False,
            )
            try:
                server.start()
                idle = server.memory_kib("VmRSS")
                sql = "SELECT * FROM awscc.sqs.queues_list_only WHERE region = 'us-east-1'"
                with psycopg.connect(server.dsn, autocommit=True) as conn:
                    cur = conn.cursor(name=None)
                    # Rows are read one batch at a time and dropped: only the server's memory counts.
                    if prepare:
                        cur.execute(sql, prepare=True)
                    else:
                        cur = psycopg.ClientCursor(conn)
                        cur.execute(sql)
                    got = 0
                    while batch := cur.fetchmany(10_000):
                        got += len(batch)
                if got != n:
                    raise SystemExit(f"B7: {got} rows, expected {n}")
                return idle, server.memory_kib("VmHWM")
            finally:
                server.stop()
        finally:
            local_postgres.stop(emulator)

    lines, idles = [], []
    for prepare, protocol in ((False, "simple"), (True, "extended")):
        peaks = []
        for n in counts:
            idle, hwm = peak(n, prepare)
            idles.append(idle)
            peaks.append(hwm)
        growth = (peaks[-1] - peaks[0]) / 1024
        lines.append(
            f"| B7 peak RSS streaming {' vs '.join(f'{n:,}' for n in counts)} uncached rows, {protocol} | "
            f"{' vs '.join(f'{p / 1024:,.0f}' for p in peaks)} MB | — | growth {growth:+,.0f} MB | "
            f"growth independent of N |"
        )
    lines.append(
        f"| B7 idle RSS after the first query | {statistics.median(idles) / 1024:,.1f} MB | — | — | ≤ 50 MB |"
    )
    return lines


def b8_many_clients(cp_port, pg_port, ours_scripts, theirs_scripts, seconds, clients=200):
    """p99 latency of `clients` connections running cached lookups, from pgbench's logs."""

    def p99(port, dbname, scripts):
        logs = tempfile.mkdtemp(prefix="cloudpg-bench-log-")
        try:
            out = subprocess.run(
                ["pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n", "-M", "prepared", "-c",
                 str(clients), "-j", "2", "-T", str(seconds), "--log", f"--log-prefix={logs}/tx",
                 *[a for s in scripts for a in ("-f", s)], dbname],
                capture_output=True,
                text=True,
            )
            failed = re.search(r"number of failed transactions: ([1-9][0-9]*)", out.stdout)
            if out.returncode != 0 or failed:
                raise SystemExit(f"pgbench with {clients} clients failed:\n{out.stdout}\n{out.stderr}")
            latencies = []
            for name in os.listdir(logs):
                with open(os.path.join(logs, name)) as f:
                    latencies.extend(int(line.split()[2]) for line in f if line.strip())
        finally:
            shutil.rmtree(logs, ignore_errors=True)
        latencies.sort()
        return latencies[int(len(latencies) * 0.99)] / 1000

    ours = p99(cp_port, "awscc", ours_scripts)
    theirs = p99(pg_port, "postgres", theirs_scripts)
    return (
        f"| B8 {clients} clients, cached lookups for {seconds} s, p99 latency | {ours:,.1f} ms | {theirs:,.1f} ms | "
        f"{ours / theirs:.2f}× PostgreSQL's | no errors; ≤ 2× |"
    )


def b9_startup(binary, runs):
    samples = []
    for _ in range(runs):
        server = Server(binary, '[cache]\nttl = "2h"\n')
        try:
            samples.append(server.start())
        finally:
            server.stop()
    m, shown = median_spread(samples, 1000)
    return (
        f"| B9 startup, exec → first answered query (all types registered, emulator) | {shown} ms | — | — | "
        f"≤ 100 ms |"
    )
