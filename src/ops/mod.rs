//! The operation catalog: analysis, generation and transformation operations.
