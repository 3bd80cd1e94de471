//! The command line as scripts and CI drive it: exit codes, `--json` shapes, files written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn grym(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grym-synth"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("GRYM_LOG", "error")
        .output()
        .expect("the binary runs")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_exit_codes_are_0_valid_1_invalid_2_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let valid = repo("tests/fixtures/validation/valid.ron");
    let invalid = repo("tests/fixtures/validation/unknown-next-step.ron");
    let garbage = dir.path().join("garbage.ron");
    std::fs::write(&garbage, b"\x00\x01 not a workflow").unwrap();
    let code = |files: &[&Path]| {
        let args: Vec<&str> = std::iter::once("validate")
            .chain(files.iter().map(|p| p.to_str().unwrap()))
            .collect();
        grym(dir.path(), &args).status.code()
    };
    assert_eq!(code(&[&invalid]), Some(1));
    assert_eq!(code(&[&garbage]), Some(2));
    assert_eq!(code(&[&valid, &garbage]), Some(2));
    let missing = dir.path().join("missing.ron");
    assert_eq!(code(&[&missing]), Some(2));
}

#[test]
fn validate_json_reports_every_problem_with_code_step_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let invalid = repo("tests/fixtures/validation/unknown-next-step.ron");
    let out = grym(
        dir.path(),
        &["validate", "--json", invalid.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], Value::Bool(false));
    let file = &report["files"][0];
    assert_eq!(file["status"], "invalid");
    let problem = file["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "unknown-next-step")
        .expect("the rule's problem is reported");
    assert_eq!(problem["severity"], "error");
    assert_eq!(problem["step"], "analyse");
    assert_eq!(problem["field"], "steps.analyse.nextSteps.default");
    assert!(problem["hint"].as_str().unwrap().contains("export"));
}

#[test]
fn a_parse_error_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\n  \"id\": \"x\",\n  \"name\": 12,\n}\n").unwrap();
    let out = grym(dir.path(), &["validate", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("broken.json:"), "{stdout}");
    assert!(stdout.contains("| "), "quotes the offending line: {stdout}");
}

#[test]
fn convert_round_trips_ron_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let ron = repo("workflows/audio-enhancement.ron");
    let json = dir.path().join("a.json");
    let back = dir.path().join("b.ron");
    let out = grym(
        dir.path(),
        &["convert", ron.to_str().unwrap(), json.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = grym(
        dir.path(),
        &["convert", json.to_str().unwrap(), back.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let a = grym_synth::workflow::load(&ron).unwrap();
    let b = grym_synth::workflow::load(&back).unwrap();
    assert_eq!(a, b);
}

#[test]
fn new_writes_a_template_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mine.ron");
    let t = target.to_str().unwrap();
    let out = grym(dir.path(), &["new", "--template", "audio-enhancement", t]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(grym_synth::workflow::load(&target).is_ok());
    let out = grym(dir.path(), &["new", "--template", "audio-enhancement", t]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--force"));
    let out = grym(dir.path(), &["new", "--template", "no-such", t, "--force"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("audio-enhancement"));
}

#[test]
fn an_invalid_workflow_is_refused_by_run_with_its_problems() {
    let dir = tempfile::tempdir().unwrap();
    let invalid = repo("tests/fixtures/validation/unknown-next-step.ron");
    let out = grym(dir.path(), &["run", invalid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown-next-step"));
}

#[test]
fn bad_param_and_operation_arguments_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = grym(dir.path(), &["op", "features"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("TYPE/NAME"));
    let out = grym(dir.path(), &["op", "analysis/no-such-operation"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("grym-synth ops"));
    let valid = repo("tests/fixtures/validation/valid.ron");
    let out = grym(
        dir.path(),
        &["run", valid.to_str().unwrap(), "--param", "novalue"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("key=value"));
}

#[test]
fn op_takes_a_repeated_input_as_several() {
    let dir = tempfile::tempdir().unwrap();
    let (chord, clicks) = (
        repo("tests/fixtures/audio/chord.wav"),
        repo("tests/fixtures/audio/clicks.wav"),
    );
    // Either order: the mix is as long as the longer clip (clicks, 6 s), so both were read.
    for (a, b) in [(&chord, &clicks), (&clicks, &chord)] {
        let out = grym(
            dir.path(),
            &[
                "op",
                "transformation/mix",
                "--input",
                &format!("audio={}", a.display()),
                "--input",
                &format!("audio={}", b.display()),
                "--json",
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let result: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(result["duration"].as_f64(), Some(6.0), "{result}");
    }
}

#[test]
fn history_lists_nothing_in_a_fresh_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = grym(dir.path(), &["history", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list, Value::Array(vec![]));
}

#[test]
fn ops_json_is_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let out = grym(dir.path(), &["ops", "--json"]);
    assert!(out.status.success());
    let catalog: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = catalog
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["type"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect();
    let registry = grym_synth::ops::builtin_registry();
    let expected: Vec<String> = registry.specs().map(|s| s.qualified_name()).collect();
    assert_eq!(names, expected);
}
