//! Bad input gets a clear 4xx with a stable code; V7's defects are fixed.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn missing_org_id_is_422_not_a_fake_409() {
    let app = spawn(Db::Sqlite).await;
    let mut body = template_body("gpt-4o");
    body.as_object_mut().unwrap().remove("org_id");
    let (s, v) = app.post("/api/prompt-templates", &body).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["code"], "VALIDATION_FAILED");
    assert_eq!(v["detail"][0]["loc"], json!(["body", "org_id"]));
    assert_eq!(v["detail"][0]["type"], "missing");
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_wrong_types_and_missing_fields_name_the_field() {
    let app = spawn(Db::Sqlite).await;
    let res = send(
        app.client
            .post(app.url("/api/prompt-templates"))
            .header("content-type", "application/json")
            .body("{\"org_id\": "),
    )
    .await;
    assert_eq!(res.status, 422);
    let v = res.body;
    assert_eq!(v["code"], "MALFORMED_JSON");

    let mut body = template_body("gpt-4o");
    body["country_set"] = json!(["DE", 7]);
    let (s, v) = app.post("/api/prompt-templates", &body).await;
    assert_eq!(s, 422);
    assert_eq!(
        v["detail"][0]["loc"],
        json!(["body", "country_set", 1]),
        "{v}"
    );

    let id = app.create(&template_body("gpt-4o")).await;
    let (s, v) = app
        .post(&format!("/api/prompt-templates/{id}/run"), &json!({}))
        .await;
    assert_eq!(s, 422);
    assert_eq!(
        v["detail"][0]["loc"],
        json!(["body", "rendered_prompt"]),
        "{v}"
    );
    let (s, v) = app
        .post(
            &format!("/api/prompt-templates/{id}/run"),
            &json!({"rendered_prompt": 5}),
        )
        .await;
    assert_eq!(s, 422, "{v}");

    let mut inf = template_body("gpt-4o");
    inf["inference_params"] = json!({"t": 1});
    let res = send(
        app.client
            .post(app.url("/api/prompt-templates"))
            .header("content-type", "application/json")
            .body(inf.to_string().replace("{\"t\":1}", "{\"t\":1e400}")),
    )
    .await;
    assert_eq!(res.status, 422, "non-finite numbers are rejected");
    app.stop().await;
}

#[tokio::test]
async fn oversize_bodies_are_413_and_wrong_content_types_415() {
    let app = spawn_with(Db::Sqlite, |a| a.max_body_bytes = 4096).await;
    let mut body = template_body("gpt-4o");
    body["user_prompt_template"] = json!("x".repeat(10_000));
    let (s, v) = app.post("/api/prompt-templates", &body).await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["detail"]["code"], "PAYLOAD_TOO_LARGE");
    let res = send(
        app.client
            .post(app.url("/api/prompt-templates"))
            .header("content-type", "text/plain")
            .body(template_body("gpt-4o").to_string()),
    )
    .await;
    assert_eq!(res.status, 415);
    // curl -d sends form-urlencoded: accepted when the body is JSON (V7 docs use it).
    let res = send(
        app.client
            .post(app.url("/api/prompt-templates"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(template_body("gpt-4o").to_string()),
    )
    .await;
    assert_eq!(res.status, 201);
    app.stop().await;
}

#[tokio::test]
async fn v7_mode_accepts_what_v7_accepted_and_strict_mode_refuses_it() {
    let loose = json!({"org_id": "o", "workspace_id": "w", "name": "n",
        "user_prompt_template": "", "model_id": "", "country_set": ["XX", "usa", "中国"],
        "inference_params": [1, 2, 3]});
    let app = spawn(Db::Sqlite).await;
    let (s, v) = app.post("/api/prompt-templates", &loose).await;
    assert_eq!(s, 201, "{v}");
    app.stop().await;
    let strict = spawn_with(Db::Sqlite, |a| a.validation = "strict".into()).await;
    let (s, v) = strict.post("/api/prompt-templates", &loose).await;
    assert_eq!(s, 422, "{v}");
    strict.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn(Db::Sqlite).await;
    let (s, v) = app.get("/nope").await;
    assert_eq!(s, 404);
    assert_eq!(v["detail"]["code"], "NOT_FOUND");
    // A known path with an unsupported method is 405, static segments win over `/{id}`.
    let (s, v) = app.get("/api/prompt-templates/check-duplicate").await;
    assert_eq!(s, 405, "{v}");
    assert_eq!(v["detail"]["code"], "METHOD_NOT_ALLOWED");
    let id = uuid::Uuid::new_v4();
    let a = app
        .send(
            app.client
                .put(app.url(&format!("/api/prompt-templates/{id}"))),
        )
        .await;
    assert_eq!(a.status, 405);
    assert_eq!(a.body["detail"]["code"], "METHOD_NOT_ALLOWED");
    app.stop().await;
}
