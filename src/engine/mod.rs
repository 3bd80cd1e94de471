//! The execution engine: operation registry, workflow manager, scheduler, executions,
//! context repository, result cache and history.
//!
//! Front ends (editor, REST API, command line) drive it through [`Engine`] and read its
//! [`Event`] stream; none of them reaches inside.

pub mod artifact;
pub mod cache;
pub mod context;
pub mod events;
mod execution;
mod manager;
pub mod operation;
pub mod optimize;
pub mod registry;
pub mod resolve;
pub mod scheduler;
pub mod store;
pub mod timefmt;
mod timer;

pub use artifact::AudioArtifact;
pub use context::{ContextQuery, ContextRepository, WorkflowContextAdapter};
pub use events::{Event, LogLevel};
pub use execution::{ExecutionSnapshot, ExecutionStatus};
pub use manager::{Engine, EngineConfig, EngineError, RunOptions};
pub use operation::{
    CancellationToken, InputKind, InputSpec, NoProgress, OpContext, OpError, Operation,
    OperationSpec, OutputSpec, ParamKind, ParamSpec, ProgressSink, ResolvedInput,
};
pub use registry::OperationRegistry;
pub use scheduler::{Scheduler, TaskId, TaskInfo, TaskStatus};
pub use store::{ContextItem, ExecutionRecord, StepRunRecord, StepRunStatus};
