"""`meridian drill`: the failure drills as CI runs them.

(a) `meridian drill all --quick` starts its own three-region cluster, runs every scenario with
    one fault each, and must find every invariant holding (exit 0), with an FMEA in JSON and
    Markdown and two SVG plots per scenario.
(b) A deliberately broken build — cargo features `broken-apply` (storage applies replicated
    changes in arrival order, without dedup or the last-writer-wins check) and
    `broken-sessions` (regions never enforce session tokens) — must be caught by the matching
    drills: `drill conflicts --quick` exits 1 with convergence or no-lost-writes failed, and
    `drill heal --quick` exits 1 with read-your-writes failed. The broken binary is `MERIDIAN_BROKEN_BIN` (default: `meridian-broken` next to the
    real one; scripts/test.sh builds it). A missing broken binary fails the test: the proof
    must not silently disappear.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from meridian_testlib import BIN

SCENARIOS = ["partition", "kill", "control-outage", "skew", "latency", "dup-reorder",
             "conflicts", "counters", "drain", "byzantine", "failback", "heal",
             "apply-during-outage"]
BROKEN_BIN = Path(os.environ.get("MERIDIAN_BROKEN_BIN", BIN.parent / "meridian-broken"))


def drill(binary, *args, timeout):
    """Runs `binary drill ARGS`; returns the completed process (output captured)."""
    return subprocess.run([str(binary), "drill", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def explain(proc):
    return f"exit {proc.returncode}\n--- stderr\n{proc.stderr[-6000:]}\n--- stdout\n{proc.stdout[-3000:]}"


@pytest.mark.timeout(600)
def test_all_drills_pass_quick(tmp_path):
    out = tmp_path / "report"
    proc = drill(BIN, "all", "--quick", "--seed", "7", "--out", str(out), timeout=580)
    assert proc.returncode == 0, explain(proc)
    report = json.loads((out / "fmea.json").read_text())
    assert [s["name"] for s in report["scenarios"]] == SCENARIOS
    for s in report["scenarios"]:
        assert s["status"] == "pass", (s["name"], s["checks"], s["error"])
        names = {c["name"] for c in s["checks"]}
        assert {"convergence", "no_lost_writes", "exact_counters", "availability",
                "recovery"} <= names, s["name"]
        for plot in (s["plots"]["lag"], s["plots"]["success"]):
            svg = (out / plot).read_text()
            assert svg.startswith("<svg") and "</svg>" in svg, plot
    assert report["status"] == "pass"
    assert report["machine"]["nproc"] >= 1
    md = (out / "fmea.md").read_text()
    for name in SCENARIOS:
        assert f"| `{name}` |" in md
    # The FMEA table is also what the command prints.
    assert "| Scenario | Fault | Effect | Measured impact | Verdict |" in proc.stdout
    assert "seed 7" in proc.stderr


@pytest.mark.timeout(300)
def test_a_broken_replication_apply_is_caught_by_the_conflicts_drill(tmp_path):
    assert BROKEN_BIN.exists(), (
        f"{BROKEN_BIN} is missing: build it with `cargo build -p meridian --features "
        "broken-apply,broken-sessions` "
        "and copy target/debug/meridian to meridian-broken (scripts/test.sh does), or set "
        "MERIDIAN_BROKEN_BIN")
    out = tmp_path / "report"
    proc = drill(BROKEN_BIN, "conflicts", "--quick", "--seed", "7", "--out", str(out),
                 timeout=280)
    assert proc.returncode == 1, explain(proc)
    report = json.loads((out / "fmea.json").read_text())
    [s] = report["scenarios"]
    assert s["name"] == "conflicts" and s["status"] == "fail", s
    failed = {c["name"] for c in s["checks"] if c["verdict"] == "fail"}
    assert failed & {"convergence", "no_lost_writes"}, s["checks"]
    assert "INVARIANT FAILED: conflicts /" in proc.stderr
    # A failed scenario keeps its ledger for diagnosis.
    assert (out / "conflicts-ledger.jsonl").exists()


@pytest.mark.timeout(300)
def test_unenforced_session_tokens_are_caught_by_the_heal_drill(tmp_path):
    assert BROKEN_BIN.exists(), f"{BROKEN_BIN} is missing (see the conflicts test above)"
    out = tmp_path / "report"
    proc = drill(BROKEN_BIN, "heal", "--quick", "--seed", "7", "--out", str(out), timeout=280)
    assert proc.returncode == 1, explain(proc)
    [s] = json.loads((out / "fmea.json").read_text())["scenarios"]
    check = {c["name"]: c for c in s["checks"]}["read_your_writes"]
    assert check["verdict"] == "fail" and " 0 stale" not in check["detail"], check
