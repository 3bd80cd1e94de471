//! The workflow data model, its files and its validation. Depends on nothing else in the
//! crate.

pub mod model;

pub use model::*;
