//! The task scheduler (the plan's `TaskScheduler`): one priority queue for the tasks of every
//! execution, run on background worker threads.
//!
//! - Higher `priority` runs first; equal priorities run in submission order.
//! - A task waits for its dependencies without polling: each task counts its unfinished
//!   dependencies, and finishing a task releases the dependents whose count drops to zero.
//!   A dependency that fails or is cancelled cancels its dependents.
//! - At most `max_concurrent` tasks run at once. A task given up on (a timeout whose
//!   operation ignores its cancellation token) stops counting against the limit, and a
//!   replacement worker is started so that other work carries on.
//! - A worker that finishes a task and submits its continuation (the next step of the same
//!   execution) picks that continuation up itself, without waking another thread.

use std::cell::Cell;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread;
use std::time::SystemTime;

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

/// Identifies a scheduled task.
pub type TaskId = u64;

/// How many finished tasks are kept for queries; older ones are forgotten.
const FINISHED_TASKS_KEPT: usize = 10_000;

/// What a task does; its outcome decides whether dependents run.
pub type Job = Box<dyn FnOnce() -> TaskOutcome + Send + 'static>;

/// The outcome of a task's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    Completed,
    Failed(String),
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for dependencies.
    Pending,
    /// Ready, waiting for a free worker.
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    /// Given up on while running (timed out); its worker was replaced.
    Abandoned,
}

impl TaskStatus {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed
                | TaskStatus::Failed
                | TaskStatus::Cancelled
                | TaskStatus::Abandoned
        )
    }
}

/// What a caller tells the scheduler about a task besides its job.
#[derive(Debug, Clone, Default)]
pub struct TaskSpec {
    /// Shown in task listings, e.g. `execution 3f2… / step analyze-audio`.
    pub label: String,
    pub priority: i32,
    pub dependencies: Vec<TaskId>,
    pub execution_id: Option<String>,
    pub step_id: Option<String>,
}

/// A snapshot of one task, for listings and the REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    pub id: TaskId,
    pub label: String,
    pub priority: i32,
    pub status: TaskStatus,
    pub dependencies: Vec<TaskId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(with = "crate::engine::timefmt")]
    pub submitted_at: SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::engine::timefmt::option")]
    pub started_at: Option<SystemTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::engine::timefmt::option")]
    pub finished_at: Option<SystemTime>,
}

struct Task {
    info: TaskInfo,
    job: Option<Job>,
    unfinished_dependencies: usize,
    dependents: Vec<TaskId>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct ReadyEntry {
    priority: i32,
    /// Negated submission order, so that earlier tasks win ties in the max-heap.
    order: std::cmp::Reverse<u64>,
    id: TaskId,
}

struct State {
    next_id: TaskId,
    ready: BinaryHeap<ReadyEntry>,
    tasks: HashMap<TaskId, Task>,
    finished_order: VecDeque<TaskId>,
    /// Tasks running and still counted against the limit.
    running: usize,
    max_concurrent: usize,
    /// Worker threads alive (more than `max_concurrent` while abandoned tasks hold some).
    workers: usize,
    shutdown: bool,
    peak_running: usize,
}

struct Shared {
    state: Mutex<State>,
    work_ready: Condvar,
    all_idle: Condvar,
}

/// The scheduler; cheap to clone, all clones share one queue and one pool.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

thread_local! {
    static IN_WORKER: Cell<bool> = const { Cell::new(false) };
}

impl Scheduler {
    /// Starts `max_concurrent` worker threads (at least one).
    pub fn new(max_concurrent: usize) -> Self {
        let max_concurrent = max_concurrent.max(1);
        let scheduler = Scheduler {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    next_id: 1,
                    ready: BinaryHeap::new(),
                    tasks: HashMap::new(),
                    finished_order: VecDeque::new(),
                    running: 0,
                    max_concurrent,
                    workers: 0,
                    shutdown: false,
                    peak_running: 0,
                }),
                work_ready: Condvar::new(),
                all_idle: Condvar::new(),
            }),
        };
        for _ in 0..max_concurrent {
            scheduler.spawn_worker();
        }
        scheduler
    }

    pub fn max_concurrent(&self) -> usize {
        self.shared.state.lock().max_concurrent
    }

    /// The most tasks that ever ran at once (counted against the limit).
    pub fn peak_running(&self) -> usize {
        self.shared.state.lock().peak_running
    }

    /// Queues a task. It runs once every dependency has completed; if one fails or is
    /// cancelled (or is unknown, e.g. long forgotten), the task is cancelled instead.
    pub fn submit(&self, spec: TaskSpec, job: Job) -> TaskId {
        let mut state = self.shared.state.lock();
        let id = state.next_id;
        state.next_id += 1;
        let mut unfinished = 0;
        let mut failed_dependency = None;
        for dep in &spec.dependencies {
            match state.tasks.get_mut(dep) {
                Some(t) if !t.info.status.is_finished() => {
                    t.dependents.push(id);
                    unfinished += 1;
                }
                Some(t) if t.info.status == TaskStatus::Completed => {}
                _ => failed_dependency = Some(*dep),
            }
        }
        let task = Task {
            info: TaskInfo {
                id,
                label: spec.label,
                priority: spec.priority,
                status: TaskStatus::Pending,
                dependencies: spec.dependencies,
                execution_id: spec.execution_id,
                step_id: spec.step_id,
                error: None,
                submitted_at: SystemTime::now(),
                started_at: None,
                finished_at: None,
            },
            job: Some(job),
            unfinished_dependencies: unfinished,
            dependents: Vec::new(),
        };
        state.tasks.insert(id, task);
        if let Some(dep) = failed_dependency {
            let reason = format!("dependency {dep} did not complete");
            finish(&mut state, id, TaskStatus::Cancelled, Some(reason));
        } else if unfinished == 0 {
            make_ready(&mut state, id);
            self.wake_for_new_work(&state);
        }
        id
    }

    /// Cancels a task that has not started. Returns false when it is already running or
    /// finished (a running task is cancelled through its own cancellation token).
    pub fn cancel(&self, id: TaskId) -> bool {
        let mut state = self.shared.state.lock();
        let cancellable = state
            .tasks
            .get(&id)
            .is_some_and(|t| matches!(t.info.status, TaskStatus::Pending | TaskStatus::Queued));
        if cancellable {
            // A queued entry stays in the heap; the worker skips it when it sees the status.
            finish(
                &mut state,
                id,
                TaskStatus::Cancelled,
                Some("cancelled".into()),
            );
            self.shared.work_ready.notify_all();
        }
        cancellable
    }

    /// Gives up on a running task: it stops counting against the concurrency limit and a
    /// replacement worker starts. Its job's eventual return is ignored.
    pub fn abandon(&self, id: TaskId, reason: &str) -> bool {
        let mut state = self.shared.state.lock();
        let running = state
            .tasks
            .get(&id)
            .is_some_and(|t| t.info.status == TaskStatus::Running);
        if !running {
            return false;
        }
        state.running -= 1;
        finish(
            &mut state,
            id,
            TaskStatus::Abandoned,
            Some(reason.to_string()),
        );
        drop(state);
        self.spawn_worker();
        self.shared.work_ready.notify_all();
        true
    }

    pub fn task(&self, id: TaskId) -> Option<TaskInfo> {
        self.shared
            .state
            .lock()
            .tasks
            .get(&id)
            .map(|t| t.info.clone())
    }

    /// Every task the scheduler still remembers, newest first.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        let state = self.shared.state.lock();
        let mut all: Vec<TaskInfo> = state.tasks.values().map(|t| t.info.clone()).collect();
        all.sort_by_key(|t| std::cmp::Reverse(t.id));
        all
    }

    /// Blocks until no task is queued, pending or running.
    pub fn wait_idle(&self) {
        let mut state = self.shared.state.lock();
        while state.running > 0
            || !state.ready.is_empty()
            || state
                .tasks
                .values()
                .any(|t| matches!(t.info.status, TaskStatus::Pending))
        {
            self.shared.all_idle.wait(&mut state);
        }
    }

    /// Stops the workers once the queue is empty; queued work still runs.
    pub fn shutdown(&self) {
        self.shared.state.lock().shutdown = true;
        self.shared.work_ready.notify_all();
    }

    fn wake_for_new_work(&self, state: &State) {
        // A worker submitting its own continuation takes the first ready task itself.
        let waiting_for_me = usize::from(IN_WORKER.with(Cell::get));
        if state.ready.len() > waiting_for_me {
            self.shared.work_ready.notify_one();
        }
    }

    fn spawn_worker(&self) {
        self.shared.state.lock().workers += 1;
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new()
            .name("grym-worker".into())
            .spawn(move || worker_loop(&shared));
        if let Err(e) = spawned {
            tracing::error!("cannot start a worker thread: {e}");
            self.shared.state.lock().workers -= 1;
        }
    }
}

fn make_ready(state: &mut State, id: TaskId) {
    let order = std::cmp::Reverse(id);
    if let Some(task) = state.tasks.get_mut(&id) {
        task.info.status = TaskStatus::Queued;
        let priority = task.info.priority;
        state.ready.push(ReadyEntry {
            priority,
            order,
            id,
        });
    }
}

/// Records a task's end and releases (or cancels) its dependents.
fn finish(state: &mut State, id: TaskId, status: TaskStatus, error: Option<String>) {
    let mut stack = vec![(id, status, error)];
    while let Some((id, status, error)) = stack.pop() {
        let Some(task) = state.tasks.get_mut(&id) else {
            continue;
        };
        if task.info.status.is_finished() {
            continue;
        }
        task.info.status = status;
        task.info.error = error;
        task.info.finished_at = Some(SystemTime::now());
        task.job = None;
        let dependents = std::mem::take(&mut task.dependents);
        state.finished_order.push_back(id);
        for dependent in dependents {
            if status == TaskStatus::Completed {
                let released = state.tasks.get_mut(&dependent).is_some_and(|d| {
                    d.unfinished_dependencies -= 1;
                    d.unfinished_dependencies == 0 && d.info.status == TaskStatus::Pending
                });
                if released {
                    make_ready(state, dependent);
                }
            } else {
                let reason = format!("dependency {id} did not complete");
                stack.push((dependent, TaskStatus::Cancelled, Some(reason)));
            }
        }
    }
    while state.finished_order.len() > FINISHED_TASKS_KEPT {
        if let Some(old) = state.finished_order.pop_front() {
            state.tasks.remove(&old);
        }
    }
}

fn worker_loop(shared: &Shared) {
    IN_WORKER.with(|w| w.set(true));
    let mut state = shared.state.lock();
    loop {
        let next = if state.running < state.max_concurrent {
            pop_runnable(&mut state)
        } else {
            None
        };
        let Some((id, job)) = next else {
            if state.shutdown && state.ready.is_empty() {
                state.workers -= 1;
                shared.work_ready.notify_all();
                return;
            }
            if state.running == 0 && state.ready.is_empty() {
                shared.all_idle.notify_all();
            }
            shared.work_ready.wait(&mut state);
            continue;
        };
        state.running += 1;
        state.peak_running = state.peak_running.max(state.running);
        if let Some(task) = state.tasks.get_mut(&id) {
            task.info.status = TaskStatus::Running;
            task.info.started_at = Some(SystemTime::now());
        }
        drop(state);

        let outcome = match catch_unwind(AssertUnwindSafe(job)) {
            Ok(outcome) => outcome,
            Err(panic) => TaskOutcome::Failed(format!("panicked: {}", panic_message(&panic))),
        };

        state = shared.state.lock();
        let abandoned = state
            .tasks
            .get(&id)
            .is_some_and(|t| t.info.status == TaskStatus::Abandoned);
        if abandoned {
            // A replacement took this worker's place when the task was given up on.
            state.workers -= 1;
            return;
        }
        {
            state.running -= 1;
            let (status, error) = match outcome {
                TaskOutcome::Completed => (TaskStatus::Completed, None),
                TaskOutcome::Failed(e) => (TaskStatus::Failed, Some(e)),
                TaskOutcome::Cancelled => (TaskStatus::Cancelled, None),
            };
            finish(&mut state, id, status, error);
            if state.ready.len() > 1 {
                shared.work_ready.notify_one();
            }
        }
        if state.running == 0 && state.ready.is_empty() {
            shared.all_idle.notify_all();
        }
    }
}

fn pop_runnable(state: &mut State) -> Option<(TaskId, Job)> {
    while let Some(entry) = state.ready.pop() {
        let job = state
            .tasks
            .get_mut(&entry.id)
            .filter(|t| t.info.status == TaskStatus::Queued)
            .and_then(|t| t.job.take());
        if let Some(job) = job {
            return Some((entry.id, job));
        }
    }
    None
}

/// The text of a panic payload.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn runs_by_priority_then_submission_order() {
        let scheduler = Scheduler::new(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        // Hold the only worker so that the rest queue up.
        let g = Arc::clone(&gate);
        scheduler.submit(
            TaskSpec::default(),
            Box::new(move || {
                let mut open = g.0.lock();
                while !*open {
                    g.1.wait(&mut open);
                }
                TaskOutcome::Completed
            }),
        );
        for (name, priority) in [("low", 0), ("high", 10), ("mid", 5), ("high2", 10)] {
            let order = Arc::clone(&order);
            scheduler.submit(
                TaskSpec {
                    priority,
                    ..TaskSpec::default()
                },
                Box::new(move || {
                    order.lock().push(name);
                    TaskOutcome::Completed
                }),
            );
        }
        *gate.0.lock() = true;
        gate.1.notify_all();
        scheduler.wait_idle();
        assert_eq!(*order.lock(), vec!["high", "high2", "mid", "low"]);
    }

    #[test]
    fn dependencies_run_first_and_failures_cancel_dependents() {
        let scheduler = Scheduler::new(4);
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&log);
        let a = scheduler.submit(
            TaskSpec::default(),
            Box::new(move || {
                thread::sleep(Duration::from_millis(30));
                l.lock().push("a");
                TaskOutcome::Completed
            }),
        );
        let l = Arc::clone(&log);
        let b = scheduler.submit(
            TaskSpec {
                dependencies: vec![a],
                ..TaskSpec::default()
            },
            Box::new(move || {
                l.lock().push("b");
                TaskOutcome::Failed("boom".into())
            }),
        );
        let l = Arc::clone(&log);
        let c = scheduler.submit(
            TaskSpec {
                dependencies: vec![b],
                ..TaskSpec::default()
            },
            Box::new(move || {
                l.lock().push("c");
                TaskOutcome::Completed
            }),
        );
        scheduler.wait_idle();
        assert_eq!(*log.lock(), vec!["a", "b"]);
        assert_eq!(
            scheduler.task(b).map(|t| t.status),
            Some(TaskStatus::Failed)
        );
        assert_eq!(
            scheduler.task(c).map(|t| t.status),
            Some(TaskStatus::Cancelled)
        );
    }

    #[test]
    fn never_exceeds_the_concurrency_limit() {
        let scheduler = Scheduler::new(3);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        for i in 0..200 {
            let running = Arc::clone(&running);
            let peak = Arc::clone(&peak);
            scheduler.submit(
                TaskSpec {
                    priority: i % 7,
                    ..TaskSpec::default()
                },
                Box::new(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(Duration::from_micros(200));
                    running.fetch_sub(1, Ordering::SeqCst);
                    TaskOutcome::Completed
                }),
            );
        }
        scheduler.wait_idle();
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(scheduler.peak_running(), 3);
    }

    #[test]
    fn abandoned_task_frees_its_slot() {
        let scheduler = Scheduler::new(1);
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let r = Arc::clone(&release);
        let stuck = scheduler.submit(
            TaskSpec::default(),
            Box::new(move || {
                let mut go = r.0.lock();
                while !*go {
                    r.1.wait(&mut go);
                }
                TaskOutcome::Completed
            }),
        );
        while scheduler.task(stuck).map(|t| t.status) != Some(TaskStatus::Running) {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(scheduler.abandon(stuck, "timed out"));
        let ran = Arc::new(AtomicUsize::new(0));
        let r2 = Arc::clone(&ran);
        scheduler.submit(
            TaskSpec::default(),
            Box::new(move || {
                r2.fetch_add(1, Ordering::SeqCst);
                TaskOutcome::Completed
            }),
        );
        scheduler.wait_idle();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        *release.0.lock() = true;
        release.1.notify_all();
        assert_eq!(
            scheduler.task(stuck).map(|t| t.status),
            Some(TaskStatus::Abandoned)
        );
    }

    #[test]
    fn a_panicking_job_fails_its_task_and_the_worker_survives() {
        let scheduler = Scheduler::new(1);
        let bad = scheduler.submit(TaskSpec::default(), Box::new(|| panic!("kaput")));
        let good = scheduler.submit(TaskSpec::default(), Box::new(|| TaskOutcome::Completed));
        scheduler.wait_idle();
        let bad = scheduler.task(bad);
        assert_eq!(bad.as_ref().map(|t| t.status), Some(TaskStatus::Failed));
        assert!(
            bad.and_then(|t| t.error)
                .is_some_and(|e| e.contains("kaput"))
        );
        assert_eq!(
            scheduler.task(good).map(|t| t.status),
            Some(TaskStatus::Completed)
        );
    }
}
