//! The REST API on a real loopback port: every endpoint, the token, body limits, path
//! confinement, versions and the event stream.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::time::Duration;

use grym_synth::engine::Engine;
use serde_json::{Value, json};

struct Server {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
    engine: Engine,
    _dir: tempfile::TempDir,
}

fn start(token: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = common::engine(&dir.path().join("data"), 4);
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let app = grym_synth::api::router(
        engine.clone(),
        token.map(str::to_string),
        std::slice::from_ref(&root),
    );
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    Server {
        base: format!("http://{addr}"),
        agent,
        token: token.map(str::to_string),
        engine,
        _dir: dir,
    }
}

impl Server {
    fn auth(&self) -> String {
        format!("Bearer {}", self.token.as_deref().unwrap_or(""))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", self.auth())
            .call()
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn send(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut r = match method {
            "POST" => self
                .agent
                .post(&url)
                .header("Authorization", self.auth())
                .send_json(body),
            "PUT" => self
                .agent
                .put(&url)
                .header("Authorization", self.auth())
                .send_json(body),
            "DELETE" => self
                .agent
                .delete(&url)
                .header("Authorization", self.auth())
                .call(),
            _ => unreachable!(),
        }
        .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn wait(&self, execution: &str) -> Value {
        for _ in 0..500 {
            let (_, e) = self.get(&format!("/api/executions/{execution}"));
            if e["status"] != "running" {
                return e;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("execution {execution} did not finish");
    }
}

fn chain_json() -> Value {
    serde_json::to_value(common::workflow(
        "chain",
        "a",
        json!({"start": 1}),
        json!({
            "a": {"type": "transformation", "operation": "add", "inputs": [{"source": "parameter", "key": "start"}],
                  "nextSteps": {"default": "b"}},
            "b": {"type": "transformation", "operation": "add", "inputs": [{"source": "previous_step", "key": "a.result"}],
                  "parameters": {"amount": 10}}
        }),
    ))
    .unwrap()
}

#[test]
fn workflows_can_be_created_listed_read_updated_versioned_and_deleted() {
    let s = start(None);
    let (status, saved) = s.send("POST", "/api/workflows", chain_json());
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["version"], 1);
    let (status, _) = s.send("POST", "/api/workflows", chain_json());
    assert_eq!(status, 409, "creating twice is a conflict");

    let (status, list) = s.get("/api/workflows");
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], "chain");
    assert_eq!(list[0]["steps"], 2);
    let (_, wf) = s.get("/api/workflows/chain");
    assert_eq!(wf["initialStep"], "a");

    let mut edited = chain_json();
    edited["steps"]["b"]["parameters"]["amount"] = json!(20);
    let (status, saved) = s.send("PUT", "/api/workflows/chain", edited);
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["version"], 2);
    let (_, versions) = s.get("/api/workflows/chain/versions");
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert_eq!(versions[1]["note"], "edited b");
    let (_, changes) = s.get("/api/workflows/chain/versions/2/diff");
    assert_eq!(changes[0]["field"], "steps.b.parameters.amount");
    assert_eq!(changes[0]["before"], 10);
    assert_eq!(changes[0]["after"], 20);
    let (_, v1) = s.get("/api/workflows/chain/versions/1");
    assert_eq!(v1["steps"]["b"]["parameters"]["amount"], 10);

    let (status, rolled) = s.send(
        "POST",
        "/api/workflows/chain/rollback",
        json!({"version": 1}),
    );
    assert_eq!(status, 200, "{rolled}");
    assert_eq!(rolled["version"], 3);
    let (_, wf) = s.get("/api/workflows/chain");
    assert_eq!(wf["steps"]["b"]["parameters"]["amount"], 10);

    let mut wrong_id = chain_json();
    wrong_id["id"] = json!("other");
    let (status, err) = s.send("PUT", "/api/workflows/chain", wrong_id);
    assert_eq!(status, 400);
    assert_eq!(err["code"], "bad_request");

    let (status, _) = s.send("DELETE", "/api/workflows/chain", Value::Null);
    assert_eq!(status, 204);
    let (status, err) = s.get("/api/workflows/chain");
    assert_eq!(status, 404);
    assert_eq!(err["code"], "not_found");
    let (_, versions) = s.get("/api/workflows/chain/versions");
    assert_eq!(versions[3]["deleted"], true, "history survives a delete");
}

#[test]
fn invalid_workflows_come_back_with_their_problems() {
    let s = start(None);
    let mut bad = chain_json();
    bad["steps"]["a"]["nextSteps"]["default"] = json!("bb");
    let (status, report) = s.send("POST", "/api/workflows/validate", bad.clone());
    assert_eq!(status, 200);
    assert_eq!(report["valid"], false);
    assert_eq!(report["problems"][0]["code"], "unknown-next-step");
    assert_eq!(report["problems"][0]["step"], "a");
    assert_eq!(report["problems"][0]["field"], "steps.a.nextSteps.default");
    let (status, err) = s.send("POST", "/api/workflows", bad);
    assert_eq!(status, 422);
    assert_eq!(err["code"], "invalid_workflow");
    assert!(!err["problems"].as_array().unwrap().is_empty());
    let (status, _) = s.send("POST", "/api/workflows", json!({"id": "x"}));
    assert!(status == 422 || status == 400, "{status}");
    let (status, err) = s.get("/api/workflows/..");
    assert!(status == 400 || status == 404, "{status} {err}");
}

#[test]
fn executions_run_report_their_results_and_can_be_cancelled() {
    let s = start(None);
    s.send("POST", "/api/workflows", chain_json());
    let (status, started) = s.send(
        "POST",
        "/api/workflows/chain/execute",
        json!({"parameters": {"start": 5}}),
    );
    assert_eq!(status, 202, "{started}");
    let id = started["executionId"].as_str().unwrap().to_string();
    let done = s.wait(&id);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["results"]["b"]["value"], 16.0);
    assert!(done["startedAt"].as_str().unwrap().ends_with('Z'));
    let (_, list) = s.get("/api/executions");
    assert!(list.as_array().unwrap().iter().any(|e| e["id"] == id));

    let (_, tasks) = s.get("/api/tasks");
    let task = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["executionId"] == id)
        .expect("its tasks are listed");
    let task_id = task["id"].as_u64().unwrap();
    let (status, one) = s.get(&format!("/api/tasks/{task_id}"));
    assert_eq!(status, 200);
    assert_eq!(one["stepId"], task["stepId"]);
    let (_, st) = s.get(&format!("/api/tasks/{task_id}/status"));
    assert_eq!(st["status"], "completed");
    assert_eq!(s.get("/api/tasks/999999999").0, 404);

    let long = json!({"id": "long", "name": "long", "initialStep": "s",
        "steps": {"s": {"id": "s", "type": "analysis", "operation": "sleep", "cache": false,
                        "parameters": {"ms": 20000}, "nextSteps": {}}},
        "metadata": {"createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}});
    assert_eq!(s.send("POST", "/api/workflows", long).0, 201);
    let (_, started) = s.send("POST", "/api/workflows/long/execute", Value::Null);
    let id = started["executionId"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(50));
    let (status, c) = s.send("DELETE", &format!("/api/executions/{id}"), Value::Null);
    assert_eq!(status, 200);
    assert_eq!(c["cancelled"], true);
    assert_eq!(s.wait(&id)["status"], "cancelled");
    assert_eq!(s.get("/api/executions/no-such-execution").0, 404);

    let (status, missing) = s.send("POST", "/api/workflows/nope/execute", Value::Null);
    assert_eq!(status, 404, "{missing}");
}

#[test]
fn the_catalog_templates_health_and_openapi_are_served() {
    let s = start(None);
    let (_, ops) = s.get("/api/operations");
    let names: Vec<&str> = ops
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"add") && names.contains(&"sleep"));
    let add = ops
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "add")
        .unwrap();
    assert_eq!(add["parameters"][0]["name"], "amount");
    let (_, templates) = s.get("/api/templates");
    assert!(
        templates
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "audio-enhancement")
    );
    let (_, health) = s.get("/api/health");
    assert_eq!(health["status"], "ok");
    let (status, doc) = s.get("/api/openapi.json");
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/workflows",
        "/api/workflows/{id}",
        "/api/workflows/{id}/execute",
        "/api/executions",
        "/api/executions/{id}",
        "/api/tasks",
        "/api/tasks/{id}",
        "/api/tasks/{id}/status",
        "/api/workflows/validate",
        "/api/operations",
        "/api/templates",
        "/api/workflows/{id}/versions",
        "/api/executions/{id}/events",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["Workflow"].is_object());
}

#[test]
fn a_token_is_required_when_configured() {
    let s = start(Some("s3cret"));
    assert_eq!(s.get("/api/workflows").0, 200);
    let r = s
        .agent
        .get(format!("{}/api/workflows", s.base))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let mut r = s
        .agent
        .get(format!("{}/api/workflows", s.base))
        .header("Authorization", "Bearer s3creT")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.body_mut().read_json().unwrap();
    assert_eq!(body["code"], "unauthorized");
}

#[test]
fn oversized_bodies_are_refused() {
    let s = start(None);
    let mut big = chain_json();
    big["description"] = json!("x".repeat(grym_synth::api::MAX_BODY_BYTES + 10));
    let (status, _) = s.send("POST", "/api/workflows", big);
    assert_eq!(status, 413);
}

fn audio_workflow(path_param: &str) -> Value {
    // `add` reads the parameter as a JSON input; the confinement applies to audio inputs,
    // so this workflow uses a test operation that declares one.
    json!({"id": "audio", "name": "audio", "initialStep": "s",
        "parameters": {"audioFile": path_param},
        "steps": {"s": {"id": "s", "type": "analysis", "operation": "probe", "cache": false,
                        "inputs": [{"source": "parameter", "key": "audioFile"}], "nextSteps": {}}},
        "metadata": {"createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}})
}

#[test]
fn audio_paths_are_confined_to_the_workspace_roots() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("in.wav"), b"RIFF").unwrap();
    let (registry, _) = common::registry();
    let registry = registry.with(common::Probe::new());
    let engine = Engine::start(
        grym_synth::engine::EngineConfig::new(dir.path().join("data")),
        registry,
    )
    .unwrap();
    let app = grym_synth::api::router(engine, None, std::slice::from_ref(&root));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = |path: &str, body: Value| {
        let mut r = agent
            .post(format!("http://{addr}{path}"))
            .send_json(body)
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            r.body_mut().read_json::<Value>().unwrap_or(Value::Null),
        )
    };
    assert_eq!(post("/api/workflows", audio_workflow("in.wav")).0, 201);
    let run = |p: &str| {
        post(
            "/api/workflows/audio/execute",
            json!({"parameters": {"audioFile": p}}),
        )
    };
    assert_eq!(run("in.wav").0, 202);
    assert_eq!(run(root.join("in.wav").to_str().unwrap()).0, 202);
    for bad in ["../in.wav", "/etc/passwd", "root/../../etc/passwd"] {
        let (status, err) = run(bad);
        assert_eq!(status, 403, "{bad}: {err}");
        assert_eq!(err["code"], "forbidden_path");
    }
    let outside = dir.path().join("outside.wav");
    std::fs::write(&outside, b"RIFF").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("sneaky.wav")).unwrap();
    assert_eq!(run("sneaky.wav").0, 403);
}

#[test]
fn the_event_stream_follows_an_execution_to_its_end() {
    let s = start(None);
    s.send("POST", "/api/workflows", chain_json());
    // Start, then read its stream: events already sent are summed up by the final one.
    let long = json!({"id": "slow", "name": "slow", "initialStep": "a",
        "steps": {"a": {"id": "a", "type": "analysis", "operation": "sleep", "cache": false,
                        "parameters": {"ms": 300}, "nextSteps": {"default": "b"}},
                  "b": {"id": "b", "type": "analysis", "operation": "sleep", "cache": false,
                        "parameters": {"ms": 1}, "nextSteps": {}}},
        "metadata": {"createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}});
    s.send("POST", "/api/workflows", long);
    let (_, started) = s.send("POST", "/api/workflows/slow/execute", Value::Null);
    let id = started["executionId"].as_str().unwrap().to_string();
    let r = s
        .agent
        .get(format!("{}/api/executions/{id}/events", s.base))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let reader = BufReader::new(r.into_body().into_reader());
    let names: Vec<String> = reader
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("event: ").map(str::to_string))
        .collect();
    assert_eq!(
        names.last().map(String::as_str),
        Some("execution_finished"),
        "{names:?}"
    );
    assert!(names.contains(&"step_finished".to_string()), "{names:?}");
    // A finished execution's stream is its final event.
    let r = s
        .agent
        .get(format!("{}/api/executions/{id}/events", s.base))
        .call()
        .unwrap();
    let text = r.into_body().read_to_string().unwrap();
    assert!(
        text.contains("event: execution_finished") && text.contains("completed"),
        "{text}"
    );
}

#[test]
fn hundreds_of_concurrent_requests_all_get_answers_and_every_execution_is_recorded() {
    let s = start(None);
    s.send("POST", "/api/workflows", chain_json());
    let base = s.base.clone();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let base = base.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut r = agent
                    .post(format!("{base}/api/workflows/chain/execute"))
                    .send_json(json!({"parameters": {"start": i}}))
                    .unwrap();
                assert_eq!(r.status().as_u16(), 202);
                let started: Value = r.body_mut().read_json().unwrap();
                let mut statuses = Vec::new();
                for _ in 0..3 {
                    let r = agent.get(format!("{base}/api/workflows")).call().unwrap();
                    statuses.push(r.status().as_u16());
                }
                assert!(statuses.iter().all(|&c| c == 200));
                started["executionId"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let ids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for id in &ids {
        assert_eq!(s.wait(id)["status"], "completed");
    }
    let history = s.engine.history(1000).unwrap();
    assert_eq!(history.len(), 100);
}

#[test]
fn workflows_saved_through_the_api_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let (engine, _) = common::engine(&data, 2);
        engine
            .register(serde_json::from_value(chain_json()).unwrap())
            .unwrap();
        engine.flush().unwrap();
    }
    let (engine, _) = common::engine(&data, 2);
    assert_eq!(engine.load_saved_workflows().unwrap(), 1);
    assert!(engine.workflow("chain").is_some());
}
