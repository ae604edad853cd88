//! `porter`: reads the settings, starts tracing, and runs the subcommand.

use std::process::ExitCode;

use clap::Parser;
use porter::{
    cli::{self, Cli, Command},
    settings::Settings,
    telemetry,
};

/// mimalloc, with argon2's 19 MiB blocks mapped from the system and given
/// back after each hash (see `porter::allocator` and bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: porter::allocator::PorterAllocator = porter::allocator::PorterAllocator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A new key is needed before any settings exist, so this one command
    // runs without them.
    if let Some(Command::Secret { action }) = &cli.command {
        cli::secret(action);
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(&settings.rust_log);
    match cli::run(cli.command.unwrap_or(Command::Serve), settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
