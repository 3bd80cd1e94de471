//! The workflow data model, its files and its validation. Depends on nothing else in the
//! crate.

pub mod file;
pub mod model;
pub mod validate;

pub use file::{FileError, Format, load, save};
pub use model::*;
pub use validate::{Problem, Report, Severity, StepCatalog, validate};
