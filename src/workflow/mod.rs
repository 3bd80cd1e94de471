//! The workflow data model, its files and its validation. Depends on nothing else in the
//! crate.

pub mod diff;
pub mod file;
pub mod graph;
pub mod model;
pub mod optimization;
pub mod templates;
pub mod validate;

pub use file::{FileError, Format, load, save};
pub use model::*;
pub use optimization::{Direction, Optimization, Tunable};
pub use validate::{DEFAULT_MAX_ITERATIONS, Problem, Report, Severity, StepCatalog, validate};
