//! One module per subcommand.

pub mod batch;
pub mod common;
pub mod convert;
pub mod history;
pub mod mcp;
pub mod models;
pub mod new;
pub mod op;
pub mod ops;
pub mod optimize;
pub mod resume;
pub mod run;
pub mod serve;
pub mod validate;
