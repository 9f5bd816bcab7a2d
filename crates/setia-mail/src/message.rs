//! Rendered parts to a MIME message: text and HTML alternatives (the HTML with its inline
//! chart), a stable Message-ID, and RFC 8058 one-click unsubscribe headers on customer mail.

use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
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
    let text = SinglePart::plain(text_body(&outgoing.rendered.text));
    let html = SinglePart::html(text_body(&outgoing.rendered.html));
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
    // Given, so that lettre does not parse it back out of the From and To headers.
    let envelope = Envelope::new(
        Some(outgoing.from.email.clone()),
        vec![outgoing.to.email.clone()],
    )?;
    let mut message = Message::builder()
        .envelope(envelope)
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

/// The longest line RFC 5322 (§2.1.1) allows in a message, without its CRLF.
const MAX_LINE: usize = 998;

/// A text or HTML part's body: sent as it is (7bit) when it is ASCII and no line is longer
/// than RFC 5322 allows, as rendered parts nearly always are; otherwise lettre's choice of
/// quoted-printable or base64. lettre would quote-print every part with a line of 76
/// characters or more (any HTML line with a link), and that encoding was the largest part
/// of rendering a message.
fn text_body(text: &str) -> Body {
    let text = crlf_line_endings(text);
    if is_seven_bit(&text) {
        Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text)
    }
}

/// ASCII without NUL or a bare CR, in CRLF lines of at most [`MAX_LINE`] octets.
fn is_seven_bit(text: &str) -> bool {
    text.is_ascii()
        && !text.contains('\0')
        && text
            .split("\r\n")
            .all(|line| line.len() <= MAX_LINE && !line.contains('\r'))
}

/// `text` with every line ending CRLF, as a message has them: lettre makes that change only
/// in the bodies it encodes itself, not in one handed to it encoded.
fn crlf_line_endings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    for line in text.split_inclusive('\n') {
        match line.strip_suffix('\n') {
            Some(body) => {
                out.push_str(body.strip_suffix('\r').unwrap_or(body));
                out.push_str("\r\n");
            }
            None => out.push_str(line),
        }
    }
    out
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
    fn line_endings_become_crlf_once() {
        assert_eq!(crlf_line_endings("a\nb\r\nc"), "a\r\nb\r\nc");
        assert_eq!(crlf_line_endings("\n\n"), "\r\n\r\n");
        assert_eq!(crlf_line_endings("é\r\n"), "é\r\n");
        assert_eq!(crlf_line_endings(""), "");
        let mut message = outgoing(None, false);
        message.rendered.text = "Halo\nSiti\r\n".into();
        let text = String::from_utf8(build(message).unwrap().formatted()).unwrap();
        assert!(text.contains("Halo\r\nSiti\r\n"), "{text}");
        assert!(!text.contains("\r\r"), "{text}");
    }

    #[test]
    fn ascii_parts_go_as_they_are_and_the_rest_quoted() {
        let long_link = format!(
            "<a href=\"https://setia.example/u/{}\">x</a>",
            "t".repeat(200)
        );
        let mut message = outgoing(None, false);
        message.rendered.text = format!("Halo Siti\n{long_link}\n");
        message.rendered.html = "<p>Halo Ságu</p>".into();
        let text = String::from_utf8(build(message).unwrap().formatted()).unwrap();
        let (plain, html) = text.split_once("Content-Type: text/html").unwrap();
        assert!(plain.contains("Content-Transfer-Encoding: 7bit"), "{text}");
        assert!(plain.contains(&format!("\r\n{long_link}\r\n")), "{text}");
        assert!(
            html.contains("Content-Transfer-Encoding: quoted-printable"),
            "{text}"
        );
        assert!(html.contains("S=C3=A1gu"), "{text}");
        assert!(
            text.lines().all(|line| line.len() <= MAX_LINE + 1),
            "{text}"
        );
    }

    #[test]
    fn seven_bit_is_ascii_in_short_crlf_lines() {
        assert!(is_seven_bit("a\r\nb"));
        assert!(is_seven_bit(&"x".repeat(MAX_LINE)));
        assert!(!is_seven_bit(&"x".repeat(MAX_LINE + 1)));
        assert!(!is_seven_bit("a\rb"));
        assert!(!is_seven_bit("a\0b"));
        assert!(!is_seven_bit("Ságu"));
    }

    #[test]
    fn the_envelope_is_the_sender_and_the_recipient() {
        let message = build(outgoing(None, false)).unwrap();
        let envelope = message.envelope();
        assert_eq!(envelope.from().unwrap().to_string(), "noreply@toko.example");
        let to: Vec<String> = envelope.to().iter().map(ToString::to_string).collect();
        assert_eq!(to, ["siti@example.co.id"]);
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
