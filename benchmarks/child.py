"""What the cold benchmarks run in a fresh interpreter, started as a script (the suite imports only RESULT_MARKER).

    child.py import MODULE [MODULE ...]   time importing the modules
    child.py s3-client                    time importing boto3 and creating an S3 client (what the original does)
    child.py registry REQUEST.json       the registry's lambda_handler, first invocation of a new process
    child.py original REQUEST.json       the original's stack doing the same request's work

The two first responses also report the process's peak resident memory (VmHWM) once they have answered.

Each prints one line, RESULT_MARKER + JSON, as soon as it has its answer; the parent stops its clock on reading it,
so interpreter shutdown (which no client waits for) is not timed. Only sys and time are imported up front, so a
measured import finds nothing preloaded beyond what every interpreter starts with.
"""

import sys
import time

RESULT_MARKER = "BENCH-RESULT "


def _report(**fields):
    import json

    print(RESULT_MARKER + json.dumps(fields), flush=True)


def time_imports(modules):
    started = time.perf_counter()
    for module in modules:
        __import__(module)
    _report(seconds=time.perf_counter() - started)


def s3_client():
    started = time.perf_counter()
    import boto3

    boto3.client("s3")
    _report(seconds=time.perf_counter() - started)


def registry(request_path):
    started = time.perf_counter()
    from reflekt_registry.handler import lambda_handler

    imported = time.perf_counter()
    response = lambda_handler(_load(request_path), None)
    handled = time.perf_counter()
    _report(status=response["statusCode"], import_s=imported - started, handle_s=handled - imported, peak_kib=_peak_kib())


def original(request_path):
    """The original's module scope (imports, clients), then its per-event work and one post per destination."""
    import os

    started = time.perf_counter()
    import urllib3

    import original as stack
    import pipeline

    registry = stack.S3SchemaRegistry(os.environ["REGISTRY_BUCKET"])
    http = urllib3.PoolManager()
    imported = time.perf_counter()
    valid, invalid = pipeline.process(_load(request_path)["body"], stack.judge(registry))
    statuses = [_post(http, body, os.environ[key]) for body, key in
                ((valid, "VALID_SEGMENT_WRITE_KEY"), (invalid, "INVALID_SEGMENT_WRITE_KEY"))]
    status = 200 if all(s == 200 for s in statuses) else max(statuses)
    handled = time.perf_counter()
    _report(status=status, import_s=imported - started, handle_s=handled - imported, peak_kib=_peak_kib())


def _peak_kib():
    """The process's peak resident set so far, in KiB; read after the clock stops. VmHWM, not ru_maxrss: Linux
    carries ru_maxrss across exec, so a child would report its parent's (the benchmark's) peak."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def _post(http, body, write_key):
    import base64
    import os

    token = base64.b64encode(f"{write_key}:".encode()).decode()
    response = http.request("POST", os.environ["SEGMENT_API_HOST"] + "/v1/batch", body=body,
                            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    return response.status


def _load(path):
    import json

    with open(path) as file:
        return json.load(file)


if __name__ == "__main__":
    mode, *arguments = sys.argv[1:]
    if mode == "import":
        time_imports(arguments)
    else:
        {"s3-client": s3_client, "registry": registry, "original": original}[mode](*arguments)
