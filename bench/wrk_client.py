"""Drive an HTTP scenario with ``wrk`` (Debian's ``wrk``, a C load generator) instead of
Python client threads.

Why: 16 ``http.client`` threads in one Python process share its GIL and the machine's two
cores with the server under test, so the latency they report includes the time a client
thread waited to run again after its answer had arrived. ``wrk`` keeps the same closed
loop (``--clients`` keep-alive connections, each sending its next request when the last
answer is complete) on two epoll threads costing a few percent of a core, so what it
reports is the server's latency. Each connection walks its own list of paths, like the
Python client; the figures come back from a Lua ``done`` hook as one JSON line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_MARK = "NURTURE-WRK "

# One path list per connection, read from a file of "connection<TAB>path" lines; wrk has
# no per-connection hook, so each thread takes the next list that is not yet spoken for
# and its requests rotate through its connections' lists in turn.
_SCRIPT = r"""
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  local file = io.open(args[1], "r")
  local mine = {}
  order = {}
  local n_threads = tonumber(args[2])
  for line in file:lines() do
    local conn, path = line:match("^(%d+)\t(.*)$")
    conn = tonumber(conn)
    if conn % n_threads == id - 1 then
      if not mine[conn] then mine[conn] = {}; table.insert(order, conn) end
      table.insert(mine[conn], path)
    end
  end
  file:close()
  lists = mine
  cursor = {}
  for _, c in ipairs(order) do cursor[c] = 0 end
  turn = 0
  wrk.headers["User-Agent"] = args[3]
end

function request()
  turn = turn % #order + 1
  local c = order[turn]
  local list = lists[c]
  cursor[c] = cursor[c] % #list + 1
  return wrk.format("GET", list[cursor[c]])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "p50": %d, "p95": %d, "p99": %d, ' ..
    '"mean": %.1f, "max": %d, "errors": %d, "status_errors": %d}\n',
    "NURTURE-WRK ", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.mean, latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One scenario's figures, latencies in seconds like the Python client's."""

    requests: int
    elapsed: float
    p50: float
    p95: float
    p99: float
    mean: float


def available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    port: int, paths: list[list[str]], agent: str, seconds: float, threads: int = 2
) -> WrkResult:
    """``len(paths)`` keep-alive connections for ``seconds``, connection ``c`` cycling
    through ``paths[c]``; fails loudly on any socket error or non-2xx/3xx answer."""
    with tempfile.TemporaryDirectory(prefix="nurture-wrk-") as tmp:
        script = Path(tmp, "scenario.lua")
        script.write_text(_SCRIPT, encoding="utf-8")
        listing = Path(tmp, "paths.tsv")
        listing.write_text(
            "".join(f"{c}\t{p}\n" for c, mine in enumerate(paths) for p in mine),
            encoding="utf-8",
        )
        argv = ["wrk", "-t", str(threads), "-c", str(len(paths)), "-d", f"{seconds:g}s"]
        argv += ["--timeout", "60s", "-s", str(script), f"http://127.0.0.1:{port}/"]
        argv += ["--", str(listing), str(threads), agent]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next((x for x in out.splitlines() if x.startswith(_MARK)), None)
    if line is None:
        raise SystemExit(f"wrk printed no figures:\n{out}")
    data = json.loads(line[len(_MARK) :])
    if data["errors"] or data["status_errors"]:
        raise SystemExit(f"wrk saw failures: {data}")
    return WrkResult(
        requests=data["requests"],
        elapsed=data["duration_us"] / 1e6,
        p50=data["p50"] / 1e6,
        p95=data["p95"] / 1e6,
        p99=data["p99"] / 1e6,
        mean=data["mean"] / 1e6,
    )
