//! The engine's own cost per step, measured with an operation that does nothing: a
//! 10,000-step workflow, and 1,000 executions of 10 steps started at once. Every step is
//! scheduled, recorded in the database, stored in the context and announced as events, as
//! in a real run; only the operation's work is missing.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use grym_synth::engine::{
    Engine, EngineConfig, ExecutionStatus, OpContext, OpError, Operation, OperationRegistry,
    OperationSpec, RunOptions,
};
use grym_synth::workflow::{InputSource, StepInput, StepType, Workflow, WorkflowStep};
use serde_json::{Value, json};

struct Noop(OperationSpec);

impl Operation for Noop {
    fn spec(&self) -> &OperationSpec {
        &self.0
    }
    fn run(&self, _ctx: &OpContext<'_>) -> Result<Value, OpError> {
        Ok(json!({ "ok": true }))
    }
}

fn engine(dir: &std::path::Path) -> Engine {
    let spec = OperationSpec {
        step_type: StepType::Analysis,
        name: "noop".into(),
        description: "does nothing".into(),
        inputs: Vec::new(),
        parameters: Vec::new(),
        outputs: Vec::new(),
        seed_parameter: None,
        deterministic: true,
    };
    let registry = OperationRegistry::new().with(Noop(spec));
    Engine::start(EngineConfig::new(dir), registry).expect("engine starts")
}

/// A chain of `n` no-op steps, each reading the previous one's result, never cached.
fn chain(id: &str, n: usize) -> Workflow {
    let step = |i: usize| {
        let mut s = WorkflowStep::new(&format!("s{i}"), StepType::Analysis, "noop");
        s.cache = Some(false);
        s.max_iterations = Some(1);
        if i > 0 {
            s.inputs.push(StepInput::new(
                InputSource::PreviousStep,
                &format!("s{}.result", i - 1),
            ));
        }
        if i + 1 < n {
            s.next_steps.default = Some(format!("s{}", i + 1));
        }
        s
    };
    let mut wf = Workflow::new(id, id, step(0));
    for i in 1..n {
        let s = step(i);
        wf.steps.insert(s.id.clone(), s);
    }
    wf
}

fn per_step(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine(dir.path());
    engine.register(chain("long", 10_000)).expect("valid");
    engine.register(chain("short", 10)).expect("valid");

    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("10k-step workflow (per run)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let id = engine
                    .start_execution("long", Default::default(), RunOptions::default())
                    .expect("starts");
                let run = engine.wait(&id, None).expect("known");
                total += start.elapsed();
                assert_eq!(run.status, ExecutionStatus::Completed);
            }
            engine.flush().expect("flush");
            total
        })
    });
    group.bench_function("1000 executions x 10 steps (per batch)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let ids: Vec<String> = (0..1000)
                    .map(|_| {
                        engine
                            .start_execution("short", Default::default(), RunOptions::default())
                            .expect("starts")
                    })
                    .collect();
                for id in &ids {
                    engine.wait(id, None).expect("known");
                }
                total += start.elapsed();
            }
            engine.flush().expect("flush");
            total
        })
    });
    group.finish();
}

criterion_group!(benches, per_step);
criterion_main!(benches);
