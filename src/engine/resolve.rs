//! Reading values out of results: result paths, step-input keys, `context.` parameter
//! strings and step conditions.

use serde_json::Value;

use crate::workflow::{Condition, ConditionOperator};

/// Follows a dotted path (`improvementAreas`, `onsets.times[2]`, `mfcc.0`) into a value.
/// An empty path is the value itself.
pub fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = value;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let (name, indices) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !name.is_empty() {
            current = match current {
                Value::Object(map) => map.get(name)?,
                Value::Array(items) => items.get(name.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        let mut rest = indices;
        while let Some(stripped) = rest.strip_prefix('[') {
            let close = stripped.find(']')?;
            let index: usize = stripped[..close].parse().ok()?;
            current = current.as_array()?.get(index)?;
            rest = &stripped[close + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(current)
}

/// A reference to a step's result: `"<step>.result"` plus an optional deeper path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRef<'a> {
    pub step: &'a str,
    /// The path below `result` (empty for the whole result).
    pub path: &'a str,
}

/// Parses `"<step>.result[.<path>]"`.
pub fn parse_result_ref(key: &str) -> Result<ResultRef<'_>, String> {
    let (step, rest) = key.split_once('.').unwrap_or((key, ""));
    if step.is_empty() {
        return Err(format!("`{key}` names no step"));
    }
    let path = match rest.strip_prefix("result") {
        Some("") => "",
        Some(p) if p.starts_with('.') || p.starts_with('[') => p.trim_start_matches('.'),
        _ => {
            return Err(format!(
                "`{key}` does not name a result: write `{step}.result` or `{step}.result.<key>`"
            ));
        }
    };
    Ok(ResultRef { step, path })
}

/// Evaluates a step condition against the step's own result. `leftOperand` is a path from
/// `result`. A path that does not exist is an error, not `false`: a typo must not silently
/// pick a branch.
pub fn evaluate_condition(condition: &Condition, result: &Value) -> Result<bool, String> {
    let path = condition
        .left_operand
        .strip_prefix("result")
        .filter(|p| p.is_empty() || p.starts_with('.') || p.starts_with('['))
        .ok_or_else(|| {
            format!(
                "leftOperand `{}` is not a path into the step's result",
                condition.left_operand
            )
        })?;
    let left = lookup(result, path.trim_start_matches('.')).ok_or_else(|| {
        format!(
            "leftOperand `{}` does not exist in the step's result (it has: {})",
            condition.left_operand,
            keys_of(result)
        )
    })?;
    let right = &condition.right_operand;
    match condition.operator {
        ConditionOperator::Equals => Ok(loosely_equal(left, right)),
        ConditionOperator::Contains => match left {
            Value::String(s) => Ok(right.as_str().is_some_and(|r| s.contains(r))
                || (!right.is_string() && s.contains(&right.to_string()))),
            Value::Array(items) => Ok(items.iter().any(|i| loosely_equal(i, right))),
            Value::Object(map) => Ok(right.as_str().is_some_and(|k| map.contains_key(k))),
            other => Err(format!(
                "`contains` needs a string, list or object on the left; `{}` is {other}",
                condition.left_operand
            )),
        },
        ConditionOperator::GreaterThan | ConditionOperator::LessThan => {
            let (Some(l), Some(r)) = (as_number(left), as_number(right)) else {
                return Err(format!(
                    "`{}` compares numbers, but `{}` is {left} and rightOperand is {right}",
                    condition.operator.as_str(),
                    condition.left_operand
                ));
            };
            Ok(if condition.operator == ConditionOperator::GreaterThan {
                l > r
            } else {
                l < r
            })
        }
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Equality that treats `1` and `1.0` as the same number.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn keys_of(value: &Value) -> String {
    match value {
        Value::Object(map) if !map.is_empty() => map.keys().cloned().collect::<Vec<_>>().join(", "),
        Value::Object(_) => "no keys".to_string(),
        other => format!("no keys; it is {}", super::operation::json_kind(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_follows_keys_and_indices() {
        let v = json!({"a": {"b": [10, {"c": "x"}]}, "m": [[1, 2], [3, 4]]});
        assert_eq!(lookup(&v, ""), Some(&v));
        assert_eq!(lookup(&v, "a.b[0]"), Some(&json!(10)));
        assert_eq!(lookup(&v, "a.b.1.c"), Some(&json!("x")));
        assert_eq!(lookup(&v, "m[1][0]"), Some(&json!(3)));
        assert_eq!(lookup(&v, "a.missing"), None);
        assert_eq!(lookup(&v, "a.b[9]"), None);
        assert_eq!(lookup(&v, "a.b[x]"), None);
    }

    #[test]
    fn result_refs_parse() {
        assert_eq!(
            parse_result_ref("s.result.x.y"),
            Ok(ResultRef {
                step: "s",
                path: "x.y"
            })
        );
        assert_eq!(
            parse_result_ref("s.result"),
            Ok(ResultRef {
                step: "s",
                path: ""
            })
        );
        assert!(parse_result_ref("s.output").is_err());
        assert!(parse_result_ref("s.resultx").is_err());
    }

    fn cond(op: ConditionOperator, left: &str, right: Value) -> Condition {
        Condition {
            operator: op,
            left_operand: left.into(),
            right_operand: right,
        }
    }

    #[test]
    fn every_operator_takes_both_branches() {
        use ConditionOperator::*;
        let r = json!({"score": 0.9, "label": "speech", "tags": ["a", "b"], "n": 3});
        let cases = [
            (cond(Equals, "result.label", json!("speech")), true),
            (cond(Equals, "result.label", json!("music")), false),
            (cond(Equals, "result.n", json!(3.0)), true),
            (cond(Contains, "result.label", json!("pee")), true),
            (cond(Contains, "result.label", json!("zz")), false),
            (cond(Contains, "result.tags", json!("b")), true),
            (cond(Contains, "result.tags", json!("c")), false),
            (cond(GreaterThan, "result.score", json!(0.8)), true),
            (cond(GreaterThan, "result.score", json!(0.95)), false),
            (cond(LessThan, "result.score", json!(0.95)), true),
            (cond(LessThan, "result.score", json!(0.8)), false),
        ];
        for (c, expected) in cases {
            assert_eq!(evaluate_condition(&c, &r), Ok(expected), "{c:?}");
        }
    }

    #[test]
    fn bad_conditions_are_errors_that_say_why() {
        use ConditionOperator::*;
        let r = json!({"score": 0.9, "label": "x"});
        let missing = evaluate_condition(&cond(GreaterThan, "result.scroe", json!(1)), &r);
        assert!(missing.is_err_and(|e| e.contains("scroe") && e.contains("score")));
        let not_number = evaluate_condition(&cond(GreaterThan, "result.label", json!(1)), &r);
        assert!(not_number.is_err_and(|e| e.contains("compares numbers")));
    }
}
