//! Result caching, as ComfyUI users expect: a step whose operation, input content and
//! parameters are unchanged reuses its stored result instead of running again.
//!
//! The key hashes the operation's qualified name, the program version, the parameters in a
//! canonical form, and the inputs with every audio file replaced by the hash of its bytes
//! (paths do not matter, content does).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::operation::{InputKind, OperationSpec, ResolvedInput};
use super::store::Store;
use crate::workflow::ParamMap;

/// Recently written results kept in memory, so that a hit does not wait for the database
/// writer to commit.
const RECENT_KEPT: usize = 1024;

/// The cache index and the content hashes of input files.
pub struct ResultCache {
    store: Arc<Store>,
    keys: Mutex<HashSet<String>>,
    recent: Mutex<HashMap<String, Value>>,
    file_hashes: Mutex<HashMap<PathBuf, (u64, SystemTime, String)>>,
}

impl ResultCache {
    pub fn new(store: Arc<Store>) -> Self {
        let keys = store.cache_keys().unwrap_or_else(|e| {
            tracing::warn!("cache index unreadable, starting empty: {e}");
            HashSet::new()
        });
        ResultCache {
            store,
            keys: Mutex::new(keys),
            recent: Mutex::new(HashMap::new()),
            file_hashes: Mutex::new(HashMap::new()),
        }
    }

    /// The cache key of running `spec` on `inputs` with `params`. Fails when an audio input
    /// file cannot be read (the step would fail anyway, with the same message).
    pub fn key(
        &self,
        spec: &OperationSpec,
        inputs: &[ResolvedInput],
        params: &ParamMap,
    ) -> Result<String, String> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(spec.qualified_name().as_bytes());
        hasher.update(b"\0");
        hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
        hasher.update(b"\0");
        let params_value =
            Value::Object(params.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        hasher.update(canonical(&params_value).as_bytes());
        for input in inputs {
            hasher.update(b"\0");
            hasher.update(input.name.as_bytes());
            hasher.update(b"=");
            let audio = spec
                .inputs
                .iter()
                .find(|i| i.name == input.name)
                .is_some_and(|i| i.kind == InputKind::Audio);
            let value = match &input.value {
                Value::String(path) if audio => Value::String(self.file_hash(Path::new(path))?),
                other => content_addressed(other),
            };
            hasher.update(canonical(&value).as_bytes());
        }
        Ok(hasher.finalize().to_hex().to_string())
    }

    /// A stored result whose audio artifacts still exist.
    pub fn get(&self, key: &str) -> Option<Value> {
        if !self.keys.lock().contains(key) {
            return None;
        }
        let result = match self.recent.lock().get(key) {
            Some(v) => Some(v.clone()),
            None => self.store.cache_get(key).ok().flatten(),
        }?;
        artifacts_exist(&result).then_some(result)
    }

    pub fn put(&self, key: &str, operation: &str, result: &Value) {
        self.keys.lock().insert(key.to_string());
        {
            let mut recent = self.recent.lock();
            if recent.len() >= RECENT_KEPT {
                recent.clear();
            }
            recent.insert(key.to_string(), result.clone());
        }
        self.store.store_cache(key, operation, result.clone());
    }

    /// BLAKE3 of a file's bytes, remembered while its size and modification time stay put.
    pub fn file_hash(&self, path: &Path) -> Result<String, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some((len, time, hash)) = self.file_hashes.lock().get(path)
            && *len == meta.len()
            && *time == modified
        {
            return Ok(hash.clone());
        }
        let hash = hash_file(path)?;
        self.file_hashes
            .lock()
            .insert(path.to_path_buf(), (meta.len(), modified, hash.clone()));
        Ok(hash)
    }
}

/// BLAKE3 of a file's bytes, hex.
pub fn hash_file(path: &Path) -> Result<String, String> {
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    hasher
        .update_reader(file)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// JSON with object keys sorted, so equal values hash equally whatever their key order.
pub fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&map[k]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Replaces every audio artifact (an object with `path` and `hash`) by its hash.
fn content_addressed(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(_)), Some(Value::String(hash))) =
                (map.get("path"), map.get("hash"))
            {
                return Value::String(hash.clone());
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), content_addressed(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(content_addressed).collect()),
        other => other.clone(),
    }
}

/// Whether every artifact a result refers to is still on disk.
fn artifacts_exist(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(path)), Some(Value::String(_))) =
                (map.get("path"), map.get("hash"))
            {
                return Path::new(path).exists();
            }
            map.values().all(artifacts_exist)
        }
        Value::Array(items) => items.iter().all(artifacts_exist),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_ignores_key_order() {
        assert_eq!(
            canonical(&json!({"b": 1, "a": {"y": 2, "x": 3}})),
            canonical(&json!({"a": {"x": 3, "y": 2}, "b": 1}))
        );
    }

    #[test]
    fn artifacts_hash_by_content_not_path() {
        let a = json!({"audio": {"path": "/tmp/a.wav", "hash": "h1", "sampleRate": 1}});
        let b = json!({"audio": {"path": "/elsewhere/b.wav", "hash": "h1", "sampleRate": 1}});
        assert_eq!(
            canonical(&content_addressed(&a)),
            canonical(&content_addressed(&b))
        );
    }
}
