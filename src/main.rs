//! The `grym-synth` command line: the editor (no arguments, or `open FILE`), and headless commands that the tests,
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
    /// Folder holding the history database and the artifact workspace (default: the
    /// platform's data folder, or $GRYM_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// The models in the Hugging Face cache (HF_HOME), with sizes and revisions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Download a model's configurations, vocabulary and weights into the cache.
    Fetch {
        /// Hub id, e.g. facebook/wav2vec2-base-960h (optionally @revision).
        id: String,
        /// Branch, tag or commit to pin.
        #[arg(long)]
        revision: Option<String>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Open a workflow file in the editor (no command at all opens an empty editor).
    Open {
        /// Workflow file (.ron or .json).
        file: PathBuf,
        /// Show this recorded execution's timeline (an id, or `latest`).
        #[arg(long, value_name = "ID")]
        execution: Option<String>,
        /// With --execution: select this step and show its result beside the timeline.
        #[arg(long, value_name = "STEP", requires = "execution")]
        step: Option<String>,
        /// Open on this tab of the bottom panel: problems, run, timeline, audio or optimise.
        #[arg(long, value_name = "TAB")]
        tab: Option<String>,
    },
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
    /// Run a workflow headless: progress on a terminal, a summary at the end.
    Run {
        /// Workflow file (.ron or .json).
        workflow: PathBuf,
        /// Run parameter as key=value (value read as JSON where it parses, else a string).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Print the finished execution (results, step runs) as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Folder for exported files (default: a folder per execution in the data folder).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Run one operation, e.g. `op analysis/features --input audio=song.wav`.
    Op {
        /// TYPE/NAME, as `grym-synth ops` lists them.
        operation: String,
        /// Input as name=value (a file path, or JSON).
        #[arg(long = "input", value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// Parameter as key=value (value read as JSON where it parses, else a string).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Print only the result object as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// See the models in the local Hugging Face cache, or fetch one ahead of time.
    Models {
        #[command(subcommand)]
        action: ModelsCommand,
    },
    /// List the operation catalog with inputs, parameters and results.
    Ops {
        #[arg(long)]
        json: bool,
    },
    /// List past executions, newest first.
    History {
        #[arg(long)]
        json: bool,
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Serve the REST API (and its event streams) for programs and LLMs.
    Serve {
        /// Address to listen on; anything but loopback needs --token.
        #[arg(long, default_value = "127.0.0.1:7878")]
        bind: std::net::SocketAddr,
        /// Bearer token every request must present (or $GRYM_API_TOKEN).
        #[arg(long, env = "GRYM_API_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Folder that audio paths in requests must stay inside (repeatable; default: the
        /// current folder).
        #[arg(long = "root", value_name = "DIR")]
        roots: Vec<PathBuf>,
    },
    /// Serve the Model Context Protocol on stdin/stdout, so that an LLM client can design,
    /// validate, save and run workflows and read their results.
    Mcp {
        /// Folder that audio paths in tool calls must stay inside (repeatable; default: the
        /// current folder).
        #[arg(long = "root", value_name = "DIR")]
        roots: Vec<PathBuf>,
    },
    /// Print the REST API's OpenAPI document.
    Openapi,
    /// Run one workflow over many audio files: one progress bar, a summary of every file's
    /// results; a failed file is reported and the rest go on, and a re-run reuses what the
    /// cache holds.
    Batch(commands::batch::BatchArgs),
    /// Tune a workflow's run parameters to improve a figure of its results: a seeded random
    /// or grid start, then a tree-structured Parzen estimator; every trial is an execution in
    /// the history and a record of the study, which `--resume` continues.
    Optimize(commands::optimize::OptimizeArgs),
    /// Continue an interrupted execution from its last completed step.
    Resume {
        execution: String,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    grym_synth::models::memory::keep_freed_buffers();
    init_logging();
    let cli = Cli::parse();
    let data_dir = cli.data_dir.as_deref();
    let result = match cli.command {
        None => grym_synth::ui::run_editor(None, data_dir, None, None).map(|()| ExitCode::SUCCESS),
        Some(Command::Open {
            file,
            execution,
            step,
            tab,
        }) => {
            let show = execution.map(|id| grym_synth::ui::ShowExecution { id, step });
            let tab = tab
                .as_deref()
                .map(|t| {
                    grym_synth::ui::app::BottomTab::parse(t).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--tab `{t}`: choose problems, run, timeline, audio or optimise"
                        )
                    })
                })
                .transpose();
            tab.and_then(|tab| grym_synth::ui::run_editor(Some(file), data_dir, show, tab))
                .map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Validate { files, json }) => {
            let catalog = grym_synth::ops::builtin_registry();
            commands::validate::execute_with(&files, json, Some(&catalog))
        }
        Some(Command::Convert { input, output }) => commands::convert::execute(&input, &output),
        Some(Command::New {
            template,
            list,
            output,
            force,
        }) => commands::new::execute(template.as_deref(), list, output.as_deref(), force),
        Some(Command::Run {
            workflow,
            params,
            json,
            out,
        }) => commands::run::execute(&workflow, &params, json, out.as_deref(), data_dir),
        Some(Command::Op {
            operation,
            inputs,
            params,
            json,
            out,
        }) => commands::op::execute(&operation, &inputs, &params, json, out.as_deref(), data_dir),
        Some(Command::Ops { json }) => commands::ops::execute(json),
        Some(Command::Models { action }) => match action {
            ModelsCommand::List { json } => commands::models::list(json),
            ModelsCommand::Fetch { id, revision } => {
                commands::models::fetch(&id, revision.as_deref())
            }
        },
        Some(Command::History { json, limit }) => commands::history::execute(json, limit, data_dir),
        Some(Command::Serve { bind, token, roots }) => {
            commands::serve::execute(bind, token, roots, data_dir)
        }
        Some(Command::Mcp { roots }) => commands::mcp::execute(roots, data_dir),
        Some(Command::Openapi) => {
            use std::io::Write;
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{}", grym_synth::api::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Batch(args)) => commands::batch::execute(&args, data_dir),
        Some(Command::Optimize(args)) => commands::optimize::execute(&args, data_dir),
        Some(Command::Resume { execution, json }) => {
            commands::resume::execute(&execution, json, data_dir)
        }
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
        // symphonia logs a failed probe as an error; we report it ourselves, naming the file.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,symphonia_core=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
