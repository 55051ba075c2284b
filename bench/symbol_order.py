"""Writes `link/startup.order`: the functions a server runs to start and answer its first
queries, which the release link places side by side (see `build.rs`).

Why: a page of code the server runs stays in its resident set, and the kernel maps code in
runs of 64 KiB or more around each page it faults in. Scattered over the 116 MB of code, the
few MB that starting up runs kept 50-70 MB of it resident; side by side, they are a few MB
(issue 19, B7 idle RSS).

How: the release binary linked with a map, run under callgrind while it starts and answers
the workload below, on the embedded emulator and on one in another process (the two ways a
server starts); every instruction callgrind saw executed is looked up in the map, and the
input sections (one per function) it lies in are written: first what starting and the first
query ran, then the rest, each in address order. The startup part also takes the functions the
server faulted in when it started natively (`perf record -e minor-faults`), which callgrind
does not always run the same way.

    CLOUDPG_LINK_MAP=/tmp/cloudpg.map cargo build --release --bin cloudpg
    .venv/bin/python bench/symbol_order.py --binary $CARGO_TARGET_DIR/release/cloudpg \\
        --map /tmp/cloudpg.map

then build again. `--map M --check` says how many of the file's names a build's map lacks.
Most symbol names carry a hash of the build's dependencies and profile, not of
the code, so the file stays mostly right while code changes; but names ThinLTO made global end in
`.llvm.<hash of their codegen unit>`, which changes with the unit's code. Names that are gone are
skipped by the linker (a function not in the file is only placed where it would be anyway), so a
stale file costs idle memory, never correctness. Regenerate after upgrading Rust or a dependency
and after changing code that starting up runs.
"""

import argparse
import bisect
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import psycopg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import local_postgres  # noqa: E402

ORDER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "link", "startup.order")

# What a client does first: connect, a trivial query both ways, settings, a scan, a lookup by
# identifier, and the catalog queries psql sends for \dt and \d.
WORKLOAD = [
    "SELECT 1",
    "SHOW server_version",
    "SET application_name = 'order'",
    "SELECT * FROM awscc.sqs.queues WHERE region = 'us-east-1'",
    "SELECT queue_name FROM awscc.sqs.queues WHERE region = 'us-east-1' AND identifier = 'x'",
    "SELECT count(*) FROM awscc.ec2.vpcs WHERE region = 'us-east-1'",
]
PSQL = ["\\dt awscc.sqs.*", "\\d awscc.sqs.queues"]


def text_sections(map_path):
    """(start, size, symbol) of every function's input section (`.text.<symbol>`) in an lld map."""
    out = []
    # LLVM puts cold and hot functions in `.text.unlikely.<name>` and `.text.hot.<name>`.
    pattern = re.compile(
        r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\S.*:\(\.text\.(?:(?:unlikely|hot|startup|exit|split)\.)?(\S+)\)$"
    )
    with open(map_path, errors="replace") as f:
        for line in f:
            m = pattern.match(line)
            if m and int(m.group(2), 16):
                out.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
    out.sort()
    return out


def executed(callgrind_out, binary):
    """Instruction addresses callgrind saw executed in `binary`, as the file's addresses (what
    the link map gives; callgrind subtracts where a position-independent binary was loaded)."""
    names, current, keep, addrs = {}, None, False, set()
    with open(callgrind_out, errors="replace") as f:
        for line in f:
            if line.startswith("ob="):
                m = re.match(r"ob=\((\d+)\)(?: (.*))?", line.strip())
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    current = names.get(m.group(1), "")
                else:
                    current = line[3:].strip()
                keep = os.path.realpath(current or "/") == os.path.realpath(binary)
            elif keep and line.startswith("0x"):
                addrs.add(int(line.split()[0], 16))
    return addrs


def functions(sections, starts, addrs):
    """The sections (by start) `addrs` lie in, in address order."""
    out = {}
    for addr in addrs:
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and addr < sections[i][0] + sections[i][1]:
            out[sections[i][0]] = sections[i]
    return dict(sorted(out.items()))


def serve_args(binary, root, external):
    """A server's command line on a fresh port, on the embedded emulator or (when `external`)
    on one in its own process; returns (args, dsn, emulator process or None)."""
    emulator = None
    port = local_postgres.free_port()
    config = os.path.join(root, f"cloudpg-{port}.toml")
    with open(config, "w") as f:
        f.write(f'listen = "127.0.0.1:{port}"\n')
        # The settings the benchmark's memory case (B7) serves with.
        f.write('[cache]\nttl = "0s"\n[limits]\nmax_api_calls = 1000000\n')
        if external:
            emulator = subprocess.Popen(
                [binary, "emulator", "--listen", "127.0.0.1:0", "--resources-per-type", "50"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            url = re.search(r"listening on (\S+)", emulator.stdout.readline()).group(1)
            f.write(f'[aws]\nendpoint_url = "{url}"\n')
        else:
            f.write("[emulator]\nresources_per_type = 50\n")
    args = [binary, "serve", "--config", config] + ([] if external else ["--emulator"])
    return args, f"host=127.0.0.1 port={port} user=postgres dbname=awscc", emulator


SERVER_ENV = dict(os.environ, AWS_ACCESS_KEY_ID="order", AWS_SECRET_ACCESS_KEY="order")


def run_workload(binary, root, external):
    """Runs the workload against `binary` under callgrind; returns the dumps of what starting
    and the first query ran and of what ran after."""
    args, dsn, emulator = serve_args(binary, root, external)
    out = os.path.join(root, f"callgrind-{os.path.basename(args[3])}.out")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-pos=no", "--compress-strings=no",
         f"--callgrind-out-file={out}", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=SERVER_ENV,
    )
    try:
        conn = connect(proc, dsn)
        with conn:
            first_query(conn, dsn)
            subprocess.run(["callgrind_control", "-d", "first", str(proc.pid)], check=True, capture_output=True)
            for sql in WORKLOAD:
                for prepare in (False, True):
                    cur = conn.execute(sql, prepare=prepare)
                    if cur.description is not None:
                        cur.fetchall()
        for command in PSQL:
            subprocess.run(["psql", dsn, "-c", command], check=True, capture_output=True)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=300)
        if emulator:
            local_postgres.stop(emulator)
    firsts = glob.glob(out + ".*")
    if len(firsts) != 1:
        raise SystemExit(f"expected one dump after the first query, found {firsts}")
    return firsts[0], out


def native_faults(binary, root, external):
    """Addresses (as the file's) of the code a server faulted in running natively while it
    started and answered its first query: a check on callgrind, which can run other code than
    the hardware does (code chosen by CPU feature, or by how threads race); on the build this
    was written for it added two functions. Each fault names one function a 64 KiB window was
    mapped for."""
    args, dsn, emulator = serve_args(binary, root, external)
    data = os.path.join(root, "faults.data")
    proc = subprocess.Popen(
        ["perf", "record", "-q", "-e", "minor-faults", "-c", "1", "-d", "-o", data, "--", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=SERVER_ENV,
    )
    try:
        with connect(proc, dsn) as conn:
            first_query(conn, dsn)
        server = int(subprocess.check_output(["pgrep", "-P", str(proc.pid)]).split()[0])
        base = load_address(server, binary)
        os.kill(server, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        if emulator:
            local_postgres.stop(emulator)
    script = subprocess.run(
        ["perf", "script", "-i", data, "-F", "ip,addr"], check=True, capture_output=True, text=True
    ).stdout
    addrs = set()
    for line in script.splitlines():
        fields = line.split()
        # An instruction fetch faults at its own address.
        if len(fields) == 2 and fields[0] == fields[1]:
            addrs.add(int(fields[0], 16) - base)
    return addrs


def load_address(pid, binary):
    """Where `binary` (position independent, first segment at 0) is mapped in process `pid`."""
    real = os.path.realpath(binary)
    with open(f"/proc/{pid}/maps") as f:
        mappings = [line.split() for line in f]
    starts = [int(m[0].split("-")[0], 16) for m in mappings if len(m) >= 6 and os.path.realpath(m[5]) == real]
    if not starts:
        raise SystemExit(f"{binary} is not mapped in process {pid}")
    return min(starts)


def connect(proc, dsn):
    deadline = time.time() + 300
    while True:
        try:
            return psycopg.connect(dsn, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit("cloudpg did not start")
            time.sleep(0.1)


def first_query(conn, dsn):
    """What an idle server has run: started, answered its first query (from psycopg and psql)."""
    conn.execute("SELECT 1").fetchall()
    subprocess.run(["psql", dsn, "-c", "SELECT 1"], check=True, capture_output=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", help="the release binary the map was written for (not needed with --check)")
    parser.add_argument("--map", required=True, help="its lld link map (-Wl,-Map=...)")
    parser.add_argument("--out", default=ORDER_FILE)
    parser.add_argument("--keep", help="a directory to keep callgrind's output in")
    parser.add_argument("--no-faults", action="store_true", help="skip the native page-fault pass (needs perf)")
    parser.add_argument("--check", action="store_true", help="only say how many of the file's names the map lacks")
    args = parser.parse_args()
    sections = text_sections(args.map)
    if not sections:
        raise SystemExit(f"{args.map} names no .text input sections; is it an lld map?")
    if args.check:
        return check(args.out, sections)
    if not args.binary:
        parser.error("--binary is required to write the file")
    starts = [s[0] for s in sections]
    first, rest, only_native = {}, {}, set()
    with tempfile.TemporaryDirectory(prefix="cloudpg-order-") as root:
        for external in (False, True):
            first_out, rest_out = run_workload(args.binary, args.keep or root, external)
            first.update(functions(sections, starts, executed(first_out, args.binary)))
            rest.update(functions(sections, starts, executed(rest_out, args.binary)))
            if not args.no_faults:
                native = functions(sections, starts, native_faults(args.binary, args.keep or root, external))
                only_native.update(k for k in native if k not in first and k not in rest)
                first.update(native)
    first, rest = dict(sorted(first.items())), dict(sorted(rest.items()))
    # Starting and the first query first: that is what an idle server keeps resident.
    chosen = list(first.values()) + [s for k, s in rest.items() if k not in first]
    names = [s[2] for s in chosen]
    size = sum(s[1] for s in chosen)
    first_size = sum(s[1] for s in first.values())
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("".join(f"{n}\n" for n in names))
    print(f"{len(names):,} functions, {size / 1e6:.1f} MB of code ({len(first):,} and {first_size / 1e6:.1f} MB to start, {len(only_native):,} of them seen only natively)")


def check(order_file, sections):
    """How stale `order_file` is for the build the map is of."""
    present = {s[2]: s[1] for s in sections}
    with open(order_file) as f:
        names = [line.strip() for line in f if line.strip()]
    gone = [n for n in names if n not in present]
    print(f"{len(gone):,} of {len(names):,} names are not in this build "
          f"({sum(1 for n in gone if '.llvm.' in n):,} of them ThinLTO-promoted); "
          f"the rest place {sum(present[n] for n in names if n in present) / 1e6:.1f} MB of code")
    return 1 if len(gone) > len(names) // 20 else 0


if __name__ == "__main__":
    sys.exit(main())
