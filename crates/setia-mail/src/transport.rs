//! Where messages go: an SMTP server through lettre's pooled async transport
//! (`smtp://`, `smtp://…?tls=required` for STARTTLS, `smtps://`; credentials from the URL;
//! TLS by rustls), or `.eml` files in a folder when no SMTP URL is set.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Message, Tokio1Executor};

/// How a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Try again later: a 4xx answer, a connection or TLS problem, a timeout.
    Temporary(String),
    /// Do not try again: a 5xx answer, or a message the server can never take.
    Permanent(String),
}

#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::Files(dir) => write!(f, "Transport::Files({})", dir.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("SETIA_SMTP_URL is not a usable SMTP URL (smtp://host:port, smtp://host:587?tls=required, smtps://user:pass@host): {0}")]
    BadUrl(String),
    #[error("cannot create the outbox folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
}

impl Transport {
    /// A pooled SMTP transport: up to `connections` open connections, reused between
    /// messages; each step (connecting, a command, the message) waits at most `timeout`.
    pub fn smtp(
        url: &str,
        connections: u32,
        timeout: Duration,
    ) -> Result<Transport, TransportError> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            // The error names the URL's problem, never the URL (it may hold a password).
            .map_err(|e| TransportError::BadUrl(e.to_string()))?;
        let pool = PoolConfig::new()
            .max_size(connections.max(1))
            .idle_timeout(Duration::from_secs(60));
        Ok(Transport::Smtp(
            builder.pool_config(pool).timeout(Some(timeout)).build(),
        ))
    }

    pub fn files(dir: PathBuf) -> Result<Transport, TransportError> {
        std::fs::create_dir_all(&dir).map_err(|source| TransportError::Folder {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Transport::Files(dir))
    }

    /// Sends one message. `file_name` names it in the files transport (the same name on a
    /// retry, so a retried message replaces its earlier copy).
    pub async fn send(&self, message: &Message, file_name: &str) -> Result<(), SendFailure> {
        match self {
            // The message's own bytes, not a clone of it for `send` to format.
            Transport::Smtp(smtp) => smtp
                .send_raw(message.envelope(), &message.formatted())
                .await
                .map(|_| ())
                .map_err(|e| {
                    if e.is_permanent() {
                        SendFailure::Permanent(smtp_error_text(&e))
                    } else {
                        SendFailure::Temporary(smtp_error_text(&e))
                    }
                }),
            Transport::Files(dir) => {
                let bytes = message.formatted();
                let path = dir.join(file_name);
                let partial = dir.join(format!(".{file_name}.partial"));
                // Written whole, then renamed: a reader never sees half a message.
                tokio::fs::write(&partial, &bytes)
                    .await
                    .and(tokio::fs::rename(&partial, &path).await)
                    .map_err(|e| SendFailure::Temporary(format!("writing {}: {e}", path.display())))
            }
        }
    }
}

/// lettre's error with the server's code and text.
fn smtp_error_text(error: &lettre::transport::smtp::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
