//! Workflow files: the plan's example, RON/JSON round trips, located errors, bad input,
//! newer schemas and atomic saves.

use std::path::{Path, PathBuf};

use grym_synth::workflow::file::{MAX_FILE_BYTES, parse_str, to_string};
use grym_synth::workflow::{self, FileError, Format};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn plan_example_json_and_template_ron_are_the_same_workflow() {
    let json = workflow::load(&root().join("tests/fixtures/audio-enhancement.json")).unwrap();
    let mut ron = workflow::load(&root().join("workflows/audio-enhancement.ron")).unwrap();
    // The template adds node positions for the editor, which the engine ignores.
    assert!(ron.layout.take().is_some());
    assert_eq!(json, ron);
    assert_eq!(json.steps.len(), 6);
    assert_eq!(json.initial_step, "analyze-audio");
    let evaluate = &json.steps["evaluate-result"];
    assert_eq!(
        evaluate.condition.as_ref().unwrap().right_operand,
        serde_json::json!(0.8)
    );
    assert_eq!(
        json.steps["regenerate"].parameters["focusAreas"],
        serde_json::json!("context.evaluate-result.result.improvementAreas")
    );
    assert_eq!(json.parameters["audioFile"], serde_json::Value::Null);
}

#[test]
fn plan_example_round_trips_to_ron_and_back_unchanged() {
    let original = workflow::load(&root().join("tests/fixtures/audio-enhancement.json")).unwrap();
    let ron = to_string(&original, Format::Ron).unwrap();
    let from_ron = parse_str(&ron, Format::Ron).unwrap();
    assert_eq!(from_ron, original);
    let json = to_string(&from_ron, Format::Json).unwrap();
    let back = parse_str(&json, Format::Json).unwrap();
    assert_eq!(back, original);
    // And the JSON text is the plan's fields, camelCase, with `type` and `previous_step`.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let step = &value["steps"]["generate-enhanced"];
    assert_eq!(step["type"], "generation");
    assert_eq!(step["inputs"][0]["source"], "previous_step");
    assert_eq!(step["nextSteps"]["default"], "evaluate-result");
    assert_eq!(value["initialStep"], "analyze-audio");
    assert!(value["metadata"]["createdAt"].is_string());
}

#[test]
fn saving_and_loading_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow::load(&root().join("workflows/audio-enhancement.ron")).unwrap();
    for name in ["a.ron", "a.json", "UPPER.JSON"] {
        let path = dir.path().join(name);
        workflow::save(&path, &wf).unwrap();
        assert_eq!(workflow::load(&path).unwrap(), wf, "{name}");
    }
    let err = workflow::save(&dir.path().join("a.yaml"), &wf).unwrap_err();
    assert!(matches!(err, FileError::UnknownFormat { .. }), "{err}");
}

#[test]
fn save_replaces_atomically_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow::load(&root().join("workflows/audio-enhancement.ron")).unwrap();
    let path = write(
        dir.path(),
        "flow.ron",
        "old contents that must be fully replaced",
    );
    workflow::save(&path, &wf).unwrap();
    assert_eq!(workflow::load(&path).unwrap(), wf);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("flow.ron")]);
}

#[test]
fn failed_save_keeps_the_original_file() {
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow::load(&root().join("workflows/audio-enhancement.ron")).unwrap();
    // A directory stands where the file should go: the rename fails after the temporary file
    // was written, which must leave the directory (and its contents) untouched.
    let target = dir.path().join("taken.ron");
    std::fs::create_dir(&target).unwrap();
    write(&target, "keep.txt", "precious");
    assert!(workflow::save(&target, &wf).is_err());
    assert_eq!(
        std::fs::read_to_string(target.join("keep.txt")).unwrap(),
        "precious"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "taken.ron")
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );

    let missing_dir = dir.path().join("no/such/dir/flow.ron");
    let err = workflow::save(&missing_dir, &wf).unwrap_err();
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[test]
fn parse_errors_name_file_line_and_column_and_quote_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/audio-enhancement.json")).unwrap();
    // Break line 7 (`"analyze-audio": {`) by dropping its colon.
    let broken: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 6 {
                l.replacen(':', "", 1)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = write(dir.path(), "broken.json", &broken);
    let err = workflow::load(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("broken.json:7:"), "{msg}");
    assert!(
        msg.contains("\"analyze-audio\" {"),
        "quotes the line: {msg}"
    );
    match err {
        FileError::Parse {
            location: Some(loc),
            ..
        } => assert_eq!(loc.line, 7),
        other => panic!("expected a located parse error, got {other:?}"),
    }

    let ron = "(\n    id: \"x\",\n    name: 12,\n)";
    let path = write(dir.path(), "wrong-type.ron", ron);
    let msg = workflow::load(&path).unwrap_err().to_string();
    assert!(msg.contains("wrong-type.ron:3:"), "{msg}");
    assert!(msg.contains("name: 12"), "{msg}");
}

#[test]
fn unknown_fields_and_wrong_enum_values_are_rejected() {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/audio-enhancement.json")).unwrap();
    let typo = text.replacen("\"nextSteps\"", "\"nextStep\"", 1);
    let msg = parse_str(&typo, Format::Json).unwrap_err().to_string();
    assert!(msg.contains("nextStep"), "{msg}");
    let bad_type = text.replacen("\"type\": \"analysis\"", "\"type\": \"analyser\"", 1);
    let msg = parse_str(&bad_type, Format::Json).unwrap_err().to_string();
    assert!(msg.contains("analyser"), "{msg}");
}

#[test]
fn duplicate_step_ids_are_an_error_in_both_formats() {
    let json = r#"{"id":"d","name":"d","initialStep":"a","metadata":{"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"},
      "steps":{"a":{"id":"a","type":"analysis","operation":"features"},"a":{"id":"a","type":"analysis","operation":"loudness"}}}"#;
    let msg = parse_str(json, Format::Json).unwrap_err().to_string();
    assert!(msg.contains("duplicate step id `a`"), "{msg}");
    let ron = r#"(id:"d",name:"d",initialStep:"a",metadata:(createdAt:"2026-01-01T00:00:00Z",updatedAt:"2026-01-01T00:00:00Z"),
      steps:{"a":(id:"a",type:analysis,operation:"features"),"a":(id:"a",type:analysis,operation:"loudness")})"#;
    let msg = parse_str(ron, Format::Ron).unwrap_err().to_string();
    assert!(msg.contains("duplicate step id `a`"), "{msg}");
}

#[test]
fn empty_binary_huge_and_deep_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();

    let empty = write(dir.path(), "empty.ron", "");
    assert!(
        workflow::load(&empty)
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    let blank = write(dir.path(), "blank.json", "  \n\t ");
    assert!(
        workflow::load(&blank)
            .unwrap_err()
            .to_string()
            .contains("empty")
    );

    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let binary = write(dir.path(), "garbage.ron", &garbage);
    let msg = workflow::load(&binary).unwrap_err().to_string();
    assert!(
        msg.contains("garbage.ron") && msg.contains("UTF-8"),
        "{msg}"
    );

    // Larger than the limit: refused from its size, before reading (a sparse file).
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(100 * 1024 * 1024)
        .unwrap();
    let err = workflow::load(&huge).unwrap_err();
    assert!(
        matches!(
            err,
            FileError::TooLarge {
                limit: MAX_FILE_BYTES,
                ..
            }
        ),
        "{err}"
    );

    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_str(&deep_json, Format::Json).is_err());
    let deep_ron = format!("{}{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(parse_str(&deep_ron, Format::Ron).is_err());
    let deep_params = format!(
        r#"{{"id":"d","name":"d","initialStep":"a","metadata":{{"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"}},"steps":{{"a":{{"id":"a","type":"analysis","operation":"features","parameters":{{"x":{}{}}}}}}}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    assert!(parse_str(&deep_params, Format::Json).is_err());

    let missing = dir.path().join("nope.ron");
    let msg = workflow::load(&missing).unwrap_err().to_string();
    assert!(msg.contains("nope.ron"), "{msg}");
}

#[test]
fn newer_schema_versions_are_refused_with_a_reason() {
    let text = std::fs::read_to_string(root().join("workflows/audio-enhancement.ron")).unwrap();
    let newer = text.replacen("schemaVersion: 1", "schemaVersion: 7", 1);
    assert_ne!(newer, text);
    let err = parse_str(&newer, Format::Ron).unwrap_err();
    assert!(
        matches!(err, FileError::NewerSchema { found: 7, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer grym-synth"));

    // Even when the newer file has fields this build does not know.
    let json =
        std::fs::read_to_string(root().join("tests/fixtures/audio-enhancement.json")).unwrap();
    let newer = json.replacen(
        '{',
        "{\n  \"schemaVersion\": 2, \"futureField\": [1, 2],",
        1,
    );
    let err = parse_str(&newer, Format::Json).unwrap_err();
    assert!(
        matches!(err, FileError::NewerSchema { found: 2, .. }),
        "{err}"
    );
}

#[test]
fn every_template_loads_and_is_valid() {
    for t in workflow::templates::TEMPLATES {
        let wf = t.load().unwrap_or_else(|e| panic!("{}: {e}", t.name));
        let report = workflow::validate(&wf, None);
        assert!(report.is_valid(), "{}: {:?}", t.name, report.problems);
        let on_disk = root().join("workflows").join(format!("{}.ron", t.name));
        assert_eq!(workflow::load(&on_disk).unwrap(), wf);
    }
}
