"""Collects the figures of one run and renders them as the results table: timings, ratios, goals, cost.

Every timing is a median (of pytest-benchmark rounds, or of fresh processes), and every ratio divides two figures
from the same run on the same machine, which is all a shared, noisy 2-core machine supports.
"""

from __future__ import annotations

import datetime
import math
import platform
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BATCH_SIZES = (1, 20, 100, 500)
# The original downloads a schema per event (~15 ms an event here): 500 events would take ~8 s a round.
ORIGINAL_BATCH_SIZES = (1, 20, 100)
HEADLINE_BATCH = 100
COST_BATCH_SIZES = (1, 20, 100)
# Schemas in the bucket for the freshness count (test_freshness.py).
FRESHNESS_SCHEMA_COUNTS = (10, 100, 1000)

# Warm rows: name -> what it times. Per event = per request / batch size.
HANDLER, HANDLER_NO_IO, FLOOR = "handler", "handler without I/O", "floor"
JSONSCHEMA, ORIGINAL, FJS_ALONE, RS_ALONE = "jsonschema", "original", "fastjsonschema alone", "jsonschema-rs alone"
WARM_ROWS = {
    HANDLER: "registry handler (decode, validate, annotate, forward to the fake)",
    HANDLER_NO_IO: "same handler, destinations discarding (no round trip to Segment)",
    FLOOR: "**floor**: parse + compiled fastjsonschema + serialise",
    JSONSCHEMA: "python-jsonschema, cached Draft7Validator: parse + validate + serialise",
    ORIGINAL: "original's approach: per event S3 download (moto) + new Draft7Validator; parse + serialise",
    FJS_ALONE: "fastjsonschema validation alone",
    RS_ALONE: "jsonschema-rs validation alone",
}
# Warm cost of finding schemas by name in a tracking plan, against by schema_id (test_resolution.py).
BY_SCHEMA_ID, BY_NAME = "plan by schema_id", "plan by name"
PLAN_EVENTS = 500  # events of the benchmark's tracking plan, each with two MINORs
PLAN_SCHEMAS = 2 * PLAN_EVENTS
PLAN_BATCH = 100  # analytics-python's default upload_size: the largest batch a server SDK sends by default
# Cold figures, medians of fresh processes (not pytest-benchmark rounds: see test_cold.py).
COLD_REGISTRY, COLD_ORIGINAL = "cold registry", "cold original"
# The Lambda's case: python3.13, the unpacked zip alone on the path, no bytecode written; with and without the
# bytecode build.sh ships.
ZIP_WITH_BYTECODE, ZIP_WITHOUT_BYTECODE = "cold zip with bytecode", "cold zip without bytecode"
# The same two, reaching S3 and Segment over TLS with S3 a round trip away, as in Lambda (test_cold.py).
TLS_REGISTRY, TLS_ORIGINAL = "cold registry over tls", "cold original over tls"
COLD_STACKS = (COLD_REGISTRY, COLD_ORIGINAL, ZIP_WITH_BYTECODE, ZIP_WITHOUT_BYTECODE, TLS_REGISTRY, TLS_ORIGINAL)
# In-region S3 answers a small GET in roughly 15-50 ms; the TLS rows take the low end, flattering neither stack much.
S3_ROUND_TRIP_SECONDS = 0.020
IMPORT_HANDLER, IMPORT_DEPS, S3_CLIENT = "import handler", "import deps", "boto3 S3 client"
# What child.py times inside a fresh interpreter, by name: its arguments.
FRESH_TIMINGS = {
    IMPORT_HANDLER: ("import", "reflekt_registry.handler"),
    IMPORT_DEPS: ("import", "urllib3", "fastjsonschema"),
    S3_CLIENT: ("s3-client",),
}
# How many of the handler's heaviest extra imports the cold table names.
IMPORT_EXTRAS_SHOWN = 6

# Goals from the issue.
WARM_GOAL = 2.0  # warm 100-event batch, per event, at most this times the floor
COLD_GOAL = 0.25  # fresh process to first response, at most this times the original's stack
IMPORT_GOAL = 1.2  # handler import, at most this times `import urllib3, fastjsonschema`
PLAN_GOAL = 1.1  # warm per-event cost by name, over a 1,000-schema plan, at most this times by schema_id
ZIP_GOAL_BYTES = 256 * 1024

# Prices as of the author's reference knowledge (AWS list prices, us-east-1, 2024-2025); check aws.amazon.com/pricing.
LAMBDA_MEMORY_MB = 256  # the memory the issue prices at (GB-s scale linearly with it)
LAMBDA_ARM64_USD_PER_GB_SECOND = 0.0000133334  # first 7.5 billion GB-s a month
LAMBDA_USD_PER_REQUEST = 0.20 / 1e6
HTTP_API_USD_PER_REQUEST = 1.00 / 1e6  # first 300 million requests a month
HTTP_API_METERING_BYTES = 512 * 1024  # a request is metered in 512 KB increments
S3_USD_PER_GET = 0.0004 / 1000  # S3 Standard, us-east-1
S3_USD_PER_LIST = 0.005 / 1000  # a LIST is billed with PUTs, at 12.5 GETs
SECONDS_PER_MONTH = 30 * 24 * 3600
LAMBDA_BILLING_MS = 1  # duration is rounded up to the next millisecond
# Lambda gives a function one full vCPU at 1,769 MB and a proportional share below; at 256 MB, CPU-bound work can
# take up to 1769/256 = 6.9x as long as on this machine's core (if that core is as fast as Lambda's).
FULL_VCPU_MB = 1769


@dataclass(frozen=True)
class Timing:
    seconds: float  # median per call
    rounds: int
    fastest: float | None = None  # the quickest round, when there were rounds: the run least disturbed by other load


@dataclass(frozen=True)
class Pool:
    cold: int  # connections opened by the first invocation
    invocations: int  # warm invocations counted after it
    warm: int  # connections opened by those


@dataclass(frozen=True)
class Freshness:
    """S3 requests of one warm container: meeting every schema once, then per TTL window with every schema in use."""

    first_use: int
    per_ttl: int
    per_ttl_by_answer: dict[tuple[str, int], int]  # (method, status) -> requests in one window


@dataclass
class ZipOutcome:
    size: int | None
    note: str


@dataclass
class Results:
    quick: bool
    timings: dict[tuple[str, int], Timing] = field(default_factory=dict)
    cold_breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    peak_kib: dict[str, float] = field(default_factory=dict)  # cold stack -> median peak resident memory
    pools: list[Pool] = field(default_factory=list)  # connection counts of each fresh registry
    request_bytes: dict[int, int] = field(default_factory=dict)
    # (module, self seconds) of the heaviest modules importing the handler adds to urllib3 and fastjsonschema.
    import_extras: list[tuple[str, float]] = field(default_factory=list)
    mean_event_bytes: float | None = None
    zip: ZipOutcome | None = None
    freshness: dict[tuple[str, int], Freshness] = field(default_factory=dict)  # (store, schemas) -> counts

    def record(self, name: str, benchmark: Any, batch: int = 0) -> None:
        """Keeps the median of a benchmark that ran (nothing in quick mode, where pytest-benchmark keeps none)."""
        stats = getattr(benchmark.stats, "stats", None) if benchmark.stats else None
        if stats is not None:
            self.timings[name, batch] = Timing(stats.median, stats.rounds, stats.min)

    def count_connections(self, cold: int, invocations: int, warm: int) -> None:
        """One fresh registry: connections the fake accepted during its first invocation, then during `invocations`
        warm ones."""
        self.pools.append(Pool(cold, invocations, warm))

    @property
    def warm_invocations(self) -> int:
        return sum(pool.invocations for pool in self.pools)

    @property
    def warm_connections(self) -> int:
        return sum(pool.warm for pool in self.pools)

    def record_samples(self, name: str, seconds: list[float]) -> None:
        """Keeps the median of figures measured outside pytest-benchmark (in full mode only, like record)."""
        if not self.quick:
            self.timings[name, 0] = Timing(statistics.median(seconds), len(seconds), min(seconds))

    def record_breakdown(self, name: str, parts: dict[str, list[float]]) -> None:
        if not self.quick:
            self.cold_breakdown[name] = {part: statistics.median(values) for part, values in parts.items()}

    def record_peak_memory(self, name: str, kib: list[float]) -> None:
        if not self.quick:
            self.peak_kib[name] = statistics.median(kib)

    def seconds(self, name: str, batch: int = 0) -> float | None:
        timing = self.timings.get((name, batch))
        return timing.seconds if timing else None

    def per_event(self, name: str, batch: int) -> float | None:
        seconds = self.seconds(name, batch)
        return None if seconds is None else seconds / batch

    def ratio(self, name: str, other: str, batch: int = 0) -> float | None:
        a, b = self.seconds(name, batch), self.seconds(other, batch)
        return None if a is None or not b else a / b

    def fastest_ratio(self, name: str, other: str, batch: int = 0) -> float | None:
        a, b = self.timings.get((name, batch)), self.timings.get((other, batch))
        return None if a is None or b is None or a.fastest is None or not b.fastest else a.fastest / b.fastest

    @property
    def complete(self) -> bool:
        """Every figure of a full run is in (a run filtered with -k is not)."""
        warm = [(name, batch) for name in WARM_ROWS for batch in BATCH_SIZES
                if name != ORIGINAL or batch in ORIGINAL_BATCH_SIZES]
        cold = [(name, 0) for name in (*COLD_STACKS, *FRESH_TIMINGS)]
        plan = [(BY_SCHEMA_ID, 0), (BY_NAME, 0)]
        return (not self.quick and all(key in self.timings for key in warm + cold + plan) and self.zip is not None
                and {count for _, count in self.freshness} == set(FRESHNESS_SCHEMA_COUNTS))


# -- rendering ----------------------------------------------------------------------------------------------------

def render(results: Results) -> str:
    if results.quick:
        return _quick_summary(results)
    sections = [
        f"Run on {machine()}.",
        "Medians; per event = per request / batch size; ratios are within this run.",
        _goals(results), _warm(results), _cold(results), _cost(results), _freshness(results),
    ]
    return "\n\n".join(sections) + "\n"


def _quick_summary(results: Results) -> str:
    return (f"Quick mode: every benchmark body ran once; nothing was timed or judged. New connections to Segment "
            f"on warm invocations: {results.warm_connections} in {results.warm_invocations}. "
            f"Zip: {_zip_text(results.zip)}.\n")


def _goals(r: Results) -> str:
    warm = r.ratio(HANDLER, FLOOR, HEADLINE_BATCH)
    cold = r.ratio(COLD_REGISTRY, COLD_ORIGINAL)
    bytecode = r.ratio(ZIP_WITH_BYTECODE, ZIP_WITHOUT_BYTECODE)
    imports = r.ratio(IMPORT_HANDLER, IMPORT_DEPS)
    by_name = r.ratio(BY_NAME, BY_SCHEMA_ID)
    plan_seconds = (r.seconds(BY_NAME), r.seconds(BY_SCHEMA_ID))
    zip_size = r.zip.size if r.zip else None
    connections = r.warm_connections if r.pools else None
    rows = [
        ("warm 100-event batch, per event, vs the floor", f"≤ {WARM_GOAL:.1f}x",
         f"{_x(warm)} (fastest rounds: {_x(r.fastest_ratio(HANDLER, FLOOR, HEADLINE_BATCH))})",
         _judge(warm, WARM_GOAL), _warm_limit(r)),
        ("cold: fresh process to first response vs the original's stack", f"≤ {COLD_GOAL:.2f}x", _x(cold),
         _judge(cold, COLD_GOAL), _cold_limit(r)),
        ("cold, python3.13 from the unpacked zip: shipped bytecode vs none", "< 1.0x", _x(bytecode),
         _judge(bytecode, 0.999), _bytecode_limit(r)),
        ("`import reflekt_registry.handler` vs `import urllib3, fastjsonschema`", f"≤ {IMPORT_GOAL:.1f}x",
         _x(imports), _judge(imports, IMPORT_GOAL), _import_limit(r)),
        (f"warm per event, schemas found by name in a {PLAN_SCHEMAS:,}-schema plan vs by schema_id", f"≤ {PLAN_GOAL:.2f}x",
         f"{_x(by_name)} (fastest turns: {_x(r.fastest_ratio(BY_NAME, BY_SCHEMA_ID))}; "
         + " vs ".join(_us(None if t is None else t / PLAN_BATCH) for t in plan_seconds) + " per event)",
         _judge(by_name, PLAN_GOAL), "batches of 100 track events, destinations discarding, the two taking turns"),
        ("new connections to Segment on warm invocations", "0",
         f"{r.warm_connections} in {r.warm_invocations:,} warm invocations of {len(r.pools)} fresh registries",
         _judge(connections, 0), _connection_limit(r)),
        ("dist/reflekt-registry.zip", f"≤ {ZIP_GOAL_BYTES // 1024} KB", _zip_text(r.zip), _judge(zip_size, ZIP_GOAL_BYTES),
         ""),
    ]
    return _table(["goal", "target", "measured", "result", "what limits it"], rows)


def _warm_limit(r: Results) -> str:
    handler, without_io = r.seconds(HANDLER, HEADLINE_BATCH), r.seconds(HANDLER_NO_IO, HEADLINE_BATCH)
    if handler is None or without_io is None:
        return ""
    return (f"without the round trip to the fake Segment the handler is {_x(r.ratio(HANDLER_NO_IO, FLOOR, HEADLINE_BATCH))}"
            f" the floor; the round trip (two POSTs, the fake's parsing and answer, scheduling on a loaded machine) "
            f"is the other {max(0.0, 1 - without_io / handler):.0%} of its time")


def _cold_limit(r: Results) -> str:
    parts, client = r.cold_breakdown.get(COLD_REGISTRY), r.seconds(S3_CLIENT)
    if not parts or client is None:
        return ""
    return (f"the registry no longer loads boto3 (the original's import and S3 client alone take {_ms(client)}); "
            f"its module scope is {_ms(parts['import_s'])}, its first request {_ms(parts['handle_s'])} (5 schema GETs "
            f"and compiles, 2 POSTs), interpreter start-up {_ms(parts['rest_s'])}")


def _bytecode_limit(r: Results) -> str:
    with_, without = r.cold_breakdown.get(ZIP_WITH_BYTECODE), r.cold_breakdown.get(ZIP_WITHOUT_BYTECODE)
    if not with_ or not without:
        return ""
    return (f"module scope {_ms(with_['import_s'])} with the bytecode, {_ms(without['import_s'])} compiling every "
            "module on import")


def _import_limit(r: Results) -> str:
    heaviest = ", ".join(f"{module} {seconds * 1e3:.1f} ms" for module, seconds in r.import_extras[:3])
    return f"heaviest extra modules (self time): {heaviest}" if heaviest else ""


def _connection_limit(r: Results) -> str:
    late = [pool for pool in r.pools if pool.warm]
    if not late:
        return ""
    most = max(pool.cold + pool.warm for pool in late)
    return (f"{len(late)} of {len(r.pools)} fresh registries opened one on a warm invocation, {most} at most in all "
            "(one per concurrent POST): the pool opens a second connection only when two POSTs first overlap")


def _warm(r: Results) -> str:
    head = ["warm, per event (x floor)", *[f"batch {n}" for n in BATCH_SIZES]]
    rows = [["registry handler, **per request**", *[_ms(r.seconds(HANDLER, n)) for n in BATCH_SIZES]]]
    for name, label in WARM_ROWS.items():
        cells = []
        for n in BATCH_SIZES:
            per_event = r.per_event(name, n)
            ratio = r.ratio(name, FLOOR, n) if name != FLOOR else None
            cells.append(_us(per_event) + (f" ({_x(ratio)})" if ratio is not None else ""))
        rows.append([label, *cells])
    sizes = ", ".join(f"{n}: {r.request_bytes[n] / 1024:.1f} KB" for n in BATCH_SIZES if n in r.request_bytes)
    mean = f"{r.mean_event_bytes:.0f} B" if r.mean_event_bytes else "n/a"
    note = (f"Events: mean {mean} as sent, 22% invalid, over 7 schemas; request bodies {sizes}. "
            "The original's approach is not run at batch 500 (seconds per round).")
    return "### Warm\n\n" + _table(head, rows) + "\n\n" + note


def _cold(r: Results) -> str:
    def breakdown(name: str) -> str:
        parts = r.cold_breakdown.get(name)
        if not parts:
            return ""
        return (f"module scope {_ms(parts['import_s'])}, first request {_ms(parts['handle_s'])}, "
                f"spawn and interpreter start-up {_ms(parts['rest_s'])}")

    def peak(name: str) -> str:
        kib = r.peak_kib.get(name)
        return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"

    rows = [  # the parts are medians each, so they need not add up to the median total
        ["registry: fresh process → first response (20 events, 5 schemas in moto S3, forward to the fake)",
         _ms(r.seconds(COLD_REGISTRY)), breakdown(COLD_REGISTRY), peak(COLD_REGISTRY)],
        ["original's stack: same request, fresh process (jsonschema + boto3, per-event S3 + validator)",
         _ms(r.seconds(COLD_ORIGINAL)), breakdown(COLD_ORIGINAL), peak(COLD_ORIGINAL)],
        ["**registry ÷ original**", _x(r.ratio(COLD_REGISTRY, COLD_ORIGINAL)), "", ""],
        [f"registry, reaching S3 and Segment over TLS (system CA certificates), each S3 request answered after "
         f"{S3_ROUND_TRIP_SECONDS * 1e3:g} ms", _ms(r.seconds(TLS_REGISTRY)), breakdown(TLS_REGISTRY), peak(TLS_REGISTRY)],
        ["original's stack, the same", _ms(r.seconds(TLS_ORIGINAL)), breakdown(TLS_ORIGINAL), peak(TLS_ORIGINAL)],
        ["**registry ÷ original, over TLS**", _x(r.ratio(TLS_REGISTRY, TLS_ORIGINAL)), "", ""],
        ["registry under python3.13 from the unpacked zip, its bytecode, PYTHONDONTWRITEBYTECODE",
         _ms(r.seconds(ZIP_WITH_BYTECODE)), breakdown(ZIP_WITH_BYTECODE), peak(ZIP_WITH_BYTECODE)],
        ["the same, bytecode removed (every module compiled on import, as a zip without .pyc files does)",
         _ms(r.seconds(ZIP_WITHOUT_BYTECODE)), breakdown(ZIP_WITHOUT_BYTECODE), peak(ZIP_WITHOUT_BYTECODE)],
        ["**with bytecode ÷ without**", _x(r.ratio(ZIP_WITH_BYTECODE, ZIP_WITHOUT_BYTECODE)), "", ""],
        ["`import reflekt_registry.handler`", _ms(r.seconds(IMPORT_HANDLER)), "", ""],
        ["`import urllib3, fastjsonschema`", _ms(r.seconds(IMPORT_DEPS)), "", ""],
        ["**handler import ÷ dependencies' import**", _x(r.ratio(IMPORT_HANDLER, IMPORT_DEPS)), "", ""],
        ["`import boto3; boto3.client(\"s3\")`: what the original's stack spends before its first S3 request "
         "(the registry no longer does)", _ms(r.seconds(S3_CLIENT)), "", ""],
    ]
    extras = ", ".join(f"{module} {seconds * 1e3:.1f} ms" for module, seconds in r.import_extras) or "n/a"
    note = (f"Heaviest modules the handler imports beyond urllib3 and fastjsonschema (self time, one "
            f"`-X importtime` run): {extras}.")
    return ("### Cold\n\n" + _table(["cold (fresh interpreters)", "median", "of which", "peak memory (median)"], rows)
            + "\n\n" + note)


def _cost(r: Results) -> str:
    gb = LAMBDA_MEMORY_MB / 1024
    scale = FULL_VCPU_MB / LAMBDA_MEMORY_MB
    rows = []
    for n in COST_BATCH_SIZES:
        seconds = r.seconds(HANDLER, n)
        if seconds is None or n not in r.request_bytes:
            continue
        requests = 1e6 / n
        units = math.ceil(r.request_bytes[n] / HTTP_API_METERING_BYTES)
        gateway = requests * units * HTTP_API_USD_PER_REQUEST
        invoke = requests * LAMBDA_USD_PER_REQUEST

        def compute(duration_s: float) -> float:
            billed_s = math.ceil(duration_s * 1000 / LAMBDA_BILLING_MS) * LAMBDA_BILLING_MS / 1000
            return requests * billed_s * gb * LAMBDA_ARM64_USD_PER_GB_SECOND

        as_measured, cpu_bound = compute(seconds) + invoke, compute(seconds * scale) + invoke
        rows.append([f"{n}", f"{requests:,.0f}", _ms(seconds), f"${compute(seconds):.4f}", f"${invoke:.4f}",
                     f"${gateway:.4f}", f"**${as_measured + gateway:.4f}**", f"**${as_measured:.4f}**",
                     f"${cpu_bound + gateway:.4f} / ${cpu_bound:.4f}"])
    head = ["batch", "requests", "handler / request", "Lambda GB-s $", "Lambda requests $", "HTTP API $",
            "total $, `http_api`", "total $, `function_url`", f"totals with CPU ×{scale:.1f} (http_api / function_url)"]
    formula = (
        f"Per million events, at {LAMBDA_MEMORY_MB} MB arm64: requests = 1,000,000 / batch; Lambda = requests × "
        f"ceil(duration, 1 ms) × {gb:g} GB × ${LAMBDA_ARM64_USD_PER_GB_SECOND}/GB-s + requests × $0.20/1M; "
        f"HTTP API = requests × ceil(request size / 512 KB) × $1.00/1M (first 300M a month), and nothing for a "
        "function URL, which Lambda does not charge for beyond its own request and duration. Duration is the warm "
        f"handler median measured here; the last column multiplies it by {FULL_VCPU_MB}/{LAMBDA_MEMORY_MB}, the "
        "CPU share Lambda gives 256 MB, for CPU-bound work. Neither includes Segment's real response time (the fake "
        "answers on loopback): each 10 ms the function waits adds "
        f"${0.010 * gb * LAMBDA_ARM64_USD_PER_GB_SECOND * 1e6:.3f} per million requests. Prices are AWS list "
        "prices for us-east-1 as of the author's reference knowledge (2024-2025), not checked live.")
    return "### Cost per million events\n\n" + _table(head, rows) + "\n\n" + formula


def _freshness(r: Results) -> str:
    from reflekt_registry.config import DEFAULT_SCHEMA_CACHE_TTL_SECONDS as ttl

    rows = []
    for (store, count), fresh in sorted(r.freshness.items(), key=lambda item: (item[0][0], item[0][1])):
        answers = ", ".join(f"{n:,} {method} {status}" for (method, status), n in sorted(fresh.per_ttl_by_answer.items()))
        windows = SECONDS_PER_MONTH / ttl
        dollars = sum(n * (S3_USD_PER_LIST if method == "LIST" else S3_USD_PER_GET)
                      for (method, _), n in fresh.per_ttl_by_answer.items()) * windows
        rows.append([store, f"{count:,}", f"{fresh.first_use:,}", f"**{fresh.per_ttl:,}**", answers or "none",
                     f"${dollars:.2f}"])
    head = ["store", "schemas", "requests, first use", f"requests per TTL ({ttl:g} s), every schema in use",
            "answers", "S3 $ per warm container-month"]
    note = (f"One warm container whose traffic names every schema in every {ttl:g} s window: the worst case; a "
            "schema no event names costs nothing. Counted at the S3 client's connection pool against moto. An id no "
            "schema has costs one GET per 10 s while events keep naming it. S3 at $0.0004 per 1,000 GETs and $0.005 "
            "per 1,000 LISTs.")
    return "### S3 requests per warm container\n\n" + _table(head, rows) + "\n\n" + note


# -- formatting ---------------------------------------------------------------------------------------------------

def _table(head: list[str], rows: list[Any]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _judge(value: float | None, limit: float) -> str:
    if value is None:
        return "NOT MEASURED"
    return "PASS" if value <= limit else "**MISS**"


def _x(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1e3:.3g} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"


def _us(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1e6:.3g} µs" if seconds < 1e-3 else f"{seconds * 1e6:,.0f} µs"


def _zip_text(outcome: ZipOutcome | None) -> str:
    if outcome is None:
        return "not measured"
    if outcome.size is None:
        return f"not built ({outcome.note})"
    return f"{outcome.size / 1024:.0f} KB ({outcome.size:,} bytes)"


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = re.search(r"^Model name:\s*(.+)$", lscpu, re.M)
        cpus = re.search(r"^CPU\(s\):\s*(\d+)$", lscpu, re.M)
        cpu = f"{model[1].strip() if model else 'unknown CPU'}, {cpus[1] if cpus else '?'} CPUs"
    except (OSError, subprocess.CalledProcessError):
        cpu = platform.processor() or "unknown CPU"
    versions = ", ".join(f"{name} {_version(name)}" for name in
                         ("fastjsonschema", "urllib3", "jsonschema", "jsonschema-rs", "boto3", "moto", "pytest-benchmark"))
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{cpu}, {platform.system()} {platform.machine()}, Python {platform.python_version()} ({versions}), {today}"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


# -- README -------------------------------------------------------------------------------------------------------

README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- results:begin (written by ./dev bench) -->", "<!-- results:end -->"


def update_readme(table: str, readme: Path = README) -> bool:
    """Replaces the block between the markers with the latest table; False if the markers are missing."""
    text = readme.read_text() if readme.exists() else ""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return False
    readme.write_text(text[: start + len(BEGIN)] + "\n" + table + text[end:])
    return True
