"""A small run of every benchmark, so none of them rots (figures are reported, never asserted)."""
from __future__ import annotations

import json

import pytest

from benchmarks.run import QUICK, main, parse


def test_quick_benchmark_runs_every_scenario_and_reports_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--quick", "--concurrency", "2", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["quick"] is True and results["machine"]
    run = results["runs"]["full"]
    assert run["baseline_commits_per_s"] > 0

    # 1-3: the in-process engine
    assert run["one_step"]["workflows"] == QUICK["one"]
    assert run["ten_step"]["steps_each"] == 10
    assert run["long"]["steps"] == QUICK["long"]
    assert run["long"]["last_over_first"] > 0

    # 4: dispatch, one by one while the daemon runs, and in bulk
    dispatch = run["dispatch"]
    assert dispatch["single"]["count"] == QUICK["singles"]
    for key in ("dispatches_per_s", "all_completed_s", "completed_per_s"):
        assert dispatch["single"][key] > 0
    for how in ("bulk_cli", "bulk_dispatch_many"):
        assert dispatch[how]["count"] == QUICK["bulk"] and dispatch[how]["instances_per_s"] > 0
    assert dispatch["daemon_peak_rss_mib"] > 0

    # 5: instances waiting on an event: memory, then an event to each
    events = run["events"]
    assert events["instances"] == QUICK["waiters"]
    assert events["where_id_events"] + events["control_events"] == QUICK["waiters"]
    for key in ("all_waiting_s", "daemon_peak_rss_mib_waiting", "where_id_events_per_s",
                "control_events_per_s", "all_completed_s", "daemon_peak_rss_mib"):
        assert events[key] > 0

    # 6: recovery after kill -9
    recovery = run["recovery"]
    assert recovery["unfinished_at_kill"] == QUICK["recovery"]
    for key in ("restart_to_started_s", "restart_to_first_write_s", "restart_to_first_step_s",
                "restart_to_first_completed_s", "restart_to_all_completed_s", "daemon_peak_rss_mib"):
        assert recovery[key] > 0
    assert recovery["restart_to_first_step_s"] <= recovery["restart_to_all_completed_s"]

    # 7: the CLI on a big store, next to importing click and rich
    cli = run["cli"]
    assert cli["store_instances"] == QUICK["cli_instances"] + 1
    assert cli["inspect_steps"] == QUICK["cli_steps"]
    for key in ("import_click_rich", "import_click_rich_table", "help", "list", "list_json", "inspect", "inspect_json"):
        assert cli[key]["median_s"] > 0

    # the issue-5 load figure: concurrent dispatchers while the daemon runs
    load = run["load"]
    assert load["instances"] == QUICK["load"] and load["processes"] == 4
    assert load["all_complete"] is True
    for key in ("dispatches_per_s", "all_completed_s", "daemon_peak_rss_mib"):
        assert load[key] > 0

    # the dashboard: its pages' server time, and a step's way to an open instance page
    dashboard = run["dashboard"]
    assert dashboard["store_instances"] == QUICK["dashboard_instances"] + 1
    for page in [*dashboard["list"].values(), dashboard["instance"], dashboard["version"]]:
        assert page["requests"] == QUICK["dashboard_requests"]
        assert 0 <= page["server_ms_median"] <= page["client_ms_median"]
    assert 1 <= dashboard["live"]["paced"]["steps"] <= QUICK["dashboard_live"]
    assert 1 <= dashboard["live"]["quiet"]["steps"] <= QUICK["dashboard_quiet"]
    assert dashboard["live"]["paced"]["delay_ms_max"] > 0

    printed = capsys.readouterr().out
    assert "raw SQLite" in printed and "durability full" in printed and "dashboard live update" in printed
    assert printed.index("| figure") < printed.index('"runs"')  # the table, then the JSON


def test_only_and_durability_options_are_parsed():
    args = parse(["--only", "events, cli", "--durability", "both"])
    assert args.only == ["events", "cli"] and args.durability == "both"
    with pytest.raises(SystemExit):
        parse(["--only", "nope"])


@pytest.mark.parametrize("workload", ["one_step", "ten_step", "long"])
def test_the_instruction_count_workload_completes(workload, monkeypatch, capsys, tmp_path):
    from benchmarks import instructions

    monkeypatch.setenv("BENCH_DIR", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["benchmarks.instructions", workload, "1"])
    instructions.main()
    assert "completed" in capsys.readouterr().out
