//! The JSON API against its own OpenAPI document: every query string a listing takes is
//! documented with its bounds, and whatever the API refuses before a handler runs (a query
//! string or path that does not read, a method a route does not take) comes in the API's
//! JSON error shape, as a client generated from the document expects. (A body over the limit:
//! `setia-web`'s `error::tests`.)

use serde_json::Value;

use crate::support::Setia;

crate::on_every_backend!(every_refusal_is_json_and_every_query_string_is_documented);

async fn every_refusal_is_json_and_every_query_string_is_documented(setia: Setia) {
    let created = setia.create_merchant("Toko Kueri");
    let token = created["api_token"].as_str().unwrap().to_owned();
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-worker"], &[]);
    let client = reqwest::Client::new();
    let doc = server.openapi().await;

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

    // Refused before any handler (a path segment that is not UTF-8, a method the route does
    // not take): the JSON shape, with its own status and code.
    for (request, status, code) in [
        (
            client.get(server.url("/api/v1/customers/%FF%FE")),
            400,
            "bad_request",
        ),
        (
            client.delete(server.url("/api/v1/customers")),
            405,
            "method_not_allowed",
        ),
    ] {
        let response = request.bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), status, "{code}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{code}"
        );
        if status == 405 {
            assert!(
                response.headers().contains_key("allow"),
                "405 keeps its Allow header"
            );
        }
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{body}"
        );
    }
}
