"""The dashboard over HTTP: every page, action and refusal, on a real SQLite store whose
instances an in-process engine runs (as the daemon would)."""
from __future__ import annotations

import html
import itertools
import json
import os
import re
import stat
from urllib.parse import quote, urlsplit
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.cli_helpers import Engineer, run_json
from tests.dashboard_helpers import (  # noqa: F401  (fixtures)
    anonymous,
    app_for,
    browser_client,
    csrf_of,
    dash_engine,
    dash_root,
    dispatch,
    token_of,
)
from zenaton_cli.dashboard.access import TOKEN_FILE, load_token
from zenaton_runtime.models import DaemonRecord
from zenaton_runtime.project.config import load_config
from zenaton_runtime.store import open_store

HOUR = 3600


def states(root: Path, engine: Engineer) -> dict[str, str]:
    """One instance in each state: waiting (running), paused, paused by an error, completed, killed."""
    ids = {
        "waiting": dispatch(root, "Waiter", "ada"),
        "paused": dispatch(root, "Waiter", "bob"),
        "broken": dispatch(root, "Breakable", "cy"),
        "completed": dispatch(root, "Parent", "dee"),
        "killed": dispatch(root, "Waiter", "eve"),
    }
    engine.run()
    run_json(root, "pause", ids["paused"])
    run_json(root, "kill", ids["killed"])
    engine.run()
    return ids


def status_of(root: Path, instance_id: str) -> str:
    return run_json(root, "inspect", instance_id)["status"]


def post(client: TestClient, root: Path, path: str, **fields: str):
    return client.post(path, data={"csrf": csrf_of(root), **fields})


# -- access ------------------------------------------------------------------------------------


def test_token_is_random_private_stable_and_rotates(dash_root: Path) -> None:
    state = load_config(dash_root).state_dir
    first = load_token(state)
    path = state / TOKEN_FILE
    assert len(first) >= 40 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_token(state) == first
    rotated = load_token(state, rotate=True)
    assert rotated != first and load_token(state) == rotated


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/"),
        ("GET", "/instances/{id}"),
        ("GET", "/instances/{id}/timeline.svg"),
        ("GET", "/errors"),
        ("GET", "/schedules"),
        ("GET", "/daemons"),
        ("GET", "/metrics"),
        ("GET", "/static/dashboard.js"),
        ("GET", "/api/instances"),
        ("GET", "/api/instances/{id}"),
        ("POST", "/instances/{id}/kill"),
        ("POST", "/api/instances/{id}/kill"),
        ("POST", "/errors/retry"),
    ],
)
def test_without_the_token_nothing_is_read_or_done(
    dash_root: Path, dash_engine: Engineer, anonymous: TestClient, method: str, path: str
) -> None:
    instance = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "zenaton_dashboard=wrong"}):
        response = anonymous.request(method, path.format(id=instance), headers=headers, data={"confirmed": "yes"})
        assert response.status_code == 401
        assert "Waiter" not in response.text and instance not in response.text
    assert anonymous.get(f"/?token=wrong{token_of(dash_root)}").status_code == 401
    assert status_of(dash_root, instance) == "running"


def test_the_token_in_the_address_becomes_a_strict_cookie(dash_root: Path, anonymous: TestClient) -> None:
    token = token_of(dash_root)
    entered = anonymous.get(f"/errors?token={token}&name=x")
    assert entered.status_code == 303
    assert entered.headers["location"] == "/errors?name=x"  # the token leaves the address
    cookie = entered.headers["set-cookie"]
    assert cookie.startswith(f"zenaton_dashboard={token}") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert anonymous.get("/errors").status_code == 200  # the cookie is kept by the client
    assert anonymous.get("/api/instances", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/%2F%2Fevil.example/x", "/%5C%5Cevil.example", "/%2F%5Cevil.example", "/%E9t%C3%A9", "/errors/%2F/x"],
)
def test_the_address_without_the_token_stays_on_this_server(dash_root: Path, anonymous: TestClient, path: str) -> None:
    entered = anonymous.get(f"{path}?token={token_of(dash_root)}&a=%3Cb%3E")
    location = entered.headers["location"]
    assert entered.status_code == 303 and location.isascii() and location.endswith("?a=%3Cb%3E")
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert urlsplit(location).netloc == "" and urlsplit("http://127.0.0.1:8025" + location).hostname == "127.0.0.1"


def test_every_response_forbids_framing_inline_scripts_and_referrers(browser_client: TestClient) -> None:
    response = browser_client.get("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8025",
        "127.0.0.1.evil.example",
        "",
        "[::1]evil.example",
        "127.0.0.1:1@evil.example",
        "localhost:",
        "localhost:99999999",
        "local host",
    ],
)
def test_another_host_header_is_refused(browser_client: TestClient, host: str) -> None:
    response = browser_client.get("/", headers={"Host": host})
    assert response.status_code == 400 and "Host" in response.text


def test_loopback_names_are_accepted(browser_client: TestClient) -> None:
    for host in ("localhost:8025", "127.0.0.1", "[::1]:8025", "LOCALHOST.", "Localhost:8025"):
        assert browser_client.get("/", headers={"Host": host}).status_code == 200


def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(
    dash_root: Path, dash_engine: Engineer, browser_client: TestClient
) -> None:
    instance = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    for data in ({}, {"csrf": "forged"}, {"csrf": csrf_of(dash_root)[:-1]}):
        response = browser_client.post(f"/instances/{instance}/pause", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert status_of(dash_root, instance) == "running"
    assert open_store(load_config(dash_root).store_url).inbox(instance) == []
    # the header form of the token works for scripts on the page
    ok = browser_client.post(f"/api/instances/{instance}/pause", headers={"X-CSRF-Token": csrf_of(dash_root)})
    assert ok.status_code == 200 and ok.json()["status"] == "paused"


def test_a_get_never_changes_anything(dash_root: Path, dash_engine: Engineer, browser_client: TestClient) -> None:
    instance = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    for action in ("pause", "kill", "retry", "rewind"):
        assert browser_client.get(f"/instances/{instance}/{action}").status_code in (404, 405)
        assert browser_client.get(f"/api/instances/{instance}/{action}").status_code in (404, 405)
    assert status_of(dash_root, instance) == "running"


def test_bearer_requests_need_no_csrf_token(dash_root: Path, dash_engine: Engineer, anonymous: TestClient) -> None:
    instance = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    bearer = {"Authorization": f"Bearer {token_of(dash_root)}"}
    response = anonymous.post(f"/api/instances/{instance}/pause", headers=bearer)
    assert response.status_code == 200
    assert response.json() == {
        "id": instance,
        "action": "pause",
        "applied": True,
        "status": "paused",
        "message": "pause: done, Waiter is now paused",
    }


# -- pages -------------------------------------------------------------------------------------


def test_user_data_is_escaped_everywhere(dash_root: Path, dash_engine: Engineer, browser_client: TestClient) -> None:
    hostile = "<script>alert(1)</script>"
    instance = dispatch(dash_root, "Breakable", json.dumps(hostile), custom_id=f"<img src=x onerror=alert(2)>")
    dash_engine.run()
    pages = [browser_client.get(p).text for p in ("/", f"/instances/{instance}", "/errors", f"/?custom_id={hostile}")]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in pages[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; is broken" in pages[2]
    svg = browser_client.get(f"/instances/{instance}/timeline.svg").text
    assert "<script" not in svg


def test_instances_page_counts_filters_and_links(dash_root: Path, dash_engine: Engineer, browser_client: TestClient) -> None:
    ids = states(dash_root, dash_engine)
    page = browser_client.get("/").text
    counts = re.search(r'<table class="counts" id="counts">(.*?)</table>', page, re.S)[1]
    waiter = re.search(r"<tr>\s*<td><a[^>]*>Waiter</a></td>(.*?)</tr>", counts, re.S)[1]
    assert re.findall(r'class="status (\w+)"[^>]*>(\d+)<', waiter) == [("running", "1"), ("paused", "1"), ("killed", "1")]
    for instance in ids.values():
        assert f'href="/instances/{instance}"' in page
    paused = browser_client.get("/?status=paused").text
    assert ids["paused"] in paused and ids["broken"] in paused and ids["waiting"] not in paused
    by_name = browser_client.get("/?name=Breakable").text
    assert ids["broken"] in by_name and ids["paused"] not in by_name
    by_custom = browser_client.get("/?custom_id=bob").text
    assert ids["paused"] in by_custom and ids["waiting"] not in by_custom
    by_prefix = browser_client.get(f"/?id_prefix={ids['killed'][:8]}").text
    assert ids["killed"] in by_prefix and ids["waiting"] not in by_prefix
    assert ids["waiting"] not in browser_client.get("/?env=prod").text
    assert ids["waiting"] in browser_client.get("/?env=*").text


def test_paging_goes_through_every_instance_once(dash_root: Path, browser_client: TestClient) -> None:
    lines = "".join(f'["n{i}"]\n' for i in range(23))
    (dash_root / "many.jsonl").write_text(lines)
    run_json(dash_root, "dispatch", "Waiter", "--from-file", dash_root / "many.jsonl")
    seen: list[str] = []
    address = "/api/instances?limit=10"
    while address:
        data = browser_client.get(address).json()
        seen += [i["id"] for i in data["instances"]]
        address = f"/api/instances?limit=10&before={data['next']}" if data["next"] else ""
    listed = [i["id"] for i in run_json(dash_root, "list", "--limit", "100")]
    assert seen == listed and len(seen) == 23
    page = browser_client.get("/?limit=10").text
    older = re.search(r'id="older" href="([^"]+)"', page)[1].replace("&amp;", "&")
    assert f"before={seen[9]}" in older and seen[10] in browser_client.get("/" + older).text


@pytest.mark.parametrize(
    "query, message",
    [
        ("status=sleeping", "status must be one of"),
        ("limit=0", "limit must be"),
        ("limit=abc", "limit must be"),
        ("limit=100000", "limit must be"),
        ("limit=%C2%B2", "limit must be a whole number"),
        ("before=nope", "before must be an instance id"),
        ("name=" + "x" * 600, "longer than"),
        ("custom_id=a%00b", "NUL"),
    ],
)
def test_bad_filters_are_one_clear_line(browser_client: TestClient, query: str, message: str) -> None:
    page = browser_client.get(f"/?{query}")
    assert page.status_code == 400 and message in page.text and "Traceback" not in page.text
    api = browser_client.get(f"/api/instances?{query}")
    assert api.status_code == 400 and message in api.json()["error"]


def test_instance_page_shows_the_timeline_properties_and_children(
    dash_root: Path, dash_engine: Engineer, browser_client: TestClient
) -> None:
    parent = dispatch(dash_root, "Parent", "dee")
    waiter = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    run_json(dash_root, "send-event", waiter, "Go", "42")
    dash_engine.run()
    page = browser_client.get(f"/instances/{waiter}").text
    assert 'id="status">completed<' in page
    steps = re.findall(r'<tr class="step [^"]*">\s*<td class="num">(\d*)</td>\s*<td>(\w+)</td>\s*<td>(\w*)</td>', page)
    assert steps == [
        ("1", "task", "Greet"),
        ("2", "wait", "Go"),
        ("", "event", "Go"),
        ("3", "parallel", "Greet"),
        ("4", "parallel", "Greet"),
        ("", "completed", ""),
    ]
    assert '<span class="key">got</span> <del>null</del> → <ins>42</ins>' in page  # the change, as a diff
    assert "task properties" in page and "&#34;greeted&#34;" in page  # the task's own attributes
    assert "hello ada" in page  # an attempt's output
    svg = re.search(r'<div class="picture" id="picture">(<svg.*?</svg>)', page, re.S)[1]
    assert svg.count('<g class="bar">') == 4  # three attempts and the wait
    lanes = {float(y) for y in re.findall(r'<rect x="[\d.]+" y="([\d.]+)"', svg)}
    assert len(lanes) >= 2  # the parallel branches lie side by side
    child = run_json(dash_root, "list", "--name", "Child")[0]["id"]
    parent_page = browser_client.get(f"/instances/{parent}").text
    assert f'href="/instances/{child}"' in parent_page
    assert f'id="parent" href="/instances/{parent}"' in browser_client.get(f"/instances/{child}").text


def test_instance_page_shows_the_error_with_its_traceback(
    dash_root: Path, dash_engine: Engineer, browser_client: TestClient
) -> None:
    broken = dispatch(dash_root, "Breakable", "cy")
    dash_engine.run()
    page = browser_client.get(f"/instances/{broken}").text
    error = re.search(r'<section class="error" id="error">(.*?)</section>', page, re.S)[1]
    assert "<strong>RuntimeError</strong>: cy is broken" in error
    assert "Traceback (most recent call last)" in error and "dashflows.py" in error
    assert 'id="retry"' in page and 'id="kill"' in page and 'id="pause"' not in page
    svg = browser_client.get(f"/instances/{broken}/timeline.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "#e03131" in svg.text  # a failed attempt's colour


def test_unknown_instances_are_404_and_ambiguous_ones_400(browser_client: TestClient) -> None:
    for ref in ("nope", "x" * 300, "%00", "é", "%2e%2e"):
        response = browser_client.get(f"/instances/{ref}")
        assert response.status_code == 404 and "no instance" in response.text
        assert browser_client.get(f"/api/instances/{ref}").status_code == 404
    assert browser_client.get("/instances/../../etc/passwd").status_code in (404, 405)
    assert browser_client.get("/instances/%2e%2e%2fetc").status_code in (404, 405)  # never a file
    assert browser_client.get("/static/../../pyproject.toml").status_code in (404, 405)
    assert browser_client.get("/static/evil.js").status_code == 404


# -- actions ------------------------------------------------------------------------------------


def test_pause_and_resume_go_through_the_control_api(
    dash_root: Path, dash_engine: Engineer, browser_client: TestClient
) -> None:
    instance = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    paused = post(browser_client, dash_root, f"/instances/{instance}/pause")
    assert paused.status_code == 303 and paused.headers["location"].startswith(f"/instances/{instance}?done=")
    assert status_of(dash_root, instance) == "paused"
    assert "pause: done, Waiter is now paused" in browser_client.get(paused.headers["location"]).text
    post(browser_client, dash_root, f"/instances/{instance}/resume")
    assert status_of(dash_root, instance) == "running"
    kinds = [s["kind"] for s in run_json(dash_root, "inspect", instance)["steps"]]
    assert kinds == ["task", "wait", "pause", "resume"]  # journaled as `zenaton pause` would be


def test_kill_asks_for_a_confirmation_first(dash_root: Path, dash_engine: Engineer, browser_client: TestClient) -> None:
    instance = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    asked = post(browser_client, dash_root, f"/instances/{instance}/kill")
    assert asked.status_code == 200 and "Yes, kill" in asked.text
    assert status_of(dash_root, instance) == "running"
    done = post(browser_client, dash_root, f"/instances/{instance}/kill", confirmed="yes")
    assert done.status_code == 303 and status_of(dash_root, instance) == "killed"


def test_retry_runs_the_failed_step_again(dash_root: Path, dash_engine: Engineer, browser_client: TestClient) -> None:
    broken = dispatch(dash_root, "Breakable", "cy")
    dash_engine.run()
    assert status_of(dash_root, broken) == "paused"
    (dash_root / "fixed").touch()
    post(browser_client, dash_root, f"/instances/{broken}/retry")
    view = run_json(dash_root, "inspect", broken)
    assert view["status"] == "completed" and view["properties"]["result"] == "mended"


def test_send_event_builds_the_event_from_json_arguments(
    dash_root: Path, dash_engine: Engineer, browser_client: TestClient
) -> None:
    instance = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    sent = post(browser_client, dash_root, f"/instances/{instance}/event", event="Go", args='{"value": {"n": 7}}')
    assert sent.status_code == 303
    view = run_json(dash_root, "inspect", instance)
    assert view["status"] == "completed" and view["properties"]["got"]["n"] == 7


@pytest.mark.parametrize(
    "fields, status, message",
    [
        ({"event": "Nope"}, 400, "unknown event 'Nope'"),
        ({"event": ""}, 400, "name the event"),
        ({"event": "Go", "args": "{not json"}, 400, "not JSON"),
        ({"event": "Go", "args": "7"}, 400, "must be a JSON array"),
        ({"event": "Go", "args": '{"other": 1}'}, 400, "cannot create Go"),
        ({"event": "Go", "args": "[" * 5000}, 400, "not JSON"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_sent(
    dash_root: Path, dash_engine: Engineer, browser_client: TestClient, fields: dict[str, str], status: int, message: str
) -> None:
    instance = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    response = post(browser_client, dash_root, f"/instances/{instance}/event", **fields)
    assert response.status_code == status and message in html.unescape(response.text)
    assert "Traceback" not in response.text
    assert status_of(dash_root, instance) == "running"
    assert [s["kind"] for s in run_json(dash_root, "inspect", instance)["steps"]] == ["task", "wait"]


def test_rewind_asks_then_starts_a_new_run(dash_root: Path, dash_engine: Engineer, browser_client: TestClient) -> None:
    instance = dispatch(dash_root, "Parent", "dee")
    dash_engine.run()
    asked = post(browser_client, dash_root, f"/instances/{instance}/rewind", step="1")
    assert asked.status_code == 200 and "Yes, rewind" in asked.text and 'name="step" value="1"' in asked.text
    done = post(browser_client, dash_root, f"/instances/{instance}/rewind", step="1", confirmed="yes")
    assert done.status_code == 303 and "(run 2)" in browser_client.get(done.headers["location"]).text
    view = run_json(dash_root, "inspect", instance)
    assert view["run"] == 2 and view["status"] == "completed"


@pytest.mark.parametrize(
    "path, fields, status, message",
    [
        ("/instances/{id}/explode", {}, 404, "no action 'explode'"),
        ("/instances/{id}/rewind", {"step": "abc", "confirmed": "yes"}, 400, "whole number"),
        ("/instances/{id}/rewind", {"step": "²", "confirmed": "yes"}, 400, "whole number"),
        ("/instances/{id}/rewind", {"step": "99", "confirmed": "yes"}, 409, "cannot rewind"),
        ("/instances/{id}/resume", {}, 409, "cannot resume"),
        ("/instances/nope/pause", {}, 404, "no instance 'nope'"),
        ("/errors/retry", {}, 400, "say which group"),
    ],
)
def test_actions_refused_with_a_clear_status(
    dash_root: Path, dash_engine: Engineer, browser_client: TestClient, path: str, fields: dict[str, str], status: int, message: str
) -> None:
    instance = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    response = post(browser_client, dash_root, path.format(id=instance), **fields)
    assert response.status_code == status, response.text
    assert message in html.unescape(response.text) and "Traceback" not in response.text
    api = browser_client.post(
        "/api" + path.format(id=instance) if path.startswith("/instances") else "/api/retry",
        data={"csrf": csrf_of(dash_root), **fields},
    )
    assert api.status_code == status and message in api.json()["error"]
    assert status_of(dash_root, instance) == "running"


def test_hostile_bodies_get_a_4xx(dash_root: Path, dash_engine: Engineer, browser_client: TestClient) -> None:
    instance = dispatch(dash_root, "Waiter", "ada")
    dash_engine.run()
    path = f"/api/instances/{instance}/event"
    headers = {"X-CSRF-Token": csrf_of(dash_root)}
    garbage = browser_client.post(path, content=b"--x\r\n\x00\xff", headers={**headers, "Content-Type": "multipart/form-data; boundary=x"})
    assert garbage.status_code == 400
    not_object = browser_client.post(path, content=b"[1]", headers={**headers, "Content-Type": "application/json"})
    assert not_object.status_code == 400 and "JSON object" in not_object.json()["error"]
    huge = browser_client.post(path, content=b"a=" + b"x" * 300_000, headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 400 and "larger than" in huge.json()["error"]
    as_json = browser_client.post(path, json={"event": "Go", "args": [5]}, headers=headers)
    assert as_json.status_code == 200 and as_json.json()["status"] == "completed"


def test_errors_page_groups_and_retries_a_group(dash_root: Path, dash_engine: Engineer, browser_client: TestClient) -> None:
    broken = [dispatch(dash_root, "Breakable", name) for name in ("a1", "a2", "a3")]
    dash_engine.run()
    page = browser_client.get("/errors").text
    assert "3 instance(s)" in page and "RuntimeError" in page and "Fragile" in page
    assert all(f'action="/instances/{i}/retry"' in page for i in broken)
    assert browser_client.get("/api/errors").json() == run_json(dash_root, "errors")
    (dash_root / "fixed").touch()
    done = post(browser_client, dash_root, "/errors/retry", **{"class": "RuntimeError", "task": "Fragile"})
    assert done.status_code == 303 and "retry posted for 3 instance(s)" in browser_client.get(done.headers["location"]).text
    dash_engine.run()
    assert [status_of(dash_root, i) for i in broken] == ["completed"] * 3
    assert 'id="no-errors"' in browser_client.get("/errors").text


def test_schedules_page_shows_fire_times_in_the_projects_timezone(dash_root: Path, dash_engine: Engineer) -> None:
    toml = dash_root / "zenaton.toml"
    toml.write_text(toml.read_text().replace('timezone = "UTC"', 'timezone = "Asia/Kolkata"'))
    run_json(dash_root, "schedule", "Waiter", "30 9 * * *", "sched")
    dash_engine.run(advance=86400)  # the schedule fires once
    with TestClient(app_for(dash_root), base_url="http://127.0.0.1") as client:
        client.get(f"/?token={token_of(dash_root)}")
        page = client.get("/schedules").text
        rows = client.get("/api/schedules").json()
    assert "times in Asia/Kolkata" in page and "30 9 * * *" in page
    row = rows[0]
    upcoming = row["upcoming_local"]
    assert len(upcoming) == 3 and upcoming[0] == row["next_fire_local"] and upcoming[0] in page
    assert all(t.endswith("09:30:00+05:30") for t in upcoming) and upcoming == sorted(set(upcoming))
    started = run_json(dash_root, "list", "--name", "Waiter")[0]["id"]
    assert row["fires"] == 1 and row["last_fire_instance"] == started
    assert row["last_fire_local"].endswith("+05:30")  # when it fired, in the project's timezone
    assert f'<a href="/instances/{started}">{row["last_fire_local"]}</a>' in page
    added = {"next_fire_local", "upcoming_local", "last_fire_local", "last_fire_instance"}
    assert {k: v for k, v in row.items() if k not in added} == run_json(dash_root, "schedules")[0]


def test_daemons_page_and_metrics(dash_root: Path, dash_engine: Engineer, browser_client: TestClient) -> None:
    states(dash_root, dash_engine)
    store = open_store(load_config(dash_root).store_url)
    now = store.now()
    stats = {
        "steps": 40,
        "commits": 20,
        "task_attempts": {"completed": 9, "failed": 1, "retried": 2},
        "commit_seconds": {"le": [0.001, 0.01], "buckets": [5, 18], "count": 20, "sum": 0.09},
    }
    store.heartbeat(
        DaemonRecord("d1", "box", 4242, "dev", "0.1.0", now - 60, now, 8, 3, 12, 4, 40, 6.5, json.dumps(stats))
    )
    store.close()
    page = browser_client.get("/daemons").text
    assert "4242" in page and ">alive<" in page and ">6.5<" in page
    metrics = {m.name: m for m in text_string_to_metric_families(browser_client.get("/metrics").text)}
    by_status = {(s.labels["name"], s.labels["status"]): s.value for s in metrics["zenaton_instances"].samples}
    assert by_status[("Waiter", "running")] == 1 and by_status[("Waiter", "killed")] == 1
    assert by_status[("Breakable", "paused")] == 1 and by_status[("Parent", "completed")] == 1
    steps = [s for s in metrics["zenaton_steps"].samples if s.name == "zenaton_steps_total"]
    assert steps[0].value == 40 and steps[0].labels["daemon"] == "d1"
    attempts = {s.labels["outcome"]: s.value for s in metrics["zenaton_task_attempts"].samples if s.name.endswith("_total")}
    assert attempts == {"completed": 9, "failed": 1, "retried": 2}
    buckets = {s.labels["le"]: s.value for s in metrics["zenaton_commit_seconds"].samples if s.name.endswith("_bucket")}
    assert buckets == {"0.001": 5, "0.01": 18, "+Inf": 20}
    assert metrics["zenaton_tasks_queued"].samples[0].value == 0


def test_api_speaks_the_clis_json(dash_root: Path, dash_engine: Engineer, browser_client: TestClient) -> None:
    ids = states(dash_root, dash_engine)
    for instance in ids.values():
        view = browser_client.get(f"/api/instances/{instance}").json()
        cli = run_json(dash_root, "inspect", instance)
        assert {k: view[k] for k in cli} == cli
        assert set(view) - set(cli) == {"children", "pending", "actions", "positions", "daemon", "now", "last_seq"}
    listed = browser_client.get("/api/instances").json()["instances"]
    assert listed == run_json(dash_root, "list")
    status = browser_client.get("/api/status").json()
    cli_status = run_json(dash_root, "status")
    assert {k: status[k] for k in ("instances", "tasks_queued", "env", "store")} == {
        k: cli_status[k] for k in ("instances", "tasks_queued", "env", "store")
    }
    version = browser_client.get(f"/api/instances/{ids['waiting']}/version").json()["version"]
    run_json(dash_root, "pause", ids["waiting"])
    assert browser_client.get(f"/api/instances/{ids['waiting']}/version").json()["version"] != version


FUZZED = itertools.count()
QUERY_KEYS = ["status", "name", "env", "custom_id", "id_prefix", "before", "limit", "token2"]
ACTION_FIELDS = ["event", "args", "step", "confirmed", "class", "task", "all"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.dictionaries(st.sampled_from(QUERY_KEYS), st.text(max_size=80), max_size=4),
    ref=st.text(min_size=1, max_size=60).map(lambda t: quote(t, safe="")).filter(lambda t: t not in (".", "..")),
    action=st.sampled_from(["pause", "resume", "kill", "retry", "event", "rewind", "nope"]),
    fields=st.dictionaries(st.sampled_from(ACTION_FIELDS), st.text(max_size=80), max_size=4),
    body=st.binary(max_size=200),
    real=st.booleans(),
)
def test_no_input_gets_a_500(
    dash_root: Path,
    dash_engine: Engineer,
    browser_client: TestClient,
    query: dict[str, str],
    ref: str,
    action: str,
    fields: dict[str, str],
    body: bytes,
    real: bool,
) -> None:
    if real:  # an instance that exists, so that the actions' own checks of their fields run
        ref = dispatch(dash_root, "Waiter", f"fuzz-{next(FUZZED)}")
    for path in ("/", "/api/instances", "/errors", "/api/errors"):
        assert browser_client.get(path, params=query).status_code < 500
    for path in (f"/instances/{ref}", f"/api/instances/{ref}", f"/instances/{ref}/timeline.svg"):
        assert browser_client.get(path).status_code in (200, 307, 400, 404, 405)  # a ref that decodes to a slash
    csrf = {"csrf": csrf_of(dash_root)}
    assert browser_client.post(f"/instances/{ref}/{action}", data={**fields, **csrf}).status_code < 500
    assert browser_client.post(f"/api/instances/{ref}/{action}", data={**fields, **csrf}).status_code < 500
    assert browser_client.post("/errors/retry", data={**fields, **csrf}).status_code < 500
    for kind in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"):
        headers = {"Content-Type": kind, "X-CSRF-Token": csrf["csrf"]}
        assert browser_client.post(f"/api/instances/{ref}/{action}", content=body, headers=headers).status_code < 500


def test_the_version_a_page_polls_changes_with_a_step_that_changes_no_property(
    dash_root: Path, dash_engine: Engineer, browser_client: TestClient
) -> None:
    instance = dispatch(dash_root, "Sleeper", "3")
    dash_engine.run()
    page = browser_client.get(f"/instances/{instance}").text
    version, seq = re.search(r'data-version="([^"]+)" data-seq="(\d+)"', page).groups()
    polled = browser_client.get(f"/api/instances/{instance}/version?seq={seq}").json()["version"]
    assert polled == version
    dash_engine.run(advance=61)  # the first nap ends, the second starts: no property changes
    assert run_json(dash_root, "inspect", instance)["status"] == "running"
    after = browser_client.get(f"/api/instances/{instance}/version?seq={seq}").json()["version"]
    assert after != version
    assert browser_client.get(f"/api/instances/{instance}/version?seq=x").status_code == 400
    assert browser_client.get(f"/api/instances/{instance}/version?seq=%C2%B2").status_code == 400
