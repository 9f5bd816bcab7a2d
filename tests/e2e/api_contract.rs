//! The JSON API against its own OpenAPI document: every query string a listing takes is
//! documented with its bounds, and one that does not read is refused in the API's JSON
//! error shape, as a client generated from the document expects.

use serde_json::Value;

use crate::support::Setia;

crate::on_every_backend!(a_query_string_that_does_not_read_is_a_documented_json_400);

async fn a_query_string_that_does_not_read_is_a_documented_json_400(setia: Setia) {
    let created = setia.create_merchant("Toko Kueri");
    let token = created["api_token"].as_str().unwrap().to_owned();
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-worker"], &[]);
    let client = reqwest::Client::new();
    let doc: Value = client
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let mut probed = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let query: Vec<&Value> = operation["parameters"]
                .as_array()
                .map(|all| all.iter().filter(|p| p["in"] == "query").collect())
                .unwrap_or_default();
            if query.is_empty() {
                continue;
            }
            assert_eq!(method, "get", "{path}: a query string on a {method}");
            assert!(
                operation["responses"].get("400").is_some(),
                "{path} takes a query string but documents no 400"
            );
            for parameter in &query {
                if parameter["name"] == "limit" {
                    let schema = &parameter["schema"];
                    assert_eq!(schema["minimum"].as_f64(), Some(1.0), "{path}: {schema}");
                    assert!(schema["maximum"].as_f64().is_some(), "{path}: {schema}");
                }
            }

            // The same parameter twice does not read into one value.
            let name = query[0]["name"].as_str().unwrap();
            let concrete = path
                .split('/')
                .map(|part| if part.starts_with('{') { "probe" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            let response = client
                .get(server.url(&format!("{concrete}?{name}=1&{name}=2")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{path}");
            assert_eq!(
                response.headers()["content-type"],
                "application/json",
                "{path}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "bad_request", "{path}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("duplicate field `{name}`")),
                "{path}: {message}"
            );
            probed += 1;
        }
    }
    assert!(probed >= 14, "only {probed} listings take a query string");
}
