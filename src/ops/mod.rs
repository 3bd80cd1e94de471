//! The operation catalog: analysis, generation and transformation operations.

use crate::engine::OperationRegistry;

/// Every operation this program has.
pub fn builtin_registry() -> OperationRegistry {
    OperationRegistry::new()
}
