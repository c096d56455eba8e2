"""`make demo` end to end, as a newcomer runs it: a fresh process, its own moto server."""
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from tests.unit.test_pay import adds_up

PROJECT = Path(__file__).resolve().parents[2]


def test_demo_exits_zero_and_prints_its_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(PROJECT)
    result = subprocess.run([sys.executable, "-m", "devstack", "demo"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.split("Summary")[1]
    # The one run that ends Error is the demo's refused pay period (an unapproved registration).
    assert [line for line in summary.splitlines() if " Error " in line and "transfer-to-pay" not in line] == []
    out = tmp_path / "demo-output"
    assert (out / "receipt.eml").read_text().count("application/pdf") == 1
    assert (out / "receipt.pdf").read_bytes().startswith(b"%PDF")
    assert list((out / "exports" / "account-activity").rglob("*.xml"))
    assert list((out / "exports" / "account-activity").rglob("*-adj1.xml"))  # the late statement's adjustment
    payroll = list((out / "exports" / "payroll").rglob("*.csv"))
    assert payroll and [p.name for p in payroll if "-supplement-1.csv" in p.name]
    assert "late pay line(s)" in result.stdout
    lines = [row for path in payroll for row in csv.DictReader(io.StringIO(path.read_text(), newline=""))]
    assert [row for row in lines if not adds_up(row)] == []  # every line: hours x rate = amount
    assert list((out / "packages").rglob("*.jsonl.gz"))
