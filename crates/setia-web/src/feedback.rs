//! `GET|POST /f/{token}`: the page a feedback request's links open. GET shows the scale with
//! the score of the link chosen and a comment box, and records nothing (mail scanners
//! follow links); POST records the answer, or changes it while the link is valid (30 days).
//! A forged, expired or unknown token is a 404 that says nothing more; a score off the scale
//! or a comment too long is a 400 that says what is wrong and records nothing. No script, no
//! asset from another host: a plain form that works on any phone.

use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use chrono::Utc;
use serde::Deserialize;
use setia_core::engagement::FeedbackKind;
use setia_core::feedback::{FeedbackComment, FeedbackScore, MAX_COMMENT_CHARS};
use setia_core::mail_token::FeedbackToken;
use setia_store::engagement::{FeedbackRequest, NewAnswer};
use setia_store::mail::EmailLanguage;
use setia_store::StoreError;

use crate::unsubscribe::{
    escape, layout, link_text, public_page, try_again_page, Forms, MAX_TOKEN_TEXT,
};
use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/f/{token}", get(show).post(answer))
        .with_state(state)
}

/// What a request's page needs: the request, the merchant's name and language.
struct Verified {
    merchant: setia_core::MerchantId,
    request: FeedbackRequest,
    merchant_name: String,
    language: EmailLanguage,
    /// Where the alert of a complaint goes.
    report_emails: Vec<String>,
}

async fn verified(state: &AppState, token: &str) -> Result<Option<Verified>, StoreError> {
    let Ok(token) = FeedbackToken::parse(token) else {
        return Ok(None);
    };
    let Some(mail) = state.store.mail_merchant(token.merchant()).await? else {
        return Ok(None);
    };
    if !token.verify(&mail.secret, Utc::now()) {
        return Ok(None);
    }
    let request = state
        .store
        .feedback_request(token.merchant(), token.request())
        .await?;
    Ok(request.map(|request| Verified {
        merchant: token.merchant().clone(),
        request,
        merchant_name: mail.merchant.name,
        language: mail.language,
        report_emails: mail.merchant.report_emails,
    }))
}

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    score: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> Response {
    // A path that does not read is a link that leads nowhere, like a forged one; a query
    // that does not read preselects nothing.
    let token = link_text(path, MAX_TOKEN_TEXT).unwrap_or_default();
    let query = query.map(|Query(query)| query).unwrap_or_default();
    match verified(&state, &token).await {
        Ok(Some(found)) => {
            // The link's score is only preselected; an odd one preselects nothing.
            let chosen = query
                .score
                .as_deref()
                .and_then(|s| FeedbackScore::parse(found.request.kind, s).ok())
                .map(FeedbackScore::get)
                .or(found.request.answer.as_ref().map(|a| a.score));
            let comment = found
                .request
                .answer
                .as_ref()
                .and_then(|a| a.comment.clone());
            respond(
                StatusCode::OK,
                form_page(&found, chosen, comment.as_deref(), None),
            )
        }
        Ok(None) => not_found(),
        Err(error) => unavailable(error),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AnswerForm {
    score: String,
    comment: String,
}

async fn answer(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<AnswerForm>, FormRejection>,
) -> Response {
    let token = link_text(path, MAX_TOKEN_TEXT).unwrap_or_default();
    let found = match verified(&state, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(error) => return unavailable(error),
    };
    let english = found.language == EmailLanguage::English;
    // A body over the limit can only be a comment far too long: the page says so. Any other
    // body that is not the page's form answers nothing, and the page asks for a score again.
    let form = match form {
        Ok(Form(form)) => form,
        Err(too_large) if too_large.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                form_page(&found, None, None, Some(&comment_too_long(english))),
            );
        }
        Err(_) => AnswerForm::default(),
    };
    let kind = found.request.kind;
    let score = match FeedbackScore::parse(kind, &form.score) {
        Ok(score) => score,
        Err(_) => {
            let (low, high) = kind.scale();
            let message = if english {
                format!("Choose a score from {low} to {high}.")
            } else {
                format!("Pilih nilai dari {low} sampai {high}.")
            };
            return respond(
                StatusCode::BAD_REQUEST,
                form_page(&found, None, Some(&form.comment), Some(&message)),
            );
        }
    };
    let comment = match FeedbackComment::parse(&form.comment) {
        Ok(comment) => comment,
        Err(_) => {
            let message = comment_too_long(english);
            return respond(
                StatusCode::BAD_REQUEST,
                form_page(
                    &found,
                    Some(score.get()),
                    Some(&form.comment),
                    Some(&message),
                ),
            );
        }
    };
    let result = async {
        let program = state.store.engagement_program(&found.merchant).await?;
        state
            .store
            .record_feedback_answer(
                &found.merchant,
                NewAnswer {
                    request: found.request.id,
                    score,
                    comment: comment.as_ref(),
                    opens_complaint: score.alerts(kind, &program.feedback),
                    alert_to: &found.report_emails,
                },
                Utc::now(),
            )
            .await
    }
    .await;
    match result {
        Ok(Some(recorded)) => {
            if let Some(complaint) = recorded.opened_complaint {
                tracing::info!(merchant = %found.merchant, customer = %found.request.customer, complaint, "a low feedback score opened a complaint");
            }
            respond(StatusCode::OK, thanks_page(&found, &recorded.answer))
        }
        Ok(None) => not_found(),
        Err(error) => unavailable(error),
    }
}

fn comment_too_long(english: bool) -> String {
    if english {
        format!("The comment is too long or holds a control character: at most {MAX_COMMENT_CHARS} characters.")
    } else {
        format!("Komentar terlalu panjang atau berisi karakter kontrol: paling banyak {MAX_COMMENT_CHARS} karakter.")
    }
}

fn respond(status: StatusCode, body: String) -> Response {
    public_page(status, body, Forms::ToItself)
}

fn not_found() -> Response {
    respond(
        StatusCode::NOT_FOUND,
        layout(
            "id",
            "Tautan tidak berlaku / Link not valid",
            "<p>Tautan ulasan ini tidak berlaku atau sudah kedaluwarsa.</p>\
             <p>This feedback link is not valid or has expired.</p>",
        ),
    )
}

fn unavailable(error: StoreError) -> Response {
    tracing::error!(%error, "the feedback page failed");
    respond(StatusCode::SERVICE_UNAVAILABLE, try_again_page())
}

fn question(kind: FeedbackKind, english: bool, merchant: &str) -> String {
    match (kind, english) {
        (FeedbackKind::Csat, false) => {
            format!("Seberapa puas Anda dengan belanja terakhir Anda di <strong>{merchant}</strong>?")
        }
        (FeedbackKind::Csat, true) => {
            format!("How satisfied are you with your last purchase at <strong>{merchant}</strong>?")
        }
        (FeedbackKind::Nps, false) => format!(
            "Seberapa besar kemungkinan Anda merekomendasikan <strong>{merchant}</strong> kepada teman?"
        ),
        (FeedbackKind::Nps, true) => {
            format!("How likely are you to recommend <strong>{merchant}</strong> to a friend?")
        }
    }
}

/// The scale as radio buttons, a comment box and a send button.
fn form_page(
    found: &Verified,
    chosen: Option<u8>,
    comment: Option<&str>,
    error: Option<&str>,
) -> String {
    let english = found.language == EmailLanguage::English;
    let merchant = escape(&found.merchant_name);
    let (low, high) = found.request.kind.scale();
    let mut scale = String::new();
    for score in low..=high {
        let checked = if chosen == Some(score) {
            " checked"
        } else {
            ""
        };
        scale.push_str(&format!(
            "<label style=\"display:inline-block;margin:4px;padding:8px 12px;border:1px solid #d1d5db;\
             border-radius:6px;font-size:17px;\"><input type=\"radio\" name=\"score\" value=\"{score}\"{checked} required> {score}</label>"
        ));
    }
    let (low_label, high_label) = match (found.request.kind, english) {
        (FeedbackKind::Csat, false) => ("sangat tidak puas", "sangat puas"),
        (FeedbackKind::Csat, true) => ("very dissatisfied", "very satisfied"),
        (FeedbackKind::Nps, false) => ("tidak mungkin", "sangat mungkin"),
        (FeedbackKind::Nps, true) => ("not likely", "very likely"),
    };
    let error = error
        .map(|e| {
            format!(
                "<p role=\"alert\" style=\"color:#b91c1c;\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let (title, comment_label, send) = if english {
        ("Your feedback", "Anything to add? (optional)", "Send")
    } else {
        (
            "Ulasan Anda",
            "Ada yang ingin disampaikan? (opsional)",
            "Kirim",
        )
    };
    layout(
        found.language.as_str(),
        title,
        &format!(
            "<p>{question}</p>{error}<form method=\"post\">\
             <p>{scale}</p><p style=\"font-size:13px;color:#6b7280;\">{low}: {low_label} · {high}: {high_label}</p>\
             <p><label for=\"comment\">{comment_label}</label><br>\
             <textarea id=\"comment\" name=\"comment\" rows=\"4\" maxlength=\"{MAX_COMMENT_CHARS}\" \
             style=\"width:100%;font-size:15px;\">{comment}</textarea></p>\
             <button type=\"submit\" style=\"padding:10px 18px;font-size:15px;\">{send}</button></form>",
            question = question(found.request.kind, english, &merchant),
            comment = escape(comment.unwrap_or_default()),
        ),
    )
}

fn thanks_page(found: &Verified, answer: &setia_store::engagement::FeedbackAnswer) -> String {
    let english = found.language == EmailLanguage::English;
    let merchant = escape(&found.merchant_name);
    let comment = answer
        .comment
        .as_deref()
        .map(|c| {
            format!(
                "<blockquote style=\"white-space:pre-wrap;\">{}</blockquote>",
                escape(c)
            )
        })
        .unwrap_or_default();
    let (title, body, change) = if english {
        (
            "Thank you",
            format!("<p>Thank you! <strong>{merchant}</strong> received your score of <strong>{}</strong>.</p>", answer.score),
            "You can change your answer from the link in the email for 30 days.",
        )
    } else {
        (
            "Terima kasih",
            format!("<p>Terima kasih! <strong>{merchant}</strong> menerima nilai <strong>{}</strong> dari Anda.</p>", answer.score),
            "Anda dapat mengubah jawaban lewat tautan di email selama 30 hari.",
        )
    };
    layout(
        found.language.as_str(),
        title,
        &format!("{body}{comment}<p style=\"font-size:13px;color:#6b7280;\">{change}</p>"),
    )
}
