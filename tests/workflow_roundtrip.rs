//! Property test: any workflow survives JSON → RON → JSON and RON → JSON → RON unchanged.

use chrono::{DateTime, TimeZone, Utc};
use grym_synth::workflow::file::{parse_str, to_string};
use grym_synth::workflow::{
    Condition, ConditionOperator, ConditionalNext, Direction, Format, InputSource, Layout,
    Metadata, NextSteps, NodePosition, Optimization, ParamMap, SCHEMA_VERSION, StepInput, StepType,
    Tunable, Workflow, WorkflowStep,
};
use indexmap::IndexMap;
use proptest::prelude::*;
use serde_json::Value;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn params() -> impl Strategy<Value = ParamMap> {
    prop::collection::vec(("[a-zA-Z][a-zA-Z0-9_]{0,8}", json_value()), 0..4)
        .prop_map(|kv| kv.into_iter().collect())
}

fn step_id() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

fn timestamp() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_000_000_000, 0u32..1000)
        .prop_map(|(s, ms)| Utc.timestamp_opt(s, ms * 1_000_000).unwrap())
}

fn step_type() -> impl Strategy<Value = StepType> {
    prop::sample::select(StepType::ALL.to_vec())
}

fn step(id: String) -> impl Strategy<Value = WorkflowStep> {
    let inputs = prop::collection::vec(
        (
            prop::sample::select(vec![
                InputSource::Parameter,
                InputSource::PreviousStep,
                InputSource::Context,
            ]),
            ".{0,12}",
            proptest::option::of("[a-z]{1,6}"),
        )
            .prop_map(|(source, key, name)| StepInput { source, key, name }),
        0..3,
    );
    let condition = proptest::option::of(
        (
            prop::sample::select(ConditionOperator::ALL.to_vec()),
            ".{0,10}",
            json_value(),
        )
            .prop_map(|(operator, left_operand, right_operand)| Condition {
                operator,
                left_operand,
                right_operand,
            }),
    );
    let next = (
        proptest::option::of(step_id()),
        proptest::option::of(prop::collection::vec(
            (".{0,5}", step_id())
                .prop_map(|(condition, step_id)| ConditionalNext { condition, step_id }),
            0..3,
        )),
    )
        .prop_map(|(default, conditional)| NextSteps {
            default,
            conditional,
        });
    let extras = (
        proptest::option::of(any::<i32>()),
        proptest::option::of((0.001f64..1e6).prop_filter("finite", |f| f.is_finite())),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<bool>()),
    );
    (
        step_type(),
        ".{0,10}",
        inputs,
        params(),
        condition,
        next,
        extras,
    )
        .prop_map(
            move |(step_type, operation, inputs, parameters, condition, next_steps, extras)| {
                WorkflowStep {
                    id: id.clone(),
                    step_type,
                    operation,
                    inputs,
                    parameters,
                    condition,
                    next_steps,
                    priority: extras.0,
                    timeout_seconds: extras.1,
                    retries: extras.2,
                    max_iterations: extras.3,
                    cache: extras.4,
                }
            },
        )
}

fn workflow() -> impl Strategy<Value = Workflow> {
    let steps = prop::collection::btree_set(step_id(), 1..5).prop_flat_map(|ids| {
        ids.into_iter()
            .map(|id| step(id.clone()).prop_map(move |s| (id.clone(), s)))
            .collect::<Vec<_>>()
            .prop_map(|pairs| pairs.into_iter().collect::<IndexMap<_, _>>())
    });
    let layout = proptest::option::of(
        prop::collection::vec((step_id(), -1e4f32..1e4, -1e4f32..1e4), 0..3).prop_map(|nodes| {
            Layout {
                nodes: nodes
                    .into_iter()
                    .map(|(id, x, y)| (id, NodePosition { x, y }))
                    .collect(),
            }
        }),
    );
    let tunable = prop_oneof![
        (-1e6f64..1e6, 0.0f64..1e6, any::<bool>()).prop_map(|(min, span, log)| Tunable::Range {
            min,
            max: min + span,
            log
        }),
        (-1000i64..1000, 0i64..1000).prop_map(|(min, span)| Tunable::Integer {
            min,
            max: min + span
        }),
        prop::collection::vec(json_value(), 0..4).prop_map(Tunable::Choice),
    ];
    let optimization = proptest::option::of(
        (
            ".{0,20}",
            any::<bool>(),
            prop::collection::vec(("[a-zA-Z]{1,8}", tunable), 0..3),
            proptest::option::of(0u32..100),
            proptest::option::of(0u32..10),
        )
            .prop_map(
                |(objective, minimize, parameters, budget, patience)| Optimization {
                    objective,
                    direction: if minimize {
                        Direction::Minimize
                    } else {
                        Direction::Maximize
                    },
                    parameters: parameters.into_iter().collect(),
                    budget,
                    patience,
                },
            ),
    );
    (
        ".{0,12}",
        ".{0,12}",
        ".{0,30}",
        steps,
        params(),
        (timestamp(), timestamp(), ".{0,8}", ".{0,8}"),
        layout,
        optimization,
    )
        .prop_map(
            |(id, name, description, steps, parameters, meta, layout, optimization)| Workflow {
                schema_version: SCHEMA_VERSION,
                initial_step: steps.keys().next().cloned().unwrap_or_default(),
                id,
                name,
                description,
                steps,
                parameters,
                metadata: Metadata {
                    created_at: meta.0,
                    updated_at: meta.1,
                    created_by: meta.2,
                    version: meta.3,
                },
                optimization,
                layout,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_ron_json(wf in workflow()) {
        let json = to_string(&wf, Format::Json).unwrap();
        let from_json = parse_str(&json, Format::Json).unwrap();
        prop_assert_eq!(&from_json, &wf);
        let ron = to_string(&from_json, Format::Ron).unwrap();
        let from_ron = parse_str(&ron, Format::Ron).unwrap();
        prop_assert_eq!(&from_ron, &wf);
        let json_again = to_string(&from_ron, Format::Json).unwrap();
        prop_assert_eq!(json_again, json);
    }

    #[test]
    fn ron_json_ron(wf in workflow()) {
        let ron = to_string(&wf, Format::Ron).unwrap();
        let from_ron = parse_str(&ron, Format::Ron).unwrap();
        prop_assert_eq!(&from_ron, &wf);
        let json = to_string(&from_ron, Format::Json).unwrap();
        let back = parse_str(&json, Format::Json).unwrap();
        prop_assert_eq!(&back, &wf);
        prop_assert_eq!(to_string(&back, Format::Ron).unwrap(), ron);
    }

    /// Validation never panics, whatever the workflow says.
    #[test]
    fn validation_never_panics(wf in workflow()) {
        let _ = grym_synth::workflow::validate(&wf, None);
    }
}
