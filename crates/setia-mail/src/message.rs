//! Rendered parts to a MIME message: text and HTML alternatives (the HTML with its inline
//! chart), a stable Message-ID, and RFC 8058 one-click unsubscribe headers on customer mail.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use crate::templates::RenderedEmail;

const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

/// An image shown inside the HTML part (`<img src="cid:…">`).
#[derive(Debug, Clone)]
pub struct InlineImage {
    pub content_id: String,
    pub png: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Outgoing {
    pub from: Mailbox,
    pub to: Mailbox,
    pub message_id: String,
    pub rendered: RenderedEmail,
    /// The one-click unsubscribe URL (customer mail).
    pub unsubscribe_url: Option<String>,
    pub image: Option<InlineImage>,
}

#[derive(Debug, thiserror::Error)]
#[error("building the message: {0}")]
pub struct BuildError(#[from] lettre::error::Error);

/// `<{merchant}.{outbox id}@{domain}>`: the same on every attempt at one outbox row, so a
/// message sent twice (at-least-once) is recognisably the same message.
pub fn message_id(merchant: &str, outbox_id: i64, domain: &str) -> String {
    format!("<{merchant}.{outbox_id}@{domain}>")
}

pub fn build(outgoing: Outgoing) -> Result<Message, BuildError> {
    let text = SinglePart::plain(outgoing.rendered.text);
    let html = SinglePart::html(outgoing.rendered.html);
    let html = match outgoing.image {
        None => MultiPart::related().singlepart(html),
        Some(image) => MultiPart::related().singlepart(html).singlepart(
            Attachment::new_inline(image.content_id).body(
                image.png,
                ContentType::parse("image/png").expect("image/png is a MIME type"),
            ),
        ),
    };
    let body = MultiPart::alternative().singlepart(text).multipart(html);
    let mut message = Message::builder()
        .from(outgoing.from)
        .to(outgoing.to)
        .subject(outgoing.rendered.subject)
        .message_id(Some(outgoing.message_id))
        .date_now()
        .multipart(body)?;
    let headers = message.headers_mut();
    headers.insert_raw(HeaderValue::new(AUTO_SUBMITTED, "auto-generated".into()));
    if let Some(url) = outgoing.unsubscribe_url {
        headers.insert_raw(HeaderValue::new(LIST_UNSUBSCRIBE, format!("<{url}>")));
        headers.insert_raw(HeaderValue::new(
            LIST_UNSUBSCRIBE_POST,
            "List-Unsubscribe=One-Click".into(),
        ));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(unsubscribe: Option<&str>, image: bool) -> Outgoing {
        Outgoing {
            from: "Toko <noreply@toko.example>".parse().unwrap(),
            to: "siti@example.co.id".parse().unwrap(),
            message_id: message_id("mer_x", 7, "toko.example"),
            rendered: RenderedEmail {
                subject: "Terima kasih, Siti".into(),
                text: "Total Rp 1.250.000".into(),
                html: "<p>Total Rp 1.250.000</p>".into(),
            },
            unsubscribe_url: unsubscribe.map(str::to_owned),
            image: image.then(|| InlineImage {
                content_id: "chart@setia".into(),
                png: b"\x89PNG fake".to_vec(),
            }),
        }
    }

    #[test]
    fn customer_mail_carries_one_click_unsubscribe_and_a_stable_id() {
        let message = build(outgoing(Some("https://setia.example/u/tok"), false)).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains("Message-ID: <mer_x.7@toko.example>\r\n"),
            "{text}"
        );
        assert!(text.contains("List-Unsubscribe: <https://setia.example/u/tok>\r\n"));
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(text.contains("Content-Type: text/html; charset=utf-8"));
    }

    #[test]
    fn merchant_mail_has_no_unsubscribe_and_may_carry_an_inline_image() {
        let message = build(outgoing(None, true)).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(!text.contains("List-Unsubscribe"));
        assert!(text.contains("multipart/related"));
        assert!(text.contains("Content-ID: <chart@setia>"));
        assert!(text.contains("Content-Type: image/png"));
    }
}
