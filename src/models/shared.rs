use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Models loaded once per process and shared by every step and execution that asks for the
/// same key (model, revision, device). Loading the same key twice at once waits for the first
/// load; different keys load in parallel. A failed load is not remembered, so fixing the
/// checkpoint and running again works.
pub struct SharedModels<T> {
    slots: Mutex<HashMap<String, Slot<T>>>,
}

/// One model's place: locked while it loads, so a second request waits instead of loading
/// it again.
type Slot<T> = Arc<Mutex<Option<Arc<T>>>>;

impl<T> Default for SharedModels<T> {
    fn default() -> Self {
        SharedModels {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> SharedModels<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get_or_load<E>(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let slot = self
            .slots
            .lock()
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock();
        if let Some(model) = slot.as_ref() {
            return Ok(model.clone());
        }
        let model = Arc::new(load()?);
        *slot = Some(model.clone());
        Ok(model)
    }

    /// The keys of the models now loaded.
    pub fn loaded(&self) -> Vec<String> {
        let slots = self.slots.lock();
        let mut keys: Vec<String> = slots
            .iter()
            .filter(|(_, slot)| slot.lock().is_some())
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort();
        keys
    }

    /// Drops every loaded model (memory comes back once no step still holds one).
    pub fn clear(&self) {
        self.slots.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn loads_each_key_once_even_when_asked_concurrently() {
        let models = Arc::new(SharedModels::<usize>::new());
        let loads = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (models, loads) = (models.clone(), loads.clone());
                std::thread::spawn(move || {
                    let key = if i % 2 == 0 { "a" } else { "b" };
                    *models
                        .get_or_load(key, || {
                            loads.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            Ok::<_, ()>(key.len())
                        })
                        .unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 1);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert_eq!(models.loaded(), vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn a_failed_load_is_retried() {
        let models = SharedModels::<u32>::new();
        assert!(models.get_or_load("m", || Err::<u32, _>("broken")).is_err());
        assert!(models.loaded().is_empty());
        assert_eq!(*models.get_or_load("m", || Ok::<_, ()>(7)).unwrap(), 7);
    }
}
