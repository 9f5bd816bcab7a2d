//! `setia merchant`, `setia migrate`, configuration and `--help`.

use setia_core::ApiToken;
use setia_store::testing::TestDatabase;

use crate::support::{bare_command, stderr, Setia};

crate::on_every_backend!(
    merchants_are_created_and_listed_without_secrets,
    the_engagement_program_comes_from_toml_with_defaults,
    credentials_are_rotated_and_the_old_ones_stop_working,
);

async fn merchants_are_created_and_listed_without_secrets(setia: Setia) {
    let created = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Toko Demo",
        "--timezone",
        "Asia/Makassar",
        "--report-email",
        "ops@toko.id",
        "--sandbox",
    ]);
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("mer_"));
    assert_eq!(created["name"], "Toko Demo");
    assert_eq!(created["timezone"], "Asia/Makassar");
    assert_eq!(created["webhook_path"], format!("/webhooks/moota/{id}"));
    let secret = created["webhook_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    let token = created["api_token"].as_str().unwrap();

    let given = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Toko B",
        "--webhook-secret",
        "AElSnSQj",
    ]);
    assert_eq!(given["webhook_secret"], "AElSnSQj");
    assert_eq!(given["timezone"], "Asia/Jakarta");

    let listed = setia.json(&["merchant", "list"]);
    let listed_text = listed.to_string();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["sandbox"], true);
    assert!(!listed_text.contains(secret) && !listed_text.contains(token));

    // Only the token's hash is stored: it finds the merchant, and is not the token.
    let store = setia.store().await;
    let found = store
        .merchant_by_token(&ApiToken::presented(token).hash())
        .await
        .unwrap();
    assert_eq!(found.unwrap().id.as_str(), id);
    assert_ne!(ApiToken::presented(token).hash().as_str(), token);
}

async fn the_engagement_program_comes_from_toml_with_defaults(setia: Setia) {
    // A misspelt key, in a file given at creation: exit 2 naming it, no merchant.
    let misspelt = setia.write("typo.toml", "[feedback]\ndelay = 5\n");
    let refused = setia.run(&[
        "merchant",
        "create",
        "--name",
        "Toko",
        "--engagement",
        &misspelt,
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("typo.toml") && stderr(&refused).contains("`delay`"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(setia.json(&["merchant", "list"]), serde_json::json!([]));

    let nps = setia.write(
        "nps.toml",
        "marketing_cap_days = 7\n[feedback]\nkind = \"nps\"\n",
    );
    let created = setia.json(&["merchant", "create", "--name", "Toko", "--engagement", &nps]);
    let id = created["id"].as_str().unwrap();
    let other = setia.json(&["merchant", "create", "--name", "Other"]);

    let server = setia.serve();
    let client = reqwest::Client::new();
    let program = |token: String| {
        let request = client
            .get(server.url("/api/v1/engagement"))
            .bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let shown = program(created["api_token"].as_str().unwrap().into()).await;
    assert_eq!(
        shown,
        serde_json::json!({"marketing_cap_days": 7, "feedback": {"enabled": true, "kind": "nps",
            "delay_days": 3, "resurvey_days": 90, "reminder": true, "alert_at_or_below": 6},
            "winback": {"enabled": false, "p_alive_below": 0.5, "overdue_factor": 2.0,
            "min_purchases": 2, "steps": [{"day": 0, "voucher": false}, {"day": 7, "voucher": true}],
            "voucher_percent": 10, "voucher_days": 14, "cooldown_days": 90, "holdout_percent": 10},
            "referral": {"enabled": false, "advocate_points": 200, "friend_voucher_percent": 10,
            "min_first_order_rupiah": 100000, "max_rewards_per_month": 10, "hold_days": 7},
            "perks": {"enabled": true, "nudge_within_percent": 20,
            "member": {"title": "Member", "perks": []},
            "silver": {"title": "Silver", "perks": [], "entry_points": 0, "entry_voucher_percent": null},
            "gold": {"title": "Gold", "perks": [], "entry_points": 0, "entry_voucher_percent": null}},
            "campaigns": {"holdout_percent": 10, "result_days": 14}}),
        "keys left out keep their defaults, the NPS alert level among them"
    );
    let defaults = program(other["api_token"].as_str().unwrap().into()).await;
    assert_eq!(defaults["marketing_cap_days"], 3);
    assert_eq!(defaults["feedback"]["kind"], "csat");
    assert_eq!(defaults["feedback"]["alert_at_or_below"], 2);

    // Replaced later; a bad value changes nothing.
    let out_of_scale = setia.write("bad.toml", "[feedback]\nalert_at_or_below = 9\n");
    let refused = setia.run(&["merchant", "engagement", "--merchant", id, &out_of_scale]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("feedback.alert_at_or_below"));
    let csat = setia.write("csat.toml", "[feedback]\nenabled = false\n");
    let replaced = setia.json(&["merchant", "engagement", "--merchant", id, &csat]);
    assert_eq!(
        (
            &replaced["marketing_cap_days"],
            &replaced["feedback"]["enabled"]
        ),
        (&serde_json::json!(3), &serde_json::json!(false))
    );
    let shown = program(created["api_token"].as_str().unwrap().into()).await;
    assert_eq!(shown, replaced, "the API shows what the command printed");
    let unknown = setia.run(&["merchant", "engagement", "--merchant", "mer_nobody", &csat]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn bad_merchant_flags_exit_2_and_create_nothing() {
    let setia = Setia::on(TestDatabase::sqlite());
    for (flags, named) in [
        (&["--name", " "][..], "--name"),
        (
            &["--name", "A", "--timezone", "Asia/Bandung"][..],
            "--timezone",
        ),
        (
            &["--name", "A", "--webhook-secret", "short"][..],
            "--webhook-secret",
        ),
        (
            &["--name", "A", "--report-email", "ops"][..],
            "--report-email",
        ),
    ] {
        let output = setia
            .command()
            .args(["merchant", "create"])
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flags:?}");
        assert!(
            stderr(&output).contains(named),
            "{flags:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(setia.json(&["merchant", "list"]), serde_json::json!([]));
}

#[test]
fn the_default_database_is_created_with_its_folder() {
    let folder = tempfile::tempdir().unwrap();
    let output = bare_command(folder.path()).arg("migrate").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(folder.path().join("setia-data/setia.db").is_file());
}

#[test]
fn settings_come_from_file_then_environment_then_flags() {
    let folder = tempfile::tempdir().unwrap();
    let path = |name: &str| folder.path().join(name).display().to_string();
    let config = folder.path().join("setia.toml");
    std::fs::write(
        &config,
        format!("database_url = \"sqlite://{}\"\n", path("from-file.db")),
    )
    .unwrap();
    let run = |command: &mut assert_cmd::Command| {
        let output = command.arg("migrate").output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    };
    run(bare_command(folder.path()).arg("--config").arg(&config));
    assert!(folder.path().join("from-file.db").is_file());
    run(bare_command(folder.path())
        .env("SETIA_CONFIG", &config)
        .env(
            "SETIA_DATABASE_URL",
            format!("sqlite://{}", path("from-env.db")),
        ));
    assert!(folder.path().join("from-env.db").is_file());
    run(bare_command(folder.path())
        .env(
            "SETIA_DATABASE_URL",
            format!("sqlite://{}", path("from-env.db")),
        )
        .arg("--database-url")
        .arg(format!("sqlite://{}", path("from-flag.db"))));
    assert!(folder.path().join("from-flag.db").is_file());

    std::fs::write(&config, "databse_url = \"sqlite://typo.db\"\n").unwrap();
    let output = bare_command(folder.path())
        .arg("--config")
        .arg(&config)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("databse_url"),
        "{}",
        stderr(&output)
    );
    let output = bare_command(folder.path())
        .args(["--config", "missing.toml", "migrate"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("missing.toml"));
}

#[test]
fn help_documents_every_command() {
    let folder = tempfile::tempdir().unwrap();
    let top = bare_command(folder.path()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&top.stdout).into_owned();
    for command in ["migrate", "merchant", "customers", "transactions"] {
        assert!(text.contains(command), "--help lacks {command}");
    }
    for path in [
        &["migrate"][..],
        &["merchant", "create"],
        &["merchant", "list"],
        &["customers", "import"],
        &["transactions", "import"],
    ] {
        let output = bare_command(folder.path())
            .args(path)
            .arg("--help")
            .output()
            .unwrap();
        assert!(output.status.success(), "{path:?} --help");
        assert!(!output.stdout.is_empty());
    }
    // --help touches no database.
    assert!(!folder.path().join("setia-data").exists());
}

async fn credentials_are_rotated_and_the_old_ones_stop_working(setia: Setia) {
    let secret_file = setia.write("secret.txt", "from-a-file-9f\n");
    let created = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Toko Bocor",
        "--webhook-secret-file",
        &secret_file,
    ]);
    assert_eq!(created["webhook_secret"], "from-a-file-9f");
    let id = created["id"].as_str().unwrap().to_owned();
    let old_token = created["api_token"].as_str().unwrap().to_owned();
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-worker"], &[]);
    let dash = crate::dashboard::Dash::login(&server, &old_token).await;
    assert_eq!(dash.get("/dashboard/overview").await.0, 200);

    // Refused, and nothing rotated: no flag, two secrets, a secret file that is not one,
    // a merchant that does not exist.
    let empty = setia.write("empty.txt", "\n");
    for (args, says) in [
        (vec!["--merchant", id.as_str()], "required"),
        (
            vec![
                "--merchant",
                id.as_str(),
                "--webhook-secret",
                "--webhook-secret-file",
                &secret_file,
            ],
            "cannot be used with",
        ),
        (
            vec![
                "--merchant",
                id.as_str(),
                "--api-token",
                "--webhook-secret-file",
                &empty,
            ],
            "empty.txt",
        ),
        (
            vec!["--merchant", "mer_00000000000000000000", "--api-token"],
            "mer_00000000000000000000",
        ),
    ] {
        let output = setia.run(&[&["merchant", "rotate"][..], &args].concat());
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(
        dash.get("/dashboard/overview").await.0,
        200,
        "nothing rotated"
    );

    let rotated = setia.json(&[
        "merchant",
        "rotate",
        "--merchant",
        &id,
        "--api-token",
        "--webhook-secret",
    ]);
    assert_eq!(rotated["id"], id.as_str());
    assert_eq!(rotated["sessions_ended"], 1);
    let new_token = rotated["api_token"].as_str().unwrap();
    let new_secret = rotated["webhook_secret"].as_str().unwrap();
    assert_ne!(new_token, old_token);
    assert_eq!(new_secret.len(), 64);

    // The old token and its session are gone; the new token works.
    let api = reqwest::Client::new();
    let status = |token: &str| {
        api.get(server.url("/api/v1/metrics"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(status(&old_token).await.unwrap().status(), 401);
    assert_ne!(status(new_token).await.unwrap().status(), 401);
    let (code, _) = dash.get("/dashboard/overview").await;
    assert_eq!(code, 303, "the old session sends to the login page");
    let listed = setia.json(&["merchant", "list"]).to_string();
    assert!(!listed.contains(new_token) && !listed.contains(new_secret));

    // A server that starts now takes the new secret only.
    let fresh = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-worker"], &[]);
    let body = b"[]".to_vec();
    for (secret, expected) in [("from-a-file-9f", 401), (new_secret, 200)] {
        let signature =
            setia_core::moota::sign(&setia_core::WebhookSecret::parse(secret).unwrap(), &body);
        let response = api
            .post(fresh.url(&format!("/webhooks/moota/{id}")))
            .header("Signature", signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{secret}");
    }

    // Only the secret, from a file: the API token stays.
    let file = setia.write("moota-secret.txt", "set-in-moota-42");
    let only_secret = setia.json(&[
        "merchant",
        "rotate",
        "--merchant",
        &id,
        "--webhook-secret-file",
        &file,
    ]);
    assert_eq!(only_secret["webhook_secret"], "set-in-moota-42");
    assert!(only_secret.get("api_token").is_none());
    assert_eq!(only_secret["sessions_ended"], 0);
    assert_ne!(status(new_token).await.unwrap().status(), 401);
}
