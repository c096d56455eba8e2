"""``make bench`` rewrites its scale's section of BENCHMARKS.md and keeps the other scales'."""
from types import SimpleNamespace

from devstack.bench import Row, report_sections, write_report


def _bench(scale, step, seconds, shards=()):
    row = Row(step, 10, "rows", seconds, {"dynamodb.Query": 2}, 80.0, "Ended", list(shards))
    return SimpleNamespace(scale=scale, workers=2, rows=[row])


def test_each_scale_has_its_section_and_a_rerun_replaces_only_its_own(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    write_report(_bench("M", "post-inventory", 3.0, [{"seconds": 1.0, "maxrss_mb": 90}, {"seconds": 2.0,
                                                                                         "maxrss_mb": 95}]), 0, out)
    write_report(_bench("L", "post-inventory", 30.0), 0, out)
    write_report(_bench("M", "post-statements", 4.0), 0, out)

    sections = report_sections(out.read_text())
    assert list(sections) == ["M", "L"] and out.read_text().startswith("# Benchmarks")
    assert "post-statements" in sections["M"] and "post-inventory" not in sections["M"]
    assert "| post-inventory | Ended | 10 rows | 30.0 | 2 | 0.200 | 80 |  |  |  | dynamodb.Query 2 |" in sections["L"]


def test_a_fan_out_row_carries_its_shards(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    write_report(_bench("M", "post-inventory", 3.0, [{"seconds": 1.0, "maxrss_mb": 90}, {"seconds": 2.0,
                                                                                         "maxrss_mb": 95}]), 0, out)
    assert "| post-inventory | Ended | 10 rows | 3.0 | 2 | 0.200 | 80 | 2 | 1.5 / 2.0 | 95 | dynamodb.Query 2 |" \
        in out.read_text()
