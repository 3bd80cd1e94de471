//! One thread that runs actions at given instants: step timeouts and retry back-offs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

type Action = Box<dyn FnOnce() + Send + 'static>;

struct Entry {
    at: Instant,
    order: u64,
    action: Action,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// Runs each scheduled action once its instant has passed. Actions must be quick; the ones
/// the engine schedules only flip flags and submit tasks. Dropping the timer drops pending
/// actions unrun.
pub struct Timer {
    tx: Sender<(Instant, Action)>,
}

impl Timer {
    pub fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let spawned = thread::Builder::new()
            .name("grym-timer".into())
            .spawn(move || run(rx));
        if let Err(e) = spawned {
            tracing::error!("cannot start the timer thread: {e}; timeouts and retries are off");
        }
        Timer { tx }
    }

    pub fn at(&self, at: Instant, action: impl FnOnce() + Send + 'static) {
        let _ = self.tx.send((at, Box::new(action)));
    }
}

impl Default for Timer {
    fn default() -> Self {
        Self::new()
    }
}

fn run(rx: Receiver<(Instant, Action)>) {
    let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::new();
    let mut order = 0;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(entry)) = heap.pop() {
                (entry.action)();
            }
        }
        let received = match heap.peek() {
            Some(Reverse(next)) => rx.recv_timeout(next.at.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok((at, action)) => {
                order += 1;
                heap.push(Reverse(Entry { at, order, action }));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
