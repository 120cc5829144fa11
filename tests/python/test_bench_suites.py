"""`meridian bench` cluster suites, at CI size, on a cluster the command starts itself: every
suite runs to the end, writes JSON, Markdown and plots, and its numbers are consistent with
what it did (entries counted, items found, peers caught up, failover observed). Targets are
not asserted here — they are machine-dependent and live in docs/benchmarks.md."""

import json
import subprocess

import pytest

from meridian_testlib import BIN

RATE = 500
LAG_SECS = 4  # --quick


@pytest.mark.timeout(600)
def test_every_cluster_suite_runs_and_reports_consistent_numbers(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run(
        [str(BIN), "bench", "all", "--quick", "--rate", str(RATE), "--items", "5000",
         "--partition-secs", "3", "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    assert report == json.loads((out / "bench.json").read_text())
    assert (out / "bench.md").read_text().startswith("# `meridian bench all")
    suites = {s["name"]: {r["metric"]: r for r in s["rows"]} for s in report["suites"]}
    assert list(suites) == ["ops", "lag", "netflix", "catchup", "failover"]
    for s in report["suites"]:
        for plot in s["plots"]:
            assert (out / plot).read_text().startswith("<svg"), plot

    ops = suites["ops"]
    for target in ["region us-east", "gateway"]:
        for op in ["PutItem", "GetItem"]:
            assert ops[f"{target}: {op} throughput"]["value"] > 0

    # every write was replicated to both other regions, and each applied entry's lag recorded
    lag = suites["lag"]
    for phase in ["one region", "all regions"]:
        assert lag[f"{phase}: entries applied"]["value"] == 2 * RATE * LAG_SECS, phase
        p50 = lag[f"{phase}: lag p50 (worst link)"]["value"]
        p99 = lag[f"{phase}: lag p99 (worst link)"]["value"]
        assert 50 <= p50 <= p99  # never below the emulated 50 ms one-way delay

    netflix = suites["netflix"]
    for delay in ["0 ms delay", "80 ms delay"]:
        assert f"{delay}: all items readable in eu-west after the last ack" in netflix, delay
        found = netflix[f"{delay}: found by the first read in eu-west"]["value"]
        missing = netflix[f"{delay}: missing at the first read"]["value"]
        assert found * 5000 / 100 + missing == pytest.approx(5000)

    catchup = suites["catchup"]
    assert catchup["backlog at the heal (largest per peer)"]["value"] >= RATE * 2
    for peer in ["eu-west", "ap-southeast"]:
        assert catchup[f"catch-up us-east → {peer}"]["value"] > 0

    failover = suites["failover"]
    assert any(m.startswith("failover: kill of us-east → first answer from ") for m in failover)
    assert "failback: restart of us-east → first answer from us-east" in failover
