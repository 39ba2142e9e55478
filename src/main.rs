//! The `allium` command.
//!
//! Today it only checks addresses: the messenger itself (engine, vault,
//! onion services, window) is being built; see the README's status section.

use std::process::ExitCode;

use allium_protocol::OnionId;
use clap::{Parser, Subcommand};

/// Allium: a messenger for people who must not be identified.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
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
        None => {
            eprintln!(
                "Allium's window and messaging are not built yet; this version can only \
                 check addresses. Run `allium --help` for the commands."
            );
            ExitCode::FAILURE
        }
    }
}
