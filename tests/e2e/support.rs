//! Running the real binary against a fresh database.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use assert_cmd::Command;
use setia_core::mail_token::MailSecret;
use setia_core::MerchantId;
use setia_store::testing::TestDatabase;
use setia_store::{PageRequest, Store};

pub struct Setia {
    pub database: TestDatabase,
    pub folder: tempfile::TempDir,
}

impl Setia {
    pub fn on(database: TestDatabase) -> Setia {
        Setia {
            database,
            folder: tempfile::tempdir().unwrap(),
        }
    }

    /// `setia` with this database, run in a scratch folder, with no SETIA_* settings from
    /// the environment of the test run.
    pub fn command(&self) -> Command {
        let mut command = bare_command(self.folder.path());
        command.arg("--database-url").arg(&self.database.url);
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs a command that must succeed and returns its JSON output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "setia {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON on stdout")
    }

    pub fn create_merchant(&self, name: &str) -> serde_json::Value {
        self.json(&["merchant", "create", "--name", name])
    }

    /// Writes `csv` to a file and imports it (`setia {what} import`) for `merchant`.
    pub fn import(&self, what: &str, merchant: &str, csv: &str) -> serde_json::Value {
        let file = self.write(&format!("{what}.csv"), csv);
        self.json(&[what, "import", "--merchant", merchant, &file])
    }

    pub fn write(&self, name: &str, contents: &str) -> String {
        let path = self.folder.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        setia_store::connect(&self.database.url).await.unwrap()
    }
}

pub fn bare_command(folder: &Path) -> Command {
    let mut command = Command::cargo_bin("setia").unwrap();
    command.current_dir(folder);
    for (key, _) in std::env::vars() {
        if key.starts_with("SETIA_") {
            command.env_remove(key);
        }
    }
    command
}

/// The text of `html` after the first `start`, up to the next `end`.
pub fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} in the page"))
        + start.len();
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn fixture(path: &str) -> String {
    format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// Declares each listed test once per database backend: SQLite always, PostgreSQL with
/// `--features postgres-tests`. Each test is an `async fn(Setia)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let setia = $crate::support::Setia::on(setia_store::testing::TestDatabase::sqlite());
                    super::$name(setia).await;
                }
            )*
        }

        #[cfg(feature = "postgres-tests")]
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let database = setia_store::testing::TestDatabase::postgres().await;
                    super::$name($crate::support::Setia::on(database)).await;
                }
            )*
        }
    };
}

/// A running `setia` process (a server or a worker), killed when dropped.
pub struct Process {
    child: std::process::Child,
    /// Its first line on stdout, a JSON object: where it listens, or that it runs.
    pub ready: serde_json::Value,
    /// The file its stderr (the log) goes to.
    pub log: std::path::PathBuf,
}

impl Setia {
    /// Starts `setia ARGS…` with extra environment and waits for its first stdout line.
    pub fn start(&self, args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("setia"));
        command
            .current_dir(self.folder.path())
            .env_remove("SETIA_DATABASE_URL")
            .args(["--database-url", &self.database.url])
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped());
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.folder.path().join(format!("process-{n}.log"));
        command.stderr(std::fs::File::create(&log).unwrap());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("setia said it was ready within 30 s");
        let ready = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("a JSON ready line, got {line:?}"));
        Process { child, ready, log }
    }

    /// `setia serve` on a free port, with its worker.
    pub fn serve(&self) -> Process {
        self.start(&["serve", "--listen", "127.0.0.1:0"], &[])
    }
}

impl Process {
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.ready["listening"].as_str().expect("a server")
        )
    }

    /// The OpenAPI document the server serves.
    pub async fn openapi(&self) -> serde_json::Value {
        reqwest::get(self.url("/api/v1/openapi.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGSTOP: frozen where it is, until killed.
    pub fn stop(&mut self) {
        let status = std::process::Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("-TERM")
    }

    /// SIGINT (Ctrl-C), then the exit status.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        self.signal("-INT")
    }

    fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET of the JSON API with a merchant's token, as JSON.
pub async fn api_json(client: &reqwest::Client, url: String, token: &str) -> serde_json::Value {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The first page of a newest-first list, `limit` rows.
pub fn first(limit: u32) -> PageRequest {
    PageRequest {
        before: None,
        limit,
    }
}

/// The merchant's mail secret, which signs the links in its customers' emails.
pub async fn mail_secret(store: &dyn Store, merchant: &MerchantId) -> MailSecret {
    store
        .mail_merchant(merchant)
        .await
        .unwrap()
        .expect("the merchant")
        .secret
}
