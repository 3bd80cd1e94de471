//! A process killed in the middle of an execution: what it recorded survives, the execution
//! shows as interrupted at the next start, and resuming it runs only what had not finished.
//!
//! The test runs itself as the child process (`GRYM_RESUME_CHILD` set), so the child has the
//! same test operations as the parent.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{params, workflow};
use grym_synth::engine::{
    Engine, EngineConfig, ExecutionStatus, OpContext, OpError, Operation, OperationRegistry,
    OperationSpec, ParamKind, RunOptions, StepRunStatus,
};
use grym_synth::workflow::StepType;
use serde_json::{Value, json};

const CHILD_ENV: &str = "GRYM_RESUME_CHILD";

/// `transformation/mark`: appends the step's `name` to `marks.txt` in the data folder; with
/// `block` set (and only in the child) it then waits forever, like a long model step.
struct Mark {
    spec: OperationSpec,
    marks: std::path::PathBuf,
    blocking: bool,
}

impl Operation for Mark {
    fn spec(&self) -> &OperationSpec {
        &self.spec
    }
    fn run(&self, ctx: &OpContext<'_>) -> Result<Value, OpError> {
        use std::io::Write;
        let name = ctx.str_param("name")?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.marks)
            .map_err(|e| OpError::failed(e.to_string()))?;
        writeln!(file, "{name}").map_err(|e| OpError::failed(e.to_string()))?;
        file.sync_all()
            .map_err(|e| OpError::failed(e.to_string()))?;
        if self.blocking && ctx.bool_param("block")? {
            loop {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(json!({ "marked": name }))
    }
}

fn start_engine(dir: &Path, blocking: bool) -> Engine {
    let spec = common::spec(
        StepType::Transformation,
        "mark",
        &[],
        &[
            ("name", ParamKind::String, Value::Null),
            ("block", ParamKind::Boolean, json!(false)),
        ],
    );
    let registry = OperationRegistry::new().with(Mark {
        spec,
        marks: dir.join("marks.txt"),
        blocking,
    });
    Engine::start(EngineConfig::new(dir), registry).expect("engine starts")
}

fn four_steps() -> grym_synth::workflow::Workflow {
    let step = |name: &str, next: Option<&str>, block: bool| {
        let mut s = json!({"type": "transformation", "operation": "mark", "cache": false,
                           "parameters": {"name": name, "block": block}});
        if let Some(n) = next {
            s["nextSteps"] = json!({"default": n});
        }
        s
    };
    workflow(
        "four",
        "one",
        json!({}),
        json!({
            "one": step("one", Some("two"), false),
            "two": step("two", Some("three"), false),
            "three": step("three", Some("four"), true),
            "four": step("four", None, false),
        }),
    )
}

/// The child: starts the workflow and blocks in step `three` until killed.
#[test]
fn resume_child_process() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return; // only meaningful as the child of the test below
    };
    let engine = start_engine(Path::new(&dir), true);
    let id = engine
        .run(four_steps(), params(json!({})), RunOptions::default())
        .expect("starts");
    println!("EXECUTION {id}");
    engine.wait(&id, None).ok();
}

fn marks(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("marks.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn an_execution_killed_mid_run_is_interrupted_and_resumes_where_it_stopped() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "resume_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child_pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Wait until step three is running and step two's completion is in the database.
    let db = dir.path().join("grym.db");
    loop {
        assert!(
            Instant::now() < deadline,
            "the child never reached step three"
        );
        if marks(dir.path()).contains(&"three".to_string()) && step_two_recorded(&db) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let engine = start_engine(dir.path(), false);
    let history = engine.history(10).unwrap();
    assert_eq!(history.len(), 1);
    let id = history[0].id.clone();
    assert_eq!(
        history[0].status,
        ExecutionStatus::Interrupted,
        "child {child_pid}"
    );
    let before = engine.execution(&id).unwrap();
    let statuses: Vec<(&str, StepRunStatus)> = before
        .step_runs
        .iter()
        .map(|r| (r.step_id.as_str(), r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("one", StepRunStatus::Completed),
            ("two", StepRunStatus::Completed),
            ("three", StepRunStatus::Interrupted)
        ]
    );

    engine.resume(&id).unwrap();
    let after = engine.wait(&id, Some(Duration::from_secs(30))).unwrap();
    assert_eq!(
        after.status,
        ExecutionStatus::Completed,
        "{:?}",
        after.error
    );
    // One and two ran once, in the child; three ran in both processes; four after resuming.
    assert_eq!(marks(dir.path()), ["one", "two", "three", "three", "four"]);
    assert_eq!(after.results["four"]["marked"], json!("four"));
    engine.flush().unwrap();
    let recorded = Arc::new(engine.store().step_runs(&id).unwrap());
    let steps: Vec<(&str, u32)> = recorded
        .iter()
        .map(|r| (r.step_id.as_str(), r.iteration))
        .collect();
    assert_eq!(
        steps,
        [
            ("one", 1),
            ("two", 1),
            ("three", 1),
            ("three", 1),
            ("four", 1)
        ]
    );
    assert_eq!(
        engine.history(10).unwrap()[0].status,
        ExecutionStatus::Completed
    );
}

fn step_two_recorded(db: &Path) -> bool {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return false;
    };
    conn.query_row(
        "SELECT COUNT(*) FROM step_runs WHERE step_id = 'three' AND status = 'running'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}
