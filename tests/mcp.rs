//! `grym-synth mcp` driven over stdio the way an MCP client drives it: newline-delimited
//! JSON-RPC, initialize, then tools/list and tools/call.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// A minimal MCP client over a child's stdin/stdout.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    next_id: u64,
}

impl Client {
    fn start(data: &Path, root: &Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_grym-synth"))
            .arg("--data-dir")
            .arg(data)
            .arg("mcp")
            .arg("--root")
            .arg(root)
            .env("GRYM_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut client = Client {
            child,
            stdin,
            lines,
            next_id: 1,
        };
        let init = client.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "grym-test", "version": "0"}
            }),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "grym-synth", "{init}");
        assert!(
            init["result"]["capabilities"]["tools"].is_object(),
            "{init}"
        );
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        client
    }

    fn send(&mut self, message: Value) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends a request and returns its response (skipping notifications).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|e| panic!("no answer to {method}: {e}"));
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-JSON line {line:?}: {e}"));
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
        }
    }

    /// Calls a tool; returns its structured result and whether it was an error.
    fn call(&mut self, tool: &str, arguments: Value) -> (Value, bool) {
        let response = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let result = &response["result"];
        assert!(result.is_object(), "{tool}: not a tool result: {response}");
        let is_error = result["isError"].as_bool().unwrap_or(false);
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        let value = if is_error {
            Value::String(text.to_string())
        } else {
            result
                .get("structuredContent")
                .cloned()
                .unwrap_or_else(|| serde_json::from_str(text).unwrap_or(Value::Null))
        };
        (value, is_error)
    }

    fn ok(&mut self, tool: &str, arguments: Value) -> Value {
        let (value, is_error) = self.call(tool, arguments);
        assert!(!is_error, "{tool} failed: {value}");
        value
    }
}

impl Client {
    /// Closes the session and returns the server's exit status.
    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not exit after its input closed");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Closing stdin ends the session; the server then exits by itself.
        drop(self.stdin.take());
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audio")
        .join(name)
}

/// analysis/features → transformation/normalize → transformation/export, with the export
/// step's `nextSteps` pointing at `next`.
fn draft(features_next: &str) -> Value {
    json!({
        "id": "measure-and-export",
        "name": "Measure, normalize and export",
        "description": "features of the clip, then a peak-normalized 24-bit copy",
        "initialStep": "features",
        "parameters": {"audioFile": null},
        "steps": {
            "features": {
                "type": "analysis", "operation": "features",
                "inputs": [{"source": "parameter", "key": "audioFile"}],
                "nextSteps": {"default": features_next}
            },
            "normalize": {
                "type": "transformation", "operation": "normalize",
                "inputs": [{"source": "parameter", "key": "audioFile"}],
                "parameters": {"mode": "peak", "target": -3.0},
                "nextSteps": {"default": "export"}
            },
            "export": {
                "type": "transformation", "operation": "export",
                "inputs": [{"source": "previous_step", "key": "normalize.result"}],
                "parameters": {"bitDepth": 24, "fileName": "chord-normalized.wav"}
            }
        }
    })
}

#[test]
fn a_model_builds_validates_fixes_saves_runs_and_reads_a_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("audio");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(fixture("chord.wav"), root.join("chord.wav")).unwrap();
    let mut client = Client::start(&dir.path().join("data"), &root);

    let listed = client.request("tools/list", json!({}));
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for expected in [
        "list_operations",
        "get_workflow_schema",
        "list_templates",
        "get_template",
        "validate_workflow",
        "save_workflow",
        "list_workflows",
        "get_workflow",
        "run_workflow",
        "get_execution",
        "wait_for_execution",
        "cancel_execution",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    // The catalog names the operations the workflow will use, with parameter schemas.
    let ops = client.ok("list_operations", json!({}));
    let find = |kind: &str, name: &str| {
        ops["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["type"] == kind && o["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{kind}/{name} is not in the catalog"))
    };
    let features = find("analysis", "features");
    assert!(
        features["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "rms")
    );
    let normalize = find("transformation", "normalize");
    assert!(normalize["parameters"].to_string().contains("lufs"));
    find("transformation", "export");

    let schema = client.ok("get_workflow_schema", json!({}));
    assert!(schema["schema"]["$defs"]["WorkflowStep"].is_object());
    assert!(schema["guide"].as_str().unwrap().contains("maxIterations"));
    let templates = client.ok("list_templates", json!({}));
    let first = templates["templates"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let template = client.ok("get_template", json!({"name": first}));
    assert!(template["workflow"]["steps"].is_object());

    // A misspelled next step: the problem names the field and how to fix it.
    let checked = client.ok("validate_workflow", json!({"workflow": draft("normalise")}));
    assert_eq!(checked["valid"], false, "{checked}");
    let problem = checked["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["severity"] == "error")
        .cloned()
        .unwrap();
    assert_eq!(
        problem["field"], "steps.features.nextSteps.default",
        "{problem}"
    );
    let text = problem["text"].as_str().unwrap();
    assert!(
        text.starts_with("steps.features.nextSteps.default: "),
        "{text}"
    );
    assert!(text.contains("normalise"), "{text}");
    // Saving it as it is is refused, with the same problem.
    let (refused, is_error) = client.call("save_workflow", json!({"workflow": draft("normalise")}));
    assert!(is_error, "{refused}");
    assert!(refused.as_str().unwrap().contains("nextSteps.default"));

    // Fixed; sent as a JSON string this time, which clients sometimes do.
    let fixed = draft("normalize");
    let checked = client.ok("validate_workflow", json!({"workflow": fixed.to_string()}));
    assert_eq!(checked["valid"], true, "{checked}");
    let saved = client.ok("save_workflow", json!({"workflow": fixed}));
    assert_eq!(saved["id"], "measure-and-export");
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["requiredParameters"], json!(["audioFile"]));
    let listed = client.ok("list_workflows", json!({}));
    assert_eq!(listed["workflows"][0]["id"], "measure-and-export");
    let stored = client.ok("get_workflow", json!({"id": "measure-and-export"}));
    assert_eq!(stored["workflow"]["steps"]["features"]["id"], "features");
    assert_eq!(stored["version"], 1);

    // A run without the required parameter does not start.
    let (missing, is_error) = client.call("run_workflow", json!({"id": "measure-and-export"}));
    assert!(is_error, "{missing}");
    assert!(missing.as_str().unwrap().contains("audioFile"), "{missing}");

    let started = client.ok(
        "run_workflow",
        json!({"id": "measure-and-export", "parameters": {"audioFile": "chord.wav"}}),
    );
    let execution = started["executionId"].as_str().unwrap().to_string();
    let done = client.ok(
        "wait_for_execution",
        json!({"executionId": execution, "timeoutSeconds": 300}),
    );
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["finished"], true);
    let rms = done["results"]["features"]["rms"].as_f64().unwrap();
    assert!(rms > 0.0 && rms < 1.0, "rms {rms}");
    let gain = done["results"]["normalize"]["gainDb"].as_f64().unwrap();
    assert!(gain.is_finite());
    let written = PathBuf::from(done["results"]["export"]["path"].as_str().unwrap());
    assert!(written.is_file(), "{} was not written", written.display());
    assert_eq!(
        written.file_name().unwrap().to_string_lossy(),
        "chord-normalized.wav"
    );
    let runs = done["stepRuns"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "completed"), "{runs:?}");

    // Looking again gives the same; cancelling a finished run changes nothing.
    let again = client.ok("get_execution", json!({"executionId": execution}));
    assert_eq!(again["status"], "completed");
    let cancel = client.ok("cancel_execution", json!({"executionId": execution}));
    assert_eq!(cancel["cancelled"], false);

    // Editing and saving again makes version 2.
    let mut edited = draft("normalize");
    edited["steps"]["normalize"]["parameters"]["target"] = json!(-6.0);
    let saved = client.ok("save_workflow", json!({"workflow": edited}));
    assert_eq!(saved["version"], 2);
}

#[test]
fn paths_outside_the_root_and_bad_arguments_are_tool_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("audio");
    let outside = dir.path().join("elsewhere");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::copy(fixture("chord.wav"), outside.join("chord.wav")).unwrap();
    let mut client = Client::start(&dir.path().join("data"), &root);
    client.ok("save_workflow", json!({"workflow": draft("normalize")}));

    for path in [
        outside.join("chord.wav").to_string_lossy().into_owned(),
        "../elsewhere/chord.wav".to_string(),
        "/etc/passwd".to_string(),
    ] {
        let (message, is_error) = client.call(
            "run_workflow",
            json!({"id": "measure-and-export", "parameters": {"audioFile": path}}),
        );
        assert!(is_error, "{path} was accepted: {message}");
        let message = message.as_str().unwrap();
        assert!(message.contains("audioFile"), "{message}");
        assert!(message.contains("Fix:"), "{message}");
    }
    // Nothing ran.
    let history = client.ok("list_workflows", json!({}));
    assert_eq!(history["count"], 1);

    let (message, is_error) = client.call("get_execution", json!({"executionId": "nope"}));
    assert!(is_error);
    assert!(message.as_str().unwrap().contains("nope"), "{message}");
    let (message, is_error) = client.call("get_workflow", json!({"id": "../x"}));
    assert!(is_error);
    assert!(
        message.as_str().unwrap().contains("not a valid"),
        "{message}"
    );
    let (message, is_error) = client.call("get_template", json!({}));
    assert!(is_error);
    assert!(message.as_str().unwrap().contains("`name`"), "{message}");
    let (message, is_error) = client.call(
        "wait_for_execution",
        json!({"executionId": "x", "timeoutSeconds": 10_000}),
    );
    assert!(is_error);
    assert!(message.as_str().unwrap().contains("600"), "{message}");
    let (message, is_error) = client.call("no_such_tool", json!({}));
    assert!(is_error);
    assert!(message.as_str().unwrap().contains("list_operations"));
    // A workflow that is not even JSON is a finding, not a failure.
    let checked = client.ok("validate_workflow", json!({"workflow": "{not json"}));
    assert_eq!(checked["valid"], false);
    assert_eq!(checked["problems"][0]["code"], "unreadable");
    let checked = client.ok(
        "validate_workflow",
        json!({"workflow": {"id": "x", "name": "x", "initialStep": "a", "steps": {}, "colour": 1}}),
    );
    let text = checked["problems"][0]["text"].as_str().unwrap();
    assert!(text.contains("unknown field `colour`"), "{text}");

    assert!(client.finish().success());
}

#[test]
fn a_model_optimises_a_saved_workflow_and_reads_the_best_trial() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("audio");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(fixture("chord.wav"), root.join("chord.wav")).unwrap();
    std::fs::copy(fixture("noise.wav"), root.join("noise.wav")).unwrap();
    let mut client = Client::start(&dir.path().join("data"), &root);

    let template = client.ok("get_template", json!({"name": "match-reference"}));
    let saved = client.ok("save_workflow", json!({"workflow": template["workflow"]}));
    assert_eq!(saved["id"], "match-reference");

    // A path outside the roots is refused before anything runs.
    let (message, is_error) = client.call(
        "optimize_workflow",
        json!({"id": "match-reference", "parameters": {"audioFile": "/etc/passwd", "referenceFile": "chord.wav"}}),
    );
    assert!(is_error);
    assert!(
        message.as_str().unwrap().contains("workspace roots"),
        "{message}"
    );
    // A tuned parameter the workflow does not have is explained.
    let (message, is_error) = client.call(
        "optimize_workflow",
        json!({"id": "match-reference", "tune": {"nope": {"range": {"min": 0, "max": 1}}},
               "parameters": {"audioFile": "noise.wav", "referenceFile": "chord.wav"}}),
    );
    assert!(is_error);
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("optimization.parameters.nope"),
        "{message}"
    );

    let started = client.ok(
        "optimize_workflow",
        json!({"id": "match-reference", "budget": 4, "seed": 1,
               "parameters": {"audioFile": "noise.wav", "referenceFile": "chord.wav", "gainDb": 0}}),
    );
    let study = started["studyId"].as_str().unwrap().to_string();
    let mut state = Value::Null;
    for _ in 0..600 {
        state = client.ok("get_study", json!({"studyId": study}));
        if state["running"] == false {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(state["running"], false, "{state}");
    let trials = state["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    assert!(trials.iter().all(|t| t["state"] == "completed"), "{state}");
    // `gainDb` was fixed, so only the cutoff was tuned.
    assert!(trials.iter().all(|t| t["params"].get("gainDb").is_none()));
    let best = state["best"]["score"].as_f64().unwrap();
    assert!(trials.iter().all(|t| t["score"].as_f64().unwrap() <= best));
    let execution = state["best"]["executionId"].as_str().unwrap();
    let run = client.ok("get_execution", json!({"executionId": execution}));
    assert_eq!(run["status"], "completed");

    let cancelled = client.ok("cancel_study", json!({"studyId": study}));
    assert_eq!(cancelled["cancelled"], false, "it had finished");
    assert!(client.finish().success());
}
