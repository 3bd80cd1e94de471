//! Cooperative cancellation for long audio work. A caller runs work inside [`with_stop`];
//! the decoder checks the flag before every packet (so every streaming transform stops
//! within one chunk) and the analyses check it between their passes.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::error::{AudioError, Result};

thread_local! {
    static STOP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `f` with `flag` as this thread's stop flag, restoring the previous one after.
pub fn with_stop<T>(flag: Arc<AtomicBool>, f: impl FnOnce() -> T) -> T {
    let previous = STOP.with(|s| s.replace(Some(flag)));
    let out = f();
    STOP.with(|s| *s.borrow_mut() = previous);
    out
}

/// `Err(AudioError::Cancelled)` once the current stop flag is set.
pub fn check() -> Result<()> {
    let stopped = STOP.with(|s| {
        s.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    });
    if stopped {
        Err(AudioError::Cancelled)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_applies_inside_the_scope_only() {
        let flag = Arc::new(AtomicBool::new(true));
        assert!(check().is_ok());
        assert!(matches!(with_stop(flag, check), Err(AudioError::Cancelled)));
        assert!(check().is_ok());
    }
}
