//! The README runs. Every fenced block of README.md is either run here or named below with
//! the reason it is only checked by its text, so the README cannot rot:
//!
//! - `cargo run --release -- demo` runs as `setia demo` (the binary under test, on a free
//!   port and a temporary database), until it prints its dashboard URL, which must answer;
//!   then Ctrl-C (SIGINT) must stop it with exit code 0.
//! - The two `cargo test` commands are checked by their text only: running them here would
//!   run this test inside itself.
//! - Every other block must be a `sh` block. They run in README order as ONE bash session
//!   (`set -Eeuo pipefail`, so shell variables and background jobs carry from block to
//!   block, as in a reader's terminal), in an empty temporary folder, with `setia` on the
//!   PATH pointing at the binary under test and `SETIA_DATABASE_URL` at a temporary SQLite
//!   file. The blocks of "Several nodes on PostgreSQL" run only in the `postgres::` test,
//!   after the others, with the README's example database URL replaced by a database of
//!   the test's own.
//! - The README's example address of `setia serve` (`127.0.0.1:8080`) is replaced by a free
//!   port, so runs in parallel never collide. Nothing else of the text is changed. The
//!   walk-through's emails go to setia's own `.eml` outbox folder, so it needs no mail
//!   server.
//!
//! Long-running commands (`setia serve`, `setia worker`) run as a reader
//! runs them: in the background with `&`, stopped by the README's own blocks with SIGTERM
//! and `wait`, whose exit code `set -e` checks. The session runs in a process group
//! of its own; the test fails if anything of it is still alive when bash has finished, and
//! it kills the whole group when it fails or times out, so no process outlives the test.
//!
//! Also here: the renderer of `bench/run.sh`'s results table (`bench/results.py`), run on
//! crafted results files.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use setia_store::testing::TestDatabase;

const README: &str = include_str!("../../README.md");

/// The first command of the README, which the test runs as `setia demo`.
const DEMO: &str = "cargo run --release -- demo";
/// Blocks checked by their text only, each with the reason.
const TEXT_ONLY: [(&str, &str); 2] = [
    (
        "cargo test",
        "running it here would run this test inside itself",
    ),
    (
        "SETIA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test --features postgres-tests -- postgres::",
        "it is the command that runs this file's postgres:: test: running it here would run the test inside itself",
    ),
];
/// The section whose blocks need a PostgreSQL server.
const POSTGRES_SECTION: &str = "Several nodes on PostgreSQL";
/// The README's example PostgreSQL database, replaced by a fresh one.
const README_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/setia";
/// The README's example address of `setia serve`, replaced by a free port.
const README_LISTEN: &str = "127.0.0.1:8080";
/// How long the whole session may take before it is stopped and the test fails.
const SESSION_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Block {
    /// The line of the opening fence in README.md.
    line: usize,
    language: String,
    /// The `## ` heading the block is under.
    section: String,
    text: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Treatment {
    Demo,
    TextOnly(&'static str),
    Session,
    Postgres,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        match &mut open {
            None => {
                if let Some(heading) = line.strip_prefix("## ") {
                    section = heading.trim().to_owned();
                } else if let Some(language) = line.strip_prefix("```") {
                    open = Some(Block {
                        line: index + 1,
                        language: language.trim().to_owned(),
                        section: section.clone(),
                        text: String::new(),
                    });
                }
            }
            Some(block) => {
                if line.trim_end() == "```" {
                    blocks.push(open.take().unwrap());
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
        }
    }
    assert!(
        open.is_none(),
        "README.md: a code block is never closed: {open:?}"
    );
    blocks
}

/// How the test covers a block. A block it cannot cover fails the test, naming its line.
fn treatment(block: &Block) -> Treatment {
    let text = block.text.trim();
    if text == DEMO {
        return Treatment::Demo;
    }
    if let Some((_, reason)) = TEXT_ONLY.iter().find(|(t, _)| *t == text) {
        return Treatment::TextOnly(reason);
    }
    assert_eq!(
        block.language, "sh",
        "README.md line {}: a ```{} block that this test neither runs nor names in TEXT_ONLY; \
         make it a sh block that runs in the session (a file can be written with a heredoc), \
         or name it with the reason it cannot run",
        block.line, block.language
    );
    if block.section == POSTGRES_SECTION {
        Treatment::Postgres
    } else {
        Treatment::Session
    }
}

fn readme_blocks() -> Vec<(Block, Treatment)> {
    blocks(README)
        .into_iter()
        .map(|block| {
            let treatment = treatment(&block);
            (block, treatment)
        })
        .collect()
}

#[test]
fn every_block_of_the_readme_is_run_or_named_with_a_reason() {
    let all = readme_blocks();
    let texts: Vec<&str> = all.iter().map(|(b, _)| b.text.trim()).collect();
    assert_eq!(
        texts.get(..2),
        Some(&[DEMO, "cargo test"][..]),
        "the README starts with the two commands"
    );
    for (text, _) in TEXT_ONLY {
        assert!(
            texts.contains(&text),
            "TEXT_ONLY names a block the README no longer has: {text:?}"
        );
    }
    for (block, treatment) in &all {
        if let Treatment::TextOnly(reason) = treatment {
            println!(
                "README.md line {}: `{}` is checked by its text only: {reason}",
                block.line,
                block.text.trim()
            );
        }
    }
    let count = |wanted: &Treatment| all.iter().filter(|(_, t)| t == wanted).count();
    assert_eq!(count(&Treatment::Demo), 1);
    assert!(
        count(&Treatment::Session) >= 5,
        "the walk-through is in the README"
    );
    assert!(
        count(&Treatment::Postgres) >= 1,
        "the PostgreSQL section has a block"
    );
    // The PostgreSQL section exports SETIA_DATABASE_URL: a walk-through block after it would
    // run against the other database, and only the postgres:: test would notice.
    let first_postgres = all.iter().position(|(_, t)| *t == Treatment::Postgres);
    if let Some(after) =
        first_postgres.and_then(|p| all[p..].iter().find(|(_, t)| *t == Treatment::Session))
    {
        panic!(
            "README.md line {}: a walk-through block after \"{POSTGRES_SECTION}\", which switches \
             the session to PostgreSQL: move that section after it",
            after.0.line
        );
    }
    let session = script(&all, true);
    for example in [README_LISTEN, README_POSTGRES_URL] {
        assert!(
            session.contains(example),
            "the test replaces {example} in the README's blocks, which no longer contain it"
        );
    }
}

#[test]
fn blocks_are_found_with_their_line_language_and_section() {
    let markdown = "# t\n\n```sh\necho one\n```\n\n## Several nodes on PostgreSQL\n\ntext\n\n```sh\nsetia worker &\nW=$!\n```\n";
    let found = blocks(markdown);
    assert_eq!(found.len(), 2);
    assert_eq!(
        (
            found[0].line,
            found[0].language.as_str(),
            found[0].section.as_str(),
            found[0].text.as_str()
        ),
        (3, "sh", "", "echo one\n")
    );
    assert_eq!(treatment(&found[0]), Treatment::Session);
    assert_eq!(found[1].text, "setia worker &\nW=$!\n");
    assert_eq!(treatment(&found[1]), Treatment::Postgres);
}

#[test]
#[should_panic(expected = "a ```toml block that this test neither runs nor names")]
fn a_block_the_test_would_not_run_fails_it() {
    let found = blocks("## Loyalty program\n\n```toml\nbonus_points = 50\n```\n");
    treatment(&found[0]);
}

/// The bash script of the session: the sh blocks in README order, each announced on stderr
/// by its line, so a failure names the block.
fn script(all: &[(Block, Treatment)], with_postgres: bool) -> String {
    let mut script = String::from(
        "set -Eeuo pipefail\n\
         trap 'status=$?; echo \"README.md block at line $README_BLOCK failed: $BASH_COMMAND (exit $status)\" >&2' ERR\n",
    );
    for (block, treatment) in all {
        let runs = match treatment {
            Treatment::Session => true,
            Treatment::Postgres => with_postgres,
            Treatment::Demo | Treatment::TextOnly(_) => false,
        };
        if runs {
            script.push_str(&format!(
                "README_BLOCK={line}\necho '== README.md line {line}' >&2\n{text}",
                line = block.line,
                text = block.text
            ));
        }
    }
    script
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A folder with `setia` in it, for the PATH: the binary under test.
fn bin_folder(root: &Path) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_setia"), bin.join("setia")).unwrap();
    bin
}

fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A process group started by the test; every process still in it is killed on drop.
struct Group {
    id: u32,
}

impl Group {
    /// The processes of the group still alive (zombies aside), as "pid command".
    fn alive(&self) -> Vec<String> {
        let mut alive = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
            let Some((head, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.len() > 2 && fields[2] == self.id.to_string() && fields[0] != "Z" {
                alive.push(head.replacen(" (", " ", 1));
            }
        }
        alive
    }

    fn kill(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.id)])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(path: &Path, bytes: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(bytes);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

/// Runs the README's session in `folder` and panics, with the end of its output, unless
/// bash exits 0 within the timeout leaving no process behind.
fn run_session(
    folder: &Path,
    mut script: String,
    replacements: &[(&str, &str)],
    env: &[(&str, &str)],
) {
    for (example, actual) in replacements {
        assert!(
            script.contains(example),
            "the README's blocks no longer contain {example}"
        );
        script = script.replace(example, actual);
    }
    let work = folder.join("session");
    std::fs::create_dir_all(&work).unwrap();
    let script_path = folder.join("readme-session.sh");
    std::fs::write(&script_path, &script).unwrap();
    let (stdout, stderr) = (folder.join("stdout.txt"), folder.join("stderr.txt"));
    let bin = bin_folder(folder);

    let mut command = std::process::Command::new("bash");
    command
        .arg(&script_path)
        .current_dir(&work)
        .env("PATH", path_with(&bin))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .process_group(0);
    for (key, _) in std::env::vars() {
        if key.starts_with("SETIA_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let mut bash = command.spawn().unwrap();
    let group = Group { id: bash.id() };

    let report = |what: &str| {
        format!(
            "{what}\n--- end of stderr ---\n{}\n--- end of stdout ---\n{}",
            tail(&stderr, 6_000),
            tail(&stdout, 3_000)
        )
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = bash.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > SESSION_TIMEOUT {
            group.kill();
            let _ = bash.wait();
            panic!(
                "{}",
                report(&format!(
                    "the README session did not finish within {SESSION_TIMEOUT:?}; the last block announced on stderr hangs"
                ))
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "{}",
        report(&format!("the README session failed ({status})"))
    );
    // The README stops what it starts; give the last ones a moment to exit.
    let stopping = Instant::now();
    while !group.alive().is_empty() && stopping.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = group.alive();
    assert!(
        left.is_empty(),
        "{}",
        report(&format!(
            "the README leaves processes running after its last block: {left:?}"
        ))
    );
}

#[tokio::test]
async fn the_first_command_runs_the_demo_which_stops_on_ctrl_c() {
    let all = readme_blocks();
    let (block, _) = all
        .iter()
        .find(|(_, t)| *t == Treatment::Demo)
        .expect("the demo command");
    let arguments: Vec<String> = block
        .text
        .trim()
        .strip_prefix("cargo run --release --")
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let folder = tempfile::tempdir().unwrap();
    let database = TestDatabase::sqlite();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_setia"));
    command
        .args(&arguments)
        .current_dir(folder.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    for (key, _) in std::env::vars() {
        if key.starts_with("SETIA_") {
            command.env_remove(key);
        }
    }
    command
        .env("SETIA_DATABASE_URL", &database.url)
        .env("SETIA_LISTEN", "127.0.0.1:0");
    let mut demo = command.spawn().unwrap();
    let _group = Group { id: demo.id() };
    let stdout = demo.stdout.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(120), ready)
        .await
        .expect("the demo prints its dashboard URL within 120 s")
        .unwrap();
    let ready: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON line, got {line:?}"));
    let dashboard = ready["dashboard"].as_str().expect("the dashboard URL");
    let answer = reqwest::get(dashboard).await.unwrap();
    assert!(
        answer.status().is_success(),
        "{dashboard}: {}",
        answer.status()
    );

    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = tokio::task::spawn_blocking(move || demo.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C stops the demo cleanly");
}

#[tokio::test]
async fn the_walk_through_runs_against_a_temporary_database() {
    let folder = tempfile::tempdir().unwrap();
    let database = TestDatabase::sqlite();
    let listen = free_address();
    let script = script(&readme_blocks(), false);
    let path = folder.path().to_owned();
    let url = database.url.clone();
    tokio::task::spawn_blocking(move || {
        run_session(
            &path,
            script,
            &[(README_LISTEN, &listen)],
            &[("SETIA_DATABASE_URL", &url)],
        )
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    // What the walk-through says happened, read back from the database and the mailbox.
    let store = setia_store::connect(&database.url).await.unwrap();
    let merchants = store.list_merchants().await.unwrap();
    assert_eq!(merchants.len(), 1);
    let merchant = &merchants[0];
    assert_eq!(merchant.name.as_str(), "Toko Sejahtera");
    let order = store
        .order(
            &merchant.id,
            &setia_core::ExternalId::parse("INV-1001").unwrap(),
            chrono::Utc::now(),
        )
        .await
        .unwrap()
        .expect("order INV-1001");
    assert_eq!(order.status.as_str(), "paid", "{order:?}");
    let summary = store.ledger_summary(&merchant.id).await.unwrap();
    assert_eq!(summary.customers, 301, "{summary:?}");
    assert!(summary.points_entries > 0, "{summary:?}");
    assert!(store
        .latest_snapshot(&merchant.id, Some("month"))
        .await
        .unwrap()
        .is_some());
    let outbox = folder.path().join("session/setia-data/outbox");
    let written: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        written
            .iter()
            .any(|m| m.contains("To: \"Agus Wijaya\" <agus@example.co.id>")),
        "the thank-you for INV-1001 is in the outbox folder: {} messages",
        written.len()
    );
}

#[cfg(feature = "postgres-tests")]
mod postgres {
    use super::*;

    #[tokio::test]
    async fn the_walk_through_then_several_workers_on_one_postgresql_database() {
        let folder = tempfile::tempdir().unwrap();
        let sqlite = TestDatabase::sqlite();
        let postgres = TestDatabase::postgres().await;
        let listen = free_address();
        let script = script(&readme_blocks(), true);
        let path = folder.path().to_owned();
        let (sqlite_url, postgres_url) = (sqlite.url.clone(), postgres.url.clone());
        tokio::task::spawn_blocking(move || {
            run_session(
                &path,
                script,
                &[
                    (README_LISTEN, &listen),
                    (README_POSTGRES_URL, &postgres_url),
                ],
                &[("SETIA_DATABASE_URL", &sqlite_url)],
            )
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

        let store = setia_store::connect(&postgres.url).await.unwrap();
        let merchants = store.list_merchants().await.unwrap();
        assert_eq!(merchants.len(), 1, "the PostgreSQL section's merchant");
        let inbox = store
            .inbox_entries(
                &merchants[0].id,
                setia_store::PageRequest {
                    before: None,
                    limit: 500,
                },
            )
            .await
            .unwrap()
            .items;
        assert!(!inbox.is_empty(), "the sandbox push reached the inbox");
        let pending: Vec<_> = inbox.iter().filter(|e| e.state == "pending").collect();
        assert!(pending.is_empty(), "the workers left rows: {pending:?}");
    }
}

/// `bench/results.py`, which `bench/run.sh` renders bench/RESULTS.md with.
mod bench_results {
    use std::process::Command;

    fn renderer() -> String {
        format!("{}/bench/results.py", env!("CARGO_MANIFEST_DIR"))
    }

    /// Renders `results` and `runs` (tab-separated) and returns the exit code and the markdown.
    fn render(results: &str, runs: &str) -> (i32, String) {
        let folder = tempfile::tempdir().unwrap();
        let path = |name: &str| folder.path().join(name).display().to_string();
        std::fs::write(path("results.jsonl"), results).unwrap();
        std::fs::write(path("runs.tsv"), runs).unwrap();
        let output = Command::new("python3")
            .args([
                &renderer(),
                "--results",
                &path("results.jsonl"),
                "--runs",
                &path("runs.tsv"),
                "--out",
                &path("RESULTS.md"),
                "--date",
                "2026-11-27 05:00 UTC",
                "--commit",
                "abc1234",
                "--machine",
                "2 cores, 23.4 GiB of memory",
            ])
            .output()
            .unwrap();
        let written = std::fs::read_to_string(path("RESULTS.md")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            written,
            "it prints what it writes"
        );
        (output.status.code().unwrap(), written)
    }

    const INGEST: &str = r#"{"benchmark":"ingest","measure":"webhooks committed per second","unit":"req/s","setia":6531.2,"peer":"bare axum","peer_value":69765.0,"better":"higher","goal":">= 50% of the bare handler","met":false}
{"benchmark":"ingest","measure":"p99 latency at 1000 req/s","unit":"ms","setia":2.5,"peer":"bare axum","peer_value":10.0,"better":"lower","goal":"< 10 ms","met":true}
"#;
    const MAIL: &str = r#"{"benchmark":"mail","measure":"birthday offers enqueued and rendered","unit":"emails/s","setia":11580,"peer":null,"peer_value":null,"better":"higher","goal":"≥ 10,000 emails/s","met":true}
"#;

    #[test]
    fn the_ratio_is_above_one_when_setia_is_better_whichever_way_is_better() {
        let (code, markdown) = render(
            &format!("{INGEST}{MAIL}"),
            "ingest\t0\t151.3\nmail\t0\t20.0\n",
        );
        assert_eq!(code, 0, "{markdown}");
        assert!(markdown.contains("2026-11-27 05:00 UTC"), "{markdown}");
        assert!(markdown.contains("`abc1234`") && markdown.contains("2 cores, 23.4 GiB"));
        let row = |measure: &str| {
            markdown
                .lines()
                .find(|l| l.contains(measure))
                .unwrap_or_else(|| panic!("a row for {measure}: {markdown}"))
                .to_owned()
        };
        // Higher is better: setia / peer = 6531.2 / 69765 = 0.0936.
        assert_eq!(
            row("webhooks committed"),
            "| ingest | webhooks committed per second | higher | 6,531 req/s | bare axum: 69,765 req/s | 0.0936× | >= 50% of the bare handler | **no** |"
        );
        // Lower is better: peer / setia = 10 / 2.5 = 4.
        assert_eq!(
            row("p99 latency"),
            "| ingest | p99 latency at 1000 req/s | lower | 2.5 ms | bare axum: 10 ms | 4× | < 10 ms | yes |"
        );
        assert_eq!(
            row("birthday offers"),
            "| mail | birthday offers enqueued and rendered | higher | 11,580 emails/s | — | — | ≥ 10,000 emails/s | yes |"
        );
        assert!(markdown.contains("| ingest | 0 | 151 | 2 |"), "{markdown}");
        assert!(!markdown.contains("## Problems"), "{markdown}");
    }

    #[test]
    fn a_failed_silent_or_malformed_benchmark_is_reported_and_fails_the_run() {
        let malformed = r#"{"benchmark":"metrics","measure":"fit","unit":"s","setia":"fast","peer":null,"peer_value":null,"better":"lower","goal":"","met":null}
not json
"#;
        let (code, markdown) = render(
            &format!("{INGEST}{malformed}"),
            "ingest\t0\t151.3\nmail\t0\t20.0\nmetrics\t1\t3.0\n",
        );
        assert_eq!(code, 1, "{markdown}");
        assert!(
            markdown.contains("webhooks committed per second"),
            "the good rows are still there: {markdown}"
        );
        for problem in [
            "- mail exited 0 but reported no measure to BENCH_RESULTS",
            "- metrics failed (exit code 1)",
            "- results line 3 (metrics): setia is not a number",
            "- results line 4: not JSON",
        ] {
            assert!(markdown.contains(problem), "{problem}: {markdown}");
        }
    }

    #[test]
    fn its_doctests_pass() {
        let status = Command::new("python3")
            .args([&renderer(), "--self-test"])
            .status()
            .unwrap();
        assert!(status.success());
    }
}
