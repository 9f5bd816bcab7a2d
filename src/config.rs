//! Settings: defaults embedded in the binary, then an optional TOML file, then SETIA_*
//! environment variables, then command-line flags.

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::exit::CliError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database_url: String,
    pub listen: String,
    pub public_url: Option<String>,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub moota_allowed_ips: Option<String>,
    pub trusted_proxies: Option<String>,
    /// How long a worker holds a claimed inbox row before another may take it.
    pub worker_lease_seconds: u32,
    /// The merchant-local hour from which the nightly metrics snapshot is computed.
    pub nightly_metrics_hour: u32,
    /// How often a worker looks for merchants whose nightly run is due.
    pub nightly_check_seconds: u32,
    /// How long a claimed nightly run is a worker's before another may take it over.
    pub nightly_lease_seconds: u32,
    /// A folder of email template overrides (`{lang}/…` or `{merchant id}/{lang}/…`).
    pub email_templates: Option<String>,
    /// SMTP connections each process keeps open (and messages it has in flight).
    pub smtp_connections: u32,
    /// Moota's API V2, for reconciliation.
    pub moota_api_url: String,
    /// How often each merchant with a Moota token is reconciled (0: never on a schedule).
    pub moota_sync_minutes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://./setia-data/setia.db".into(),
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            smtp_url: None,
            mail_from: None,
            moota_allowed_ips: None,
            trusted_proxies: None,
            worker_lease_seconds: 60,
            nightly_metrics_hour: 2,
            nightly_check_seconds: 300,
            nightly_lease_seconds: 120,
            email_templates: None,
            smtp_connections: 16,
            moota_api_url: setia_ingest::reconcile::DEFAULT_API_URL.into(),
            moota_sync_minutes: 30,
        }
    }
}

const KEYS: [&str; 15] = [
    "database_url",
    "listen",
    "public_url",
    "smtp_url",
    "mail_from",
    "moota_allowed_ips",
    "trusted_proxies",
    "worker_lease_seconds",
    "nightly_metrics_hour",
    "nightly_check_seconds",
    "nightly_lease_seconds",
    "email_templates",
    "smtp_connections",
    "moota_api_url",
    "moota_sync_minutes",
];

impl Settings {
    pub fn load(
        file: Option<&Path>,
        database_url_flag: Option<&str>,
    ) -> Result<Settings, CliError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(CliError::BadInput(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("SETIA_").only(&KEYS));
        if let Some(url) = database_url_flag {
            figment = figment.merge(Serialized::default("database_url", url));
        }
        let settings: Settings = figment
            .extract()
            .map_err(|e| CliError::BadInput(format!("configuration: {e}")))?;
        if settings.nightly_metrics_hour > 23 {
            return Err(CliError::BadInput(
                "configuration: nightly_metrics_hour must be 0 to 23".into(),
            ));
        }
        Ok(settings)
    }

    pub fn nightly_schedule(&self) -> crate::metrics_job::NightlySchedule {
        crate::metrics_job::NightlySchedule {
            hour: self.nightly_metrics_hour,
            check_every: std::time::Duration::from_secs(u64::from(
                self.nightly_check_seconds.max(1),
            )),
            lease: chrono::TimeDelta::seconds(i64::from(self.nightly_lease_seconds.max(1))),
        }
    }

    /// The client of Moota's API, or why the configured URL is not one.
    pub fn moota_api(&self) -> Result<setia_ingest::reconcile::MootaApi, CliError> {
        setia_ingest::reconcile::MootaApi::new(&self.moota_api_url)
            .map_err(|e| CliError::BadInput(format!("SETIA_MOOTA_API_URL: {e}")))
    }

    pub fn worker_config(&self) -> setia_worker::WorkerConfig {
        setia_worker::WorkerConfig {
            lease: chrono::TimeDelta::seconds(i64::from(self.worker_lease_seconds.max(1))),
            ..setia_worker::WorkerConfig::default()
        }
    }
}
