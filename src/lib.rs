//! grym-synth: design and run AI audio pipelines as node graphs.
//!
//! The crate is layered; each layer depends only on the ones listed before it:
//! [`workflow`] (data model, files, validation) → [`engine`] (manager, scheduler,
//! executions, context, cache, history) → [`ops`] (the operation catalog), which uses
//! [`audio`] (I/O and DSP) and [`models`]; [`ui`] (the desktop editor) sits on top.
//! See ARCHITECTURE.md.

pub mod api;
pub mod audio;
pub mod engine;
pub mod models;
pub mod ops;
mod simd;
pub mod ui;
pub mod workflow;
