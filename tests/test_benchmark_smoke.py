"""A small run of the benchmark, so it never rots (figures are not asserted)."""
from __future__ import annotations

import json

from benchmarks.run import main


def test_quick_benchmark_runs_and_reports_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--quick", "--concurrency", "2", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["one_step"]["workflows"] == 20
    assert results["ten_step"]["steps_each"] == 10
    assert results["long"]["steps"] == 60
    assert results["long"]["last_over_first"] > 0
    assert "raw SQLite" in capsys.readouterr().out
