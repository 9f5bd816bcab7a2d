//! The `setia` binary: command-line wiring only. Each command lives in `commands/`.

mod cli;
mod commands;
mod config;
mod exit;
mod metrics_job;

use clap::Parser;

// glibc's malloc and free were a fifth of the webhook path's time on its request threads
// (bench/ingest/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    exit::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return exit::report(exit::CliError::Failed(error.into())),
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => exit::report(error),
    }
}
