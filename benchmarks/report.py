"""One table of every figure, its ratio to the raw-SQLite baseline (or to its reference), per durability."""
from __future__ import annotations

from typing import Any

from .dashboard import rows as dashboard_rows

BUDGET_MIB = 250.0

Row = tuple[str, str, str]  # figure, value (ratio), target


def _x(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def _cell(value: str, ratio: str = "") -> str:
    return f"{value} ({ratio})" if ratio else value


def _mib(mib: float) -> str:
    return _cell(f"{mib:,.1f} MiB", f"{mib / BUDGET_MIB:.2f} of {BUDGET_MIB:.0f}")


def _done(seconds: float, per_s: float, base: float) -> str:
    return _cell(f"{seconds:,.2f} s, {per_s:,.0f}/s", _x(per_s, base))


def _of(s: dict[str, Any]) -> str:
    runs = s.get("steps_per_s_runs") or []
    return f", median of {len(runs)}" if len(runs) > 1 else ""


def rows(r: dict[str, Any]) -> list[Row]:
    """The table's rows for one durability's results (the scenarios that ran)."""
    base = r["baseline_commits_per_s"]
    runs = r.get("baseline_runs") or [base]
    spread = f"{base:,.0f} commits/s (1.00x; {min(runs):,.0f}-{max(runs):,.0f})"
    out: list[Row] = [("raw SQLite, 1 row per commit (FULL), median of 5", spread, "")]
    if "one_step" in r:
        s = r["one_step"]
        out.append((f"{s['workflows']:,} one-step workflows (in-process engine){_of(s)}",
                    _cell(f"{s['workflows_per_s']:,.0f} workflows/s", _x(s["workflows_per_s"], base)), ">= 0.6x"))
    if "ten_step" in r:
        s = r["ten_step"]
        out.append((f"{s['workflows']:,} ten-step workflows (in-process engine){_of(s)}",
                    _cell(f"{s['steps_per_s']:,.0f} steps/s", _x(s["steps_per_s"], base)), ">= 1.5x"))
    if "long" in r:
        s = r["long"]
        out.append((f"one {s['steps']:,}-step workflow (in-process engine){_of(s)}",
                    _cell(f"{s['steps_per_s']:,.0f} steps/s", _x(s["steps_per_s"], base)), ">= 0.4x"))
        first_last = f"{s['ms_per_step_first']:.3f} -> {s['ms_per_step_last']:.3f}"
        ratio = f"last/first {s['last_over_first']}"
        out.append(("  ms per step, first 100 -> last 100", _cell(first_last, ratio), "<= 1.2"))
    if "dispatch" in r:
        s = r["dispatch"]
        one, cli, many = s["single"], s["bulk_cli"], s["bulk_dispatch_many"]
        out += [
            (f"{one['count']:,} single dispatch() from one script, daemon running",
             _cell(f"{one['dispatches_per_s']:,.0f} dispatches/s", _x(one["dispatches_per_s"], base)), ">= 0.5x"),
            ("  ... all of them completed after", _done(one["all_completed_s"], one["completed_per_s"], base), ""),
            (f"bulk {cli['count']:,}: zenaton dispatch --from-file, daemon running",
             _cell(f"{cli['instances_per_s']:,.0f} instances/s", _x(cli["instances_per_s"], base)), ">= 4x"),
            (f"bulk {many['count']:,}: Client().dispatch_many, daemon stopped",
             _cell(f"{many['instances_per_s']:,.0f} instances/s", _x(many["instances_per_s"], base)), ">= 4x"),
            ("  daemon peak RSS (dispatch scenario)", _mib(s["daemon_peak_rss_mib"]), "< 250 MiB"),
        ]
    if "events" in r:
        s = r["events"]
        out += [
            (f"{s['instances']:,} Wait(Event) instances: bulk dispatch -> all waiting",
             _cell(f"{s['all_waiting_s']:,.2f} s", _x(s["instances"] / s["all_waiting_s"], base)), ""),
            ("  daemon peak RSS while they wait", _mib(s["daemon_peak_rss_mib_waiting"]), "< 250 MiB"),
            (f"  {s['where_id_events']:,} events by where_id().send_event(), one script",
             _cell(f"{s['where_id_events_per_s']:,.0f} events/s", _x(s["where_id_events_per_s"], base)), ""),
            (f"  {s['control_events']:,} more by the Control API, one script",
             _cell(f"{s['control_events_per_s']:,.0f} events/s", _x(s["control_events_per_s"], base)), ""),
            ("  first of those sent -> all completed", _done(s["all_completed_s"], s["completed_per_s"], base), ""),
            ("  daemon peak RSS, end", _mib(s["daemon_peak_rss_mib"]), "< 250 MiB"),
        ]
    if "recovery" in r:
        s = r["recovery"]
        out += [
            (f"kill -9 with {s['unfinished_at_kill']:,} unfinished (events queued); restart -> daemon up",
             f"{s['restart_to_started_s']:.2f} s", ""),
            ("  restart -> first journal write", f"{s['restart_to_first_write_s']:.2f} s", ""),
            ("  restart -> first completed step (task)", f"{s['restart_to_first_step_s']:.2f} s", ""),
            ("  restart -> first completed instance", f"{s['restart_to_first_completed_s']:.2f} s", ""),
            ("  restart -> all completed", _done(s["restart_to_all_completed_s"], s["completed_per_s"], base), ""),
            ("  daemon peak RSS (recovery)", _mib(s["daemon_peak_rss_mib"]), "< 250 MiB"),
        ]
    if "load" in r:
        s = r["load"]
        out += [
            (f"load: {s['instances']:,} dispatch() from {s['processes']} processes, daemon running",
             _cell(f"{s['dispatches_per_s']:,.0f} dispatches/s", _x(s["dispatches_per_s"], base)), ""),
            ("  first dispatch -> all completed", _done(s["all_completed_s"], s["completed_per_s"], base), ""),
            ("  all complete", "yes" if s["all_complete"] else "NO", "yes"),
            ("  daemon peak RSS (load)", _mib(s["daemon_peak_rss_mib"]), "< 250 MiB"),
        ]
    if "cli" in r:
        s = r["cli"]
        imp = s["import_click_rich"]["median_s"]

        def cli_row(name: str, key: str) -> Row:
            t = s[key]["median_s"]
            return (name, _cell(f"{t:.3f} s", f"{t / imp:.2f}x import"), "")

        out += [
            ('python -c "import click, rich" (median of runs)', _cell(f"{imp:.3f} s", "1.00x import"), ""),
            cli_row('python -c "import click, rich.console, rich.table"', "import_click_rich_table"),
            cli_row("zenaton --help (CLI start-up)", "help"),
            cli_row(f"zenaton list, {s['store_instances']:,} instances in the store", "list"),
            cli_row("zenaton list --json", "list_json"),
            cli_row(f"zenaton inspect of the {s['inspect_steps']:,}-step instance", "inspect"),
            cli_row("zenaton inspect --json", "inspect_json"),
        ]
    if "dashboard" in r:
        out += dashboard_rows(r["dashboard"])
    return out


def table(results: dict[str, Any]) -> str:
    """A Markdown table: one column per durability run, then the target."""
    runs = results["runs"]
    names = list(runs)
    per_run = {name: rows(runs[name]) for name in names}
    figures = [(figure, target) for figure, _, target in per_run[names[0]]]
    values = {name: {figure: value for figure, value, _ in per_run[name]} for name in names}
    header = ["figure", *[f"durability {name}" for name in names], "target"]
    body = [[figure, *[values[name].get(figure, "-") for name in names], target] for figure, target in figures]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])
