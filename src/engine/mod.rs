//! The execution engine: operation registry, workflow manager, scheduler, executions,
//! context repository, result cache and history.

pub mod artifact;
pub mod operation;

pub use artifact::AudioArtifact;
pub use operation::{
    CancellationToken, InputKind, InputSpec, NoProgress, OpContext, OpError, Operation,
    OperationSpec, OutputSpec, ParamKind, ParamSpec, ProgressSink, ResolvedInput,
};
