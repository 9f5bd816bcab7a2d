//! Fresh databases for tests (feature `testing`): a SQLite file in a temporary folder, or a
//! database of its own on the PostgreSQL server named by `SETIA_TEST_POSTGRES_URL`, dropped
//! when the value is dropped.

use std::time::{SystemTime, UNIX_EPOCH};

pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Folder(#[allow(dead_code)] tempfile::TempDir),
    PostgresDatabase { admin_url: String, name: String },
}

pub const POSTGRES_URL_VAR: &str = "SETIA_TEST_POSTGRES_URL";

impl TestDatabase {
    /// A SQLite URL for a file that does not exist yet, in a folder that does not either.
    pub fn sqlite() -> TestDatabase {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}/data/setia.db", folder.path().display());
        TestDatabase {
            url,
            cleanup: Cleanup::Folder(folder),
        }
    }

    /// A new, empty database on the test PostgreSQL server. Panics when
    /// `SETIA_TEST_POSTGRES_URL` is unset: a PostgreSQL run must never pass by skipping.
    pub async fn postgres() -> TestDatabase {
        let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "the PostgreSQL tests need {POSTGRES_URL_VAR}, \
                 e.g. postgres://postgres@127.0.0.1:5432/postgres"
            )
        });
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos();
        // Tests of one process start in the same instant: a counter keeps their names apart.
        static CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let serial = CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "setia_test_{}_{}_{serial}",
            std::process::id(),
            nanos % 10u128.pow(12)
        );
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("reach the test PostgreSQL server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create a test database");
        admin.close().await;
        let (server, _) = admin_url
            .rsplit_once('/')
            .expect("a URL ending in /DATABASE");
        TestDatabase {
            url: format!("{server}/{name}"),
            cleanup: Cleanup::PostgresDatabase { admin_url, name },
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::PostgresDatabase { admin_url, name } = &self.cleanup else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop may run inside a test's runtime, which cannot block on itself: use a thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = sqlx::PgPool::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop a test database: {error}");
        }
    }
}

/// Every `table.column` of the database at `url` holding `needle` in some row, compared
/// without case: text as it is, bodies (BLOB, BYTEA) as their bytes. What an erasure test
/// asks of the whole database rather than of the tables it thought of. Virtual tables are
/// passed by (SQLite's full-text index reads the customers table, which is searched; its
/// shadow tables are searched too).
pub async fn columns_containing(url: &str, needle: &str) -> Vec<String> {
    let needle = needle.to_lowercase();
    // The `table.column`s, of the (table, column, condition on `$1`) searches, that hold the
    // needle in some row; the same on both pools, which have no type in common.
    macro_rules! hits {
        ($pool:expr, $searches:expr) => {{
            let mut found = Vec::new();
            for (table, column, condition) in $searches {
                let sql = format!("SELECT EXISTS (SELECT 1 FROM \"{table}\" WHERE {condition})");
                let hit: bool = sqlx::query_scalar(&sql)
                    .bind(&needle)
                    .fetch_one(&$pool)
                    .await
                    .expect("search a column");
                if hit {
                    found.push(format!("{table}.{column}"));
                }
            }
            $pool.close().await;
            found
        }};
    }
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url)
            .await
            .expect("open the SQLite file");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .expect("list the tables");
        let mut searches = Vec::new();
        for table in tables {
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                .bind(&table)
                .fetch_all(&pool)
                .await
                .expect("list the columns");
            for column in columns {
                let condition = format!("instr(lower(CAST(\"{column}\" AS TEXT)), $1) > 0");
                searches.push((table.clone(), column, condition));
            }
        }
        hits!(pool, searches)
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("reach PostgreSQL");
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'bytea', 'json', 'jsonb') \
             ORDER BY table_name, column_name",
        )
        .fetch_all(&pool)
        .await
        .expect("list the columns");
        let searches = columns.into_iter().map(|(table, column, data_type)| {
            let value = if data_type == "bytea" {
                // Bytes outside ASCII as octal escapes: a body need not be UTF-8.
                format!("encode(\"{column}\", 'escape')")
            } else {
                format!("\"{column}\"::text")
            };
            let condition = format!("strpos(lower({value}), $1) > 0");
            (table, column, condition)
        });
        hits!(pool, searches)
    }
}
