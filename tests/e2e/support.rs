//! Running the real binary against a fresh database.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use assert_cmd::Command;
use setia_store::testing::TestDatabase;
use setia_store::Store;

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
