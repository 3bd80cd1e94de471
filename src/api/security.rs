//! Who may call the API and which files a request may name.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::engine::{Engine, ParamKind};
use crate::workflow::validate::is_runtime_reference;
use crate::workflow::{ParamMap, Workflow};

/// Whether `presented` is the token, compared in constant time.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// Refuses to serve beyond this machine without a token.
pub fn check_bind(bind: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if !bind.ip().is_loopback() && token.is_none_or(str::is_empty) {
        return Err(format!(
            "refusing to listen on {bind} without a token: anyone who can reach it could run workflows; pass --token (or bind to 127.0.0.1)"
        ));
    }
    Ok(())
}

/// The folders request paths must stay inside.
#[derive(Debug, Clone)]
pub struct Roots {
    roots: Vec<PathBuf>,
}

impl Roots {
    /// Canonical forms of `roots`; folders that do not exist are skipped with a warning.
    pub fn new(roots: &[PathBuf]) -> Self {
        let roots = roots
            .iter()
            .filter_map(|r| match r.canonicalize() {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!("workspace root {} is unusable: {e}", r.display());
                    None
                }
            })
            .collect();
        Roots { roots }
    }

    pub fn list(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The canonical path `requested` names, if it lies inside a root. Relative paths are
    /// taken from the first root; `..` is refused outright, and symbolic links are resolved
    /// before the check, so neither can lead outside.
    pub fn confine(&self, requested: &str) -> Result<PathBuf, String> {
        let path = Path::new(requested);
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!("`{requested}`: paths may not contain `..`"));
        }
        let Some(first) = self.roots.first() else {
            return Err("no workspace root is configured, so no file may be named".into());
        };
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            first.join(path)
        };
        let canonical = joined
            .canonicalize()
            .map_err(|e| format!("`{requested}`: {e}"))?;
        if self.roots.iter().any(|r| canonical.starts_with(r)) {
            Ok(canonical)
        } else {
            Err(format!(
                "`{requested}` is outside the workspace roots ({})",
                self.roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
}

/// Checks the paths a workflow names in `path` parameters against the workspace roots
/// (`context.` and `parameter.` references are resolved at run time and are not paths; the
/// run parameters they read are confined by [`confine_audio_parameters`]).
pub fn confine_workflow_paths(
    engine: &Engine,
    roots: &Roots,
    workflow: &Workflow,
) -> Result<(), String> {
    for step in workflow.steps.values() {
        let Some(op) = engine.registry().get(step.step_type, &step.operation) else {
            continue;
        };
        for (name, value) in &step.parameters {
            let is_path = op
                .spec()
                .param(name)
                .is_some_and(|p| matches!(p.kind, ParamKind::Path { .. }));
            if let (true, Some(path)) = (is_path, value.as_str())
                && !is_runtime_reference(path)
            {
                roots
                    .confine(path)
                    .map_err(|e| format!("steps.{}.parameters.{name}: {e}", step.id))?;
            }
        }
    }
    Ok(())
}

/// Run parameters (given, or the workflow's defaults) that feed audio inputs or path
/// parameters (`"parameter.<name>"`) must name files inside the workspace roots; they are
/// replaced in `parameters` by their canonical paths.
pub fn confine_audio_parameters(
    engine: &Engine,
    roots: &Roots,
    workflow: &Workflow,
    parameters: &mut ParamMap,
) -> Result<(), String> {
    for name in engine.registry().file_parameters(workflow) {
        let value = parameters
            .get(&name)
            .or_else(|| workflow.parameters.get(&name));
        if let Some(Value::String(path)) = value {
            let confined = roots
                .confine(path)
                .map_err(|e| format!("parameter `{name}`: {e}"))?;
            parameters.insert(name, Value::String(confined.to_string_lossy().into_owned()));
        }
    }
    Ok(())
}

/// Ids in URLs: letters, digits, `-`, `_`, `.`, at most 128 characters, not `.`/`..`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("secret", "secret"));
        assert!(!token_matches("secret", "secreT"));
        assert!(!token_matches("secret", "secret2"));
        assert!(!token_matches("secret", ""));
    }

    #[test]
    fn non_loopback_binds_need_a_token() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(check_bind(public, None).is_err());
        assert!(check_bind(public, Some("")).is_err());
        assert!(check_bind(public, Some("t")).is_ok());
        assert!(check_bind(local, None).is_ok());
    }

    #[test]
    fn paths_stay_inside_the_roots() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("in.wav"), b"x").unwrap();
        std::fs::write(outside.path().join("out.wav"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("out.wav"), root.path().join("link.wav"))
            .unwrap();
        let roots = Roots::new(&[root.path().to_path_buf()]);
        assert!(roots.confine("in.wav").is_ok());
        let inside = root.path().join("in.wav");
        assert!(roots.confine(inside.to_str().unwrap()).is_ok());
        assert!(roots.confine("../in.wav").is_err());
        assert!(roots.confine("/etc/passwd").is_err());
        assert!(
            roots
                .confine(outside.path().join("out.wav").to_str().unwrap())
                .is_err()
        );
        #[cfg(unix)]
        assert!(
            roots.confine("link.wav").is_err(),
            "a symlink may not lead outside"
        );
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("audio-enhancement-workflow"));
        assert!(valid_id("3f2a-uuid_1.2"));
        assert!(!valid_id(".."));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(""));
        assert!(!valid_id(&"x".repeat(200)));
    }
}
