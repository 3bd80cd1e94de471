//! What a workflow lets an optimiser tune, and what it should improve: the optional
//! `optimization` section of a workflow file.
//!
//! Only run parameters are tuned. A step reaches a tuned value through an input that reads
//! the run parameter or a parameter string `"parameter.<name>"`, so one tuned value can feed
//! several steps and every trial is an ordinary execution with its own run parameters.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::Workflow;
use super::validate::Problem;

/// The `optimization` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Optimization {
    /// The figure a trial scores: `"<step>.result.<path>"`, read from that step's latest
    /// result (in a loop, its last visit).
    pub objective: String,
    #[serde(default)]
    pub direction: Direction,
    /// Run parameters that may be tuned, each with its range or choices.
    pub parameters: IndexMap<String, Tunable>,
    /// Trials to run when the caller names no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u32>,
    /// Stop after this many finished trials in a row that do not improve on the best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<u32>,
}

/// Whether the objective is to be made large or small.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Maximize,
    Minimize,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Maximize => "maximize",
            Direction::Minimize => "minimize",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "maximize" | "max" => Some(Direction::Maximize),
            "minimize" | "min" => Some(Direction::Minimize),
            _ => None,
        }
    }

    /// Whether score `a` is better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Maximize => a > b,
            Direction::Minimize => a < b,
        }
    }
}

/// The values one run parameter may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Tunable {
    /// A real number in `[min, max]`; `log` samples it on a log scale (for values spanning
    /// orders of magnitude; needs `min > 0`).
    Range {
        min: f64,
        max: f64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        log: bool,
    },
    /// A whole number in `[min, max]`.
    Integer { min: i64, max: i64 },
    /// One of these values.
    Choice(Vec<Value>),
}

impl Tunable {
    /// Parses the command-line form: `1..5` (a range), `1..5:log`, `10..50:int` (or two
    /// whole numbers: `10..50`), or choices `a|b|c` (each read as JSON where it parses, else
    /// a string). Anything else is not a tunable (`None`): a fixed value.
    pub fn parse_cli(text: &str) -> Option<Result<Tunable, String>> {
        let (body, suffix) = match text.rsplit_once(':') {
            Some((b, s)) if matches!(s, "log" | "int") => (b, Some(s)),
            _ => (text, None),
        };
        if let Some((lo, hi)) = body.split_once("..") {
            let (Ok(min), Ok(max)) = (lo.trim().parse::<f64>(), hi.trim().parse::<f64>()) else {
                return suffix.map(|_| Err(format!("`{text}`: a range is MIN..MAX")));
            };
            let whole = |s: &str| s.trim().parse::<i64>().ok();
            return Some(match suffix {
                Some("log") => Ok(Tunable::Range {
                    min,
                    max,
                    log: true,
                }),
                Some("int") => match (whole(lo), whole(hi)) {
                    (Some(min), Some(max)) => Ok(Tunable::Integer { min, max }),
                    _ => Err(format!("`{text}`: an integer range needs whole numbers")),
                },
                _ => match (whole(lo), whole(hi)) {
                    (Some(min), Some(max)) => Ok(Tunable::Integer { min, max }),
                    _ => Ok(Tunable::Range {
                        min,
                        max,
                        log: false,
                    }),
                },
            });
        }
        if suffix.is_none() && text.contains('|') {
            let values = text
                .split('|')
                .map(|v| serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string())))
                .collect();
            return Some(Ok(Tunable::Choice(values)));
        }
        None
    }

    /// Why the tunable cannot be sampled, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match *self {
            Tunable::Range { min, max, log } => {
                if !(min.is_finite() && max.is_finite()) {
                    Some(format!("the range {min}..{max} must be finite"))
                } else if min >= max {
                    Some(format!(
                        "the range {min}..{max} is empty: min must be below max"
                    ))
                } else if log && min <= 0.0 {
                    Some(format!("a log range needs min > 0, not {min}"))
                } else {
                    None
                }
            }
            Tunable::Integer { min, max } => {
                (min > max).then(|| format!("the integer range {min}..{max} is empty"))
            }
            Tunable::Choice(ref values) => values
                .is_empty()
                .then(|| "a choice needs at least one value".to_string()),
        }
    }
}

/// Problems of a workflow's `optimization` section (none when it has none).
pub fn check(workflow: &Workflow, out: &mut Vec<Problem>) {
    let Some(opt) = &workflow.optimization else {
        return;
    };
    let objective_problem = match opt.objective.split_once('.') {
        None => Some(format!(
            "`{}` names no result: write `<step>.result.<path>`",
            opt.objective
        )),
        Some((step, rest)) if !workflow.steps.contains_key(step) => Some(format!(
            "the objective reads step `{step}`, which the workflow does not have{}",
            if rest.starts_with("result") {
                ""
            } else {
                " (write `<step>.result.<path>`)"
            }
        )),
        Some((_, rest))
            if rest != "result" && !rest.starts_with("result.") && !rest.starts_with("result[") =>
        {
            Some(format!(
                "`{}` does not name a result: write `<step>.result.<path>`",
                opt.objective
            ))
        }
        _ => None,
    };
    if let Some(message) = objective_problem {
        out.push(Problem::error(
            "invalid-objective",
            None,
            "optimization.objective",
            message,
        ));
    }
    if opt.parameters.is_empty() {
        out.push(
            Problem::error(
                "nothing-to-tune",
                None,
                "optimization.parameters",
                "the optimisation tunes no parameters",
            )
            .with_hint("name at least one run parameter with its range or choices"),
        );
    }
    for (name, tunable) in &opt.parameters {
        let field = format!("optimization.parameters.{name}");
        if !workflow.parameters.contains_key(name) {
            out.push(
                Problem::error(
                    "undeclared-parameter",
                    None,
                    field.clone(),
                    format!("`{name}` is tuned but the workflow does not declare it"),
                )
                .with_hint(format!(
                    "add `{name}` to the workflow's parameters and read it in a step (an input from the parameter, or \"parameter.{name}\")"
                )),
            );
        }
        if let Some(message) = tunable.problem() {
            out.push(Problem::error("invalid-range", None, field, message));
        }
    }
    if opt.budget == Some(0) {
        out.push(Problem::error(
            "invalid-budget",
            None,
            "optimization.budget",
            "the budget must be at least one trial",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn command_line_forms_parse() {
        let parse = |s| Tunable::parse_cli(s).map(|r| r.unwrap());
        assert_eq!(
            parse("1.5..5"),
            Some(Tunable::Range {
                min: 1.5,
                max: 5.0,
                log: false
            })
        );
        assert_eq!(
            parse("0.001..1:log"),
            Some(Tunable::Range {
                min: 0.001,
                max: 1.0,
                log: true
            })
        );
        assert_eq!(parse("10..50"), Some(Tunable::Integer { min: 10, max: 50 }));
        assert_eq!(
            parse("ddim|dpmSolver|3"),
            Some(Tunable::Choice(vec![
                json!("ddim"),
                json!("dpmSolver"),
                json!(3)
            ]))
        );
        assert_eq!(parse("a calm sea"), None);
        assert_eq!(parse("12"), None);
        assert!(Tunable::parse_cli("1.5..x:int").unwrap().is_err());
        assert!(Tunable::parse_cli("1.5..2.5:int").unwrap().is_err());
    }

    #[test]
    fn bad_ranges_say_why() {
        let range = |min, max, log| Tunable::Range { min, max, log };
        assert!(range(1.0, 5.0, false).problem().is_none());
        assert!(range(5.0, 1.0, false).problem().unwrap().contains("empty"));
        assert!(range(0.0, 1.0, true).problem().unwrap().contains("min > 0"));
        assert!(range(f64::NAN, 1.0, false).problem().is_some());
        assert!(Tunable::Integer { min: 3, max: 2 }.problem().is_some());
        assert!(Tunable::Choice(vec![]).problem().is_some());
    }

    #[test]
    fn directions_compare() {
        assert!(Direction::Maximize.better(2.0, 1.0));
        assert!(Direction::Minimize.better(1.0, 2.0));
        assert_eq!(Direction::parse("min"), Some(Direction::Minimize));
    }
}
