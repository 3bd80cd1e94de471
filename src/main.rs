//! The `grym-synth` command line: the editor (later), and headless commands that the tests,
//! scripts and CI drive.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "grym-synth",
    version,
    about = "Design and run AI audio pipelines as node graphs"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files and report every problem (exit 0 valid, 1 invalid, 2 unreadable).
    Validate {
        /// Workflow files (.ron or .json).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print a machine-readable report (see the README for its shape).
        #[arg(long)]
        json: bool,
    },
    /// Convert a workflow between .ron and .json (the format follows each extension).
    Convert { input: PathBuf, output: PathBuf },
    /// Start a new workflow file from a built-in template.
    New {
        /// Template name; run `grym-synth new --list` to see them.
        #[arg(long, required_unless_present = "list")]
        template: Option<String>,
        /// List the templates.
        #[arg(long)]
        list: bool,
        /// File to write (.ron or .json).
        #[arg(required_unless_present = "list")]
        output: Option<PathBuf>,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Validate { files, json }) => commands::validate::execute(&files, json),
        Some(Command::Convert { input, output }) => commands::convert::execute(&input, &output),
        Some(Command::New {
            template,
            list,
            output,
            force,
        }) => commands::new::execute(template.as_deref(), list, output.as_deref(), force),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GRYM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
