//! How a command ends: exit code 2 for input the user can fix, 1 for everything else, and
//! one clear message on stderr either way.

use crate::cli::LogFormat;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input: a file, a flag or a row the user can correct. Nothing was changed.
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<setia_store::StoreError> for CliError {
    fn from(error: setia_store::StoreError) -> Self {
        CliError::Failed(error.into())
    }
}

pub fn report(error: CliError) -> std::process::ExitCode {
    match error {
        CliError::BadInput(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::from(2)
        }
        CliError::Failed(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(1)
        }
    }
}

pub fn init_logging(format: LogFormat) {
    // sqlx logs every statement at info; that is noise for an operator.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
