//! Operations and helpers shared by the engine tests. The operations are defined here, not
//! taken from the catalog, so that each test controls exactly what a step does.
#![allow(dead_code)]

pub mod editor;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use grym_synth::engine::{
    Engine, EngineConfig, InputKind, InputSpec, OpContext, OpError, Operation, OperationRegistry,
    OperationSpec, ParamKind, ParamSpec,
};
use grym_synth::workflow::{StepType, Workflow};
use serde_json::{Value, json};

pub fn spec(
    step_type: StepType,
    name: &str,
    inputs: &[&str],
    params: &[(&str, ParamKind, Value)],
) -> OperationSpec {
    OperationSpec {
        step_type,
        name: name.into(),
        description: format!("test operation {name}"),
        inputs: inputs
            .iter()
            .map(|n| InputSpec {
                name: n.to_string(),
                kind: InputKind::Json,
                description: String::new(),
                required: true,
                variadic: false,
            })
            .collect(),
        parameters: params
            .iter()
            .map(|(n, kind, default)| ParamSpec {
                name: n.to_string(),
                kind: kind.clone(),
                description: String::new(),
                default: (!default.is_null()).then(|| default.clone()),
                required: false,
            })
            .collect(),
        outputs: Vec::new(),
        seed_parameter: None,
        deterministic: true,
    }
}

fn number(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.get("value").and_then(Value::as_f64))
        .unwrap_or(0.0)
}

/// `transformation/add`: `{value: x + amount}`, echoing `focusAreas`; counts its runs.
pub struct Add {
    pub spec: OperationSpec,
    pub runs: Arc<AtomicUsize>,
}

impl Add {
    pub fn new() -> Self {
        Add {
            spec: spec(
                StepType::Transformation,
                "add",
                &["x"],
                &[
                    (
                        "amount",
                        ParamKind::Number {
                            min: None,
                            max: None,
                        },
                        json!(1),
                    ),
                    ("focusAreas", ParamKind::StringList, Value::Null),
                ],
            ),
            runs: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Operation for Add {
    fn spec(&self) -> &OperationSpec {
        &self.spec
    }
    fn run(&self, ctx: &OpContext<'_>) -> Result<Value, OpError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let x = number(ctx.input("x")?);
        let amount = ctx.f64_param("amount")?;
        let mut result = json!({ "value": x + amount });
        if let Some(focus) = ctx.param("focusAreas") {
            result["focusAreas"] = focus.clone();
        }
        Ok(result)
    }
}

/// `analysis/score`: `{value, qualityScore: value / 100, improvementAreas}`.
pub struct Score(pub OperationSpec);

impl Score {
    pub fn new() -> Self {
        Score(spec(StepType::Analysis, "score", &["x"], &[]))
    }
}

impl Operation for Score {
    fn spec(&self) -> &OperationSpec {
        &self.0
    }
    fn run(&self, ctx: &OpContext<'_>) -> Result<Value, OpError> {
        let v = number(ctx.input("x")?);
        Ok(
            json!({ "value": v, "qualityScore": v / 100.0, "improvementAreas": ["loudness", "noise"] }),
        )
    }
}

/// `analysis/counter`: `{count}`, one more on every run.
pub struct Counter(pub OperationSpec, pub Arc<AtomicUsize>);

impl Counter {
    pub fn new() -> Self {
        Counter(
            spec(StepType::Analysis, "counter", &[], &[]),
            Arc::new(AtomicUsize::new(0)),
        )
    }
}

impl Operation for Counter {
    fn spec(&self) -> &OperationSpec {
        &self.0
    }
    fn run(&self, _ctx: &OpContext<'_>) -> Result<Value, OpError> {
        Ok(json!({ "count": self.1.fetch_add(1, Ordering::SeqCst) + 1 }))
    }
}

/// `analysis/sleep`: works for `ms` milliseconds in 1 ms slices, checking its cancellation
/// token between slices like a DSP loop; `ignoreCancel` makes it a hung operation.
pub struct Sleep {
    pub spec: OperationSpec,
    pub running: Arc<AtomicUsize>,
    pub peak: Arc<AtomicUsize>,
    pub log: Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Sleep {
    pub fn new() -> Self {
        Sleep {
            spec: spec(
                StepType::Analysis,
                "sleep",
                &[],
                &[
                    (
                        "ms",
                        ParamKind::Number {
                            min: Some(0.0),
                            max: None,
                        },
                        json!(1),
                    ),
                    ("ignoreCancel", ParamKind::Boolean, json!(false)),
                    ("tag", ParamKind::String, json!("")),
                ],
            ),
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
            log: Arc::default(),
        }
    }
}

impl Operation for Sleep {
    fn spec(&self) -> &OperationSpec {
        &self.spec
    }
    fn run(&self, ctx: &OpContext<'_>) -> Result<Value, OpError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.log
            .lock()
            .push(ctx.str_param("tag").unwrap_or("").to_string());
        let ms = ctx.f64_param("ms")?;
        let ignore = ctx.bool_param("ignoreCancel")?;
        let end = std::time::Instant::now() + Duration::from_secs_f64(ms / 1e3);
        let mut outcome = Ok(json!({ "slept": ms }));
        while std::time::Instant::now() < end {
            if !ignore && ctx.cancel.is_cancelled() {
                outcome = Err(OpError::Cancelled);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        outcome
    }
}

/// `analysis/flaky`: fails transiently `failures` times, then succeeds.
pub struct Flaky(pub OperationSpec, pub Arc<AtomicUsize>);

impl Flaky {
    pub fn new() -> Self {
        Flaky(
            spec(
                StepType::Analysis,
                "flaky",
                &[],
                &[(
                    "failures",
                    ParamKind::Integer {
                        min: Some(0),
                        max: None,
                    },
                    json!(1),
                )],
            ),
            Arc::new(AtomicUsize::new(0)),
        )
    }
}

impl Operation for Flaky {
    fn spec(&self) -> &OperationSpec {
        &self.0
    }
    fn run(&self, ctx: &OpContext<'_>) -> Result<Value, OpError> {
        let tries = self.1.fetch_add(1, Ordering::SeqCst) + 1;
        if tries as i64 <= ctx.i64_param("failures")? {
            Err(OpError::Transient(format!("device busy (try {tries})")))
        } else {
            Ok(json!({ "tries": tries }))
        }
    }
}

/// `analysis/explode`: panics.
pub struct Explode(pub OperationSpec);

impl Operation for Explode {
    fn spec(&self) -> &OperationSpec {
        &self.0
    }
    fn run(&self, _ctx: &OpContext<'_>) -> Result<Value, OpError> {
        panic!("the operation fell over")
    }
}

/// `generation/draw`: `{seed, value}`, a number drawn from its `seed` (its randomness is
/// seeded, as the engine sees it).
pub struct Draw(pub OperationSpec);

impl Draw {
    pub fn new() -> Self {
        let mut spec = spec(
            StepType::Generation,
            "draw",
            &[],
            &[(
                "seed",
                ParamKind::Integer {
                    min: Some(0),
                    max: None,
                },
                Value::Null,
            )],
        );
        spec.seed_parameter = Some("seed".into());
        Draw(spec)
    }
}

impl Operation for Draw {
    fn spec(&self) -> &OperationSpec {
        &self.0
    }
    fn run(&self, ctx: &OpContext<'_>) -> Result<Value, OpError> {
        let seed = ctx.i64_param("seed")?;
        Ok(json!({ "seed": seed, "value": (seed * 7919) % 101 }))
    }
}

/// `analysis/peak`: a smooth objective with one maximum, `score = 5·[mode = "b"] − (x − 3)² −
/// (y + 1)²` (best 5 at x = 3, y = −1, mode b), for the optimiser's tests.
pub struct Peak(pub OperationSpec);

impl Peak {
    pub fn new() -> Self {
        let number = || ParamKind::Number {
            min: None,
            max: None,
        };
        Peak(spec(
            StepType::Analysis,
            "peak",
            &[],
            &[
                ("x", number(), json!(0)),
                ("y", number(), json!(0)),
                ("mode", ParamKind::String, json!("a")),
            ],
        ))
    }
}

impl Operation for Peak {
    fn spec(&self) -> &OperationSpec {
        &self.0
    }
    fn run(&self, ctx: &OpContext<'_>) -> Result<Value, OpError> {
        let (x, y) = (ctx.f64_param("x")?, ctx.f64_param("y")?);
        let bonus = if ctx.str_param("mode")? == "b" {
            5.0
        } else {
            0.0
        };
        Ok(json!({ "score": bonus - (x - 3.0).powi(2) - (y + 1.0).powi(2) }))
    }
}

/// Handles to the counters of the registered test operations.
pub struct TestOps {
    pub add_runs: Arc<AtomicUsize>,
    pub counter: Arc<AtomicUsize>,
    pub sleep_running: Arc<AtomicUsize>,
    pub sleep_peak: Arc<AtomicUsize>,
    pub sleep_log: Arc<parking_lot::Mutex<Vec<String>>>,
    pub flaky_tries: Arc<AtomicUsize>,
}

pub fn registry() -> (OperationRegistry, TestOps) {
    let add = Add::new();
    let counter = Counter::new();
    let sleep = Sleep::new();
    let flaky = Flaky::new();
    let ops = TestOps {
        add_runs: Arc::clone(&add.runs),
        counter: Arc::clone(&counter.1),
        sleep_running: Arc::clone(&sleep.running),
        sleep_peak: Arc::clone(&sleep.peak),
        sleep_log: Arc::clone(&sleep.log),
        flaky_tries: Arc::clone(&flaky.1),
    };
    let registry = OperationRegistry::new()
        .with(add)
        .with(Score::new())
        .with(Peak::new())
        .with(counter)
        .with(sleep)
        .with(flaky)
        .with(Draw::new())
        .with(Explode(spec(StepType::Analysis, "explode", &[], &[])));
    (registry, ops)
}

pub fn engine(dir: &std::path::Path, max_concurrent: usize) -> (Engine, TestOps) {
    let (registry, ops) = registry();
    let mut config = EngineConfig::new(dir);
    config.max_concurrent_tasks = max_concurrent;
    config.retry_backoff = Duration::from_millis(10);
    (Engine::start(config, registry).expect("engine starts"), ops)
}

/// A workflow from the JSON of its steps (metadata filled in).
pub fn workflow(id: &str, initial: &str, parameters: Value, steps: Value) -> Workflow {
    let mut steps = steps;
    if let Value::Object(map) = &mut steps {
        for (key, step) in map.iter_mut() {
            step["id"] = json!(key);
            if step.get("nextSteps").is_none() {
                step["nextSteps"] = json!({});
            }
        }
    }
    serde_json::from_value(json!({
        "id": id,
        "name": id,
        "initialStep": initial,
        "steps": steps,
        "parameters": parameters,
        "metadata": {
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
            "createdBy": "tests",
            "version": "1"
        }
    }))
    .expect("test workflow parses")
}

pub fn params(v: Value) -> grym_synth::workflow::ParamMap {
    match v {
        Value::Object(m) => m.into_iter().collect(),
        _ => Default::default(),
    }
}

/// `analysis/probe`: the size of an audio input file (declared `InputKind::Audio`).
pub struct Probe(pub OperationSpec);

impl Probe {
    pub fn new() -> Self {
        let mut spec = spec(StepType::Analysis, "probe", &["audio"], &[]);
        spec.inputs[0].kind = InputKind::Audio;
        Probe(spec)
    }
}

impl Operation for Probe {
    fn spec(&self) -> &OperationSpec {
        &self.0
    }
    fn run(&self, ctx: &OpContext<'_>) -> Result<Value, OpError> {
        let (path, _) = ctx.audio_input("audio")?;
        let len = std::fs::metadata(&path)
            .map_err(|e| OpError::invalid(format!("{}: {e}", path.display())))?
            .len();
        Ok(json!({ "bytes": len }))
    }
}
