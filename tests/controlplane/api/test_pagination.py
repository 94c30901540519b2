"""List endpoints page with an opaque cursor and report the total over every page."""

from __future__ import annotations

from tests.controlplane.api.conftest import auth
from tests.controlplane.api.test_event_loop import documents


def test_workloads_page_by_cursor_with_total(client, tokens):
    h = auth(tokens["research"])
    assert client.post("/v1/workloads", content=documents(7), headers=h).status_code == 201
    client.post("/v1/workloads", content=documents(2, "other"), headers=auth(tokens["infer"]))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/workloads", params=params, headers=h).json()
        assert body["total"] == 7          # the caller's team only, every page
        seen += [w["name"] for w in body["items"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"w{i}" for i in range(7)] and pages == 3
    # A filter applies to the total too; an admin sees every team.
    assert client.get("/v1/workloads", params={"state": "Running"}, headers=h).json()["total"] == 0
    assert client.get("/v1/workloads", headers=auth(tokens["admin"])).json()["total"] == 9
    bad = client.get("/v1/workloads", params={"cursor": "not-a-cursor"}, headers=h)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("cursor:")


def test_workload_events_page_with_after(client, tokens):
    h = auth(tokens["research"])
    client.post("/v1/workloads", content=documents(1), headers=h)
    client.delete("/v1/workloads/w0", headers=h)
    first = client.get("/v1/workloads/w0/events", params={"limit": 1}, headers=h).json()
    assert [e["action"] for e in first["items"]] == ["submitted"] and first["nextCursor"]
    rest = client.get("/v1/workloads/w0/events", params={"limit": 1, "after": first["nextCursor"]}, headers=h).json()
    assert [e["action"] for e in rest["items"]] == ["delete-requested"]
    last = client.get("/v1/workloads/w0/events", params={"limit": 1, "after": rest["nextCursor"]}, headers=h).json()
    assert last["items"] == [] and last["nextCursor"] is None


def test_filtered_pages_walk_every_workload_once_while_more_are_submitted(client, tokens, monkeypatch):
    h = auth(tokens["research"])
    assert client.post("/v1/workloads", content=documents(10), headers=h).status_code == 201
    client.delete("/v1/workloads/w3", headers=h)            # Deleting: not Pending
    seen: list[str] = []
    cursor, batch = None, 0
    while True:
        params: dict[str, str | int] = {"limit": 4, "state": "Pending", **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/workloads", params=params, headers=h).json()
        assert body["totalExact"] is True
        seen += [w["name"] for w in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
        batch += 1     # submitted between pages: listed once, at the end (ids only grow)
        client.post("/v1/workloads", content=documents(2, f"b{batch}-"), headers=h)
    later = [f"b{b}-{i}" for b in range(1, batch + 1) for i in range(2)]
    assert seen == [f"w{i}" for i in range(10) if i != 3] + later
    # Above the bound the total is an estimate, and says so.
    monkeypatch.setattr("controlplane.store.workloads.EXACT_TOTAL_UP_TO", 5)
    body = client.get("/v1/workloads", params={"limit": 2, "state": "Pending"}, headers=h).json()
    assert body["totalExact"] is False and body["total"] >= 6 and len(body["items"]) == 2
