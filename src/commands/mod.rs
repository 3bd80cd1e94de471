//! One module per subcommand.

pub mod convert;
pub mod new;
pub mod validate;
