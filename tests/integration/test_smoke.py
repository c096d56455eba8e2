import json


def test_health_and_jobs(client, operator):
    assert client.http.get("/health").json_body["status"] == "ok"
    body = client.http.get("/jobs", headers=operator).json_body
    assert "purge-run-history" in [j["name"] for j in body["jobs"]]


def test_manual_run(client, operator):
    r = client.http.post("/jobs/purge-run-history/runs", headers=operator, body=json.dumps({"params": {}}))
    assert r.status_code == 202, r.body
    run = r.json_body["run"]
    assert run["status"] == "Ended", run
    print(run)
