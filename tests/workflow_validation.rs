//! One fixture per validation rule (tests/fixtures/validation, made by
//! tools/make_validation_fixtures.py): each must report its rule at the right step and field.

use std::path::PathBuf;

use grym_synth::workflow::{self, Severity, validate};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/validation")
        .join(format!("{name}.ron"))
}

/// (fixture = rule code, severity, step, field)
const RULES: &[(&str, Severity, Option<&str>, &str)] = &[
    ("missing-id", Severity::Error, None, "id"),
    ("no-steps", Severity::Error, None, "steps"),
    ("missing-initial-step", Severity::Error, None, "initialStep"),
    ("unknown-initial-step", Severity::Error, None, "initialStep"),
    (
        "step-id-mismatch",
        Severity::Error,
        Some("export"),
        "steps.export.id",
    ),
    (
        "invalid-step-id",
        Severity::Error,
        Some("export.wav"),
        "steps.export.wav.id",
    ),
    (
        "missing-operation",
        Severity::Error,
        Some("export"),
        "steps.export.operation",
    ),
    (
        "invalid-timeout",
        Severity::Error,
        Some("analyse"),
        "steps.analyse.timeoutSeconds",
    ),
    (
        "invalid-max-iterations",
        Severity::Error,
        Some("analyse"),
        "steps.analyse.maxIterations",
    ),
    (
        "undeclared-parameter",
        Severity::Error,
        Some("analyse"),
        "steps.analyse.inputs[0].key",
    ),
    (
        "branches-without-condition",
        Severity::Error,
        Some("analyse"),
        "steps.analyse.nextSteps.conditional",
    ),
    (
        "condition-without-branches",
        Severity::Error,
        Some("analyse"),
        "steps.analyse.condition",
    ),
    (
        "conditional-without-condition",
        Severity::Error,
        Some("check"),
        "steps.check.condition",
    ),
    (
        "invalid-branch-condition",
        Severity::Error,
        Some("check"),
        "steps.check.nextSteps.conditional[1].condition",
    ),
    (
        "duplicate-branch",
        Severity::Error,
        Some("check"),
        "steps.check.nextSteps.conditional[1].condition",
    ),
    (
        "invalid-condition-operand",
        Severity::Error,
        Some("check"),
        "steps.check.condition.rightOperand",
    ),
    (
        "unknown-step-reference",
        Severity::Error,
        Some("export"),
        "steps.export.inputs[0].key",
    ),
    (
        "invalid-step-reference",
        Severity::Error,
        Some("export"),
        "steps.export.inputs[0].key",
    ),
    (
        "reference-before-run",
        Severity::Error,
        Some("analyse"),
        "steps.analyse.parameters.previous",
    ),
    (
        "unknown-next-step",
        Severity::Error,
        Some("analyse"),
        "steps.analyse.nextSteps.default",
    ),
    (
        "cycle-without-exit",
        Severity::Error,
        Some("analyse"),
        "steps.analyse.nextSteps",
    ),
    (
        "unreachable-step",
        Severity::Warning,
        Some("orphan"),
        "steps.orphan",
    ),
    (
        "unread-result",
        Severity::Warning,
        Some("gain"),
        "steps.gain",
    ),
    (
        "stale-input",
        Severity::Warning,
        Some("check"),
        "steps.check.inputs[0].key",
    ),
    (
        "loop-without-cap",
        Severity::Info,
        Some("check"),
        "steps.check.maxIterations",
    ),
];

#[test]
fn every_rule_reports_its_step_and_field() {
    let mut failures = Vec::new();
    for &(code, severity, step, field) in RULES {
        let wf = match workflow::load(&fixture(code)) {
            Ok(wf) => wf,
            Err(e) => {
                failures.push(format!("{code}: fixture does not load: {e}"));
                continue;
            }
        };
        let report = validate(&wf, None);
        let found = report.problems.iter().any(|p| {
            p.code == code
                && p.severity == severity
                && p.step.as_deref() == step
                && p.field == field
        });
        if !found {
            failures.push(format!(
                "{code}: expected {severity:?} at {step:?} {field}, got {:#?}",
                report.problems
            ));
        }
        if severity == Severity::Error {
            assert!(
                !report.is_valid(),
                "{code}: an error must make the workflow invalid"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_fixture_is_covered_by_a_rule() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validation");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry
            .unwrap()
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(
            name == "valid" || RULES.iter().any(|r| r.0 == name),
            "fixture {name} has no rule in RULES"
        );
    }
}

#[test]
fn the_base_fixture_is_clean() {
    let wf = workflow::load(&fixture("valid")).unwrap();
    assert_eq!(validate(&wf, None).problems, vec![]);
}

/// Problems that follow from a fixture's one mistake and are rightly reported with it.
const CONSEQUENCES: &[(&str, &[&str])] = &[
    // No steps also means initialStep names nothing.
    ("no-steps", &["unknown-initial-step"]),
    // A misspelled read leaves the step it meant unread.
    ("unknown-step-reference", &["unread-result"]),
    // A misspelled successor leaves the intended one unreachable.
    ("unknown-next-step", &["unreachable-step"]),
    // Looping back makes the last step non-final, and nothing reads it.
    ("cycle-without-exit", &["unread-result"]),
];

#[test]
fn single_problem_fixtures_show_only_their_rule() {
    // Each fixture breaks exactly one thing; make sure the validator does not pile on.
    let mut failures = Vec::new();
    for &(code, ..) in RULES {
        let allowed: &[&str] = CONSEQUENCES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(&[], |(_, a)| a);
        let wf = workflow::load(&fixture(code)).unwrap();
        let report = validate(&wf, None);
        // Notes (info) about defaults that apply are not problems of the fixture.
        let others: Vec<_> = report
            .problems
            .iter()
            .filter(|p| p.code != code && p.severity != Severity::Info)
            .filter(|p| !allowed.contains(&p.code.as_str()))
            .map(|p| format!("{} at {}", p.code, p.field))
            .collect();
        if !others.is_empty() {
            failures.push(format!("{code}: unexpected extra problems {others:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn plan_example_has_exactly_the_stale_input_warning() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio-enhancement.json");
    let wf = workflow::load(&path).unwrap();
    let report = validate(&wf, None);
    assert!(report.is_valid());
    let warnings: Vec<_> = report.warnings().collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = warnings[0];
    assert_eq!(w.code, "stale-input");
    assert_eq!(w.step.as_deref(), Some("evaluate-result"));
    assert_eq!(w.field, "steps.evaluate-result.inputs[1].key");
    assert!(
        w.message.contains("regenerate") && w.message.contains("generate-enhanced"),
        "{}",
        w.message
    );
    assert!(w.message.contains("`finalize` also reads"), "{}", w.message);
    assert!(
        w.hint
            .as_deref()
            .is_some_and(|h| h.contains("generate-enhanced"))
    );
    // The uncapped loop is noted, not warned about: the engine's cap makes it safe.
    let notes: Vec<_> = report
        .with_severity(Severity::Info)
        .map(|p| p.code.as_str())
        .collect();
    assert_eq!(notes, ["loop-without-cap"]);
}

#[test]
fn a_long_chain_validates_without_recursion() {
    use grym_synth::workflow::{InputSource, StepInput, StepType, Workflow, WorkflowStep};
    let n = 20_000;
    let mut first = WorkflowStep::new("s0", StepType::Analysis, "features");
    first.next_steps.default = Some("s1".into());
    let mut wf = Workflow::new("chain", "chain", first);
    for i in 1..n {
        let mut s = WorkflowStep::new(&format!("s{i}"), StepType::Analysis, "features");
        s.inputs.push(StepInput::new(
            InputSource::PreviousStep,
            &format!("s{}.result", i - 1),
        ));
        if i + 1 < n {
            s.next_steps.default = Some(format!("s{}", i + 1));
        }
        wf.steps.insert(s.id.clone(), s);
    }
    let report = validate(&wf, None);
    assert!(report.is_valid(), "{:?}", report.problems.first());
}
