//! The operation catalog: analysis, generation and transformation operations, each adapting
//! the `audio` and `models` libraries to the engine's `Operation` contract (and a report
//! that gathers their results into a file).

pub mod analysis;
pub mod generation;
pub mod models;
pub mod report;
pub mod support;
pub mod transformation;
pub mod wav2vec2;

use std::sync::Arc;

use crate::engine::OperationRegistry;

/// Every operation this program has.
pub fn builtin_registry() -> OperationRegistry {
    let mut registry = OperationRegistry::new();
    for op in [
        analysis::features(),
        analysis::patterns(),
        analysis::loudness(),
        analysis::compare(),
        analysis::quality(),
        analysis::beatsync(),
        wav2vec2::embed(),
        wav2vec2::transcribe(),
        transformation::export(),
        transformation::resample(),
        transformation::normalize(),
        transformation::gain(),
        transformation::trim(),
        transformation::fade(),
        transformation::filter(),
        transformation::mix(),
        report::report(),
    ] {
        registry.register(Arc::new(op));
    }
    registry.register(Arc::new(generation::generate()));
    registry
}
