//! The `allium` command: the window (no subcommand), the headless JSON-RPC
//! interface (`allium headless`), and an address checker.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use allium::app::{Backend, Options, RealBackend};
use allium_protocol::OnionId;
use clap::{Parser, Subcommand};

/// Allium: a messenger for people who must not be identified.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Where profiles are kept (default: the platform's data directory,
    /// e.g. ~/.local/share/allium on Linux).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Use the Tor network described in FILE instead of the public Tor
    /// network (for experts and tests).
    #[arg(long, global = true, value_name = "FILE")]
    network: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs without a window, speaking JSON-RPC 2.0 on stdin/stdout, one
    /// request per line (see docs/json-rpc.md).
    Headless,
    /// Checks an Allium address for typos and prints it in its canonical
    /// form (`allium:` followed by 56 characters). Also accepts the bare
    /// onion id and `<id>.onion`.
    CheckAddress {
        /// The address to check.
        address: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = Options {
        data_dir: cli.data_dir,
        network: cli.network,
    };
    match cli.command {
        Some(Command::CheckAddress { address }) => match OnionId::parse(&address) {
            Ok(id) => {
                println!("{}", id.to_address());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("Not a valid Allium address: {e}.");
                ExitCode::FAILURE
            }
        },
        Some(Command::Headless) => run(options, Mode::Headless),
        None => run(options, Mode::Window),
    }
}

enum Mode {
    Headless,
    Window,
}

fn run(options: Options, mode: Mode) -> ExitCode {
    if let Err(e) = init_log() {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    // An amnesic session's directory goes on Ctrl-C, SIGTERM and panics
    // too, not only on a normal exit; and stale ones from a killed run are
    // swept when the next session starts.
    if let Err(e) = allium_vault::install_exit_cleanup() {
        eprintln!("Allium could not prepare its clean-up on exit: {e}");
        return ExitCode::FAILURE;
    }
    let backend = match RealBackend::new(options) {
        Ok(b) => Arc::new(b),
        Err(e) => {
            eprintln!("Allium cannot find where to keep profiles: {e}. Try --data-dir DIR.");
            return ExitCode::FAILURE;
        }
    };
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Allium could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match mode {
        Mode::Headless => runtime
            .block_on(allium::rpc::serve(
                backend,
                tokio::io::BufReader::new(tokio::io::stdin()),
                tokio::io::stdout(),
            ))
            .map_err(|e| e.to_string()),
        // The window runs on this (the main) thread, as windowing systems
        // require; the engine runs on the runtime's threads.
        Mode::Window => allium::ui::run(backend, runtime.handle().clone()).map_err(|e| {
            format!("the window could not open ({e}); `allium headless` works without one")
        }),
    };
    // Arti's tasks must not outlive the amnesic directory's removal.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    allium_vault::remove_amnesic_dirs();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Allium stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The environment variable that turns the log on.
const LOG_VAR: &str = "ALLIUM_LOG";

/// Logs to stderr when `ALLIUM_LOG` holds a filter (`info`, `debug`,
/// `arti_client=debug,info`, …), for someone finding out why a contact
/// cannot be reached. Off by default, and never to a file: a log says when
/// Allium ran and what it did. Arti's safe logging stays on (onion
/// addresses cut to their last three characters, IP addresses hidden), and
/// Allium itself logs no address, name or message
/// (`tests/headless_tor.rs` checks a debug log for them).
fn init_log() -> Result<(), String> {
    let Some(value) = std::env::var_os(LOG_VAR) else {
        return Ok(());
    };
    let filter = value
        .to_str()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .ok_or_else(|| {
            format!(
                "{LOG_VAR}={} is not a log filter. Try {LOG_VAR}=info or {LOG_VAR}=debug, \
                 or unset it.",
                value.to_string_lossy()
            )
        })?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .map_err(|e| format!("Allium could not start its log: {e}"))
}
