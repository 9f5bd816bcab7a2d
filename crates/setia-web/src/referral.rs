//! `GET /r/{code}`: the page a customer's personal referral link opens for a friend. It says
//! who invites them, to which shop, and what the shop offers on a first order (the
//! `[referral]` program's discount and minimum), with the code to give at checkout shown big.
//!
//! A GET shows and changes nothing (chat apps and mail scanners fetch links); no other method
//! is served (405). A malformed, oversized, unknown or forged code, a shop whose program is
//! off and an advocate who withdrew consent or unsubscribed are one 404 that says nothing
//! more and never repeats the input. Like the other public link pages: no script, nothing
//! from another host, readable on a phone, in the shop's email language.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use setia_core::engagement::ReferralSettings;
use setia_core::referral::ReferralCode;
use setia_core::{format_rupiah, Money};
use setia_store::mail::EmailLanguage;
use setia_store::StoreError;

use crate::unsubscribe::{escape, layout, link_text, public_page, try_again_page, Forms};
use crate::AppState;

/// Longer than any code (8 characters, perhaps with spaces around): anything longer is not
/// read at all.
const MAX_CODE_TEXT: usize = 32;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/r/{code}", get(show))
        .with_state(state)
}

/// The base of public links: `SETIA_PUBLIC_URL` without a trailing slash, or the address
/// emails use when it is not set.
pub(crate) fn public_base(configured: Option<&str>) -> String {
    configured
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .unwrap_or(setia_mail::DEFAULT_PUBLIC_URL)
        .trim_end_matches('/')
        .to_owned()
}

/// What the page shows.
struct Offer {
    code: ReferralCode,
    shop: String,
    /// The advocate's first name, when the shop gave a name.
    advocate: Option<String>,
    language: EmailLanguage,
    sandbox: bool,
    percent: u32,
    minimum: Money,
}

impl Offer {
    fn new(
        code: ReferralCode,
        shop: String,
        advocate_name: Option<&str>,
        language: EmailLanguage,
        sandbox: bool,
        settings: &ReferralSettings,
    ) -> Offer {
        Offer {
            code,
            shop,
            advocate: advocate_name
                .and_then(|name| name.split_whitespace().next())
                .map(str::to_owned),
            language,
            sandbox,
            percent: settings.friend_voucher_percent,
            minimum: settings.min_first_order(),
        }
    }
}

/// The offer behind a code, if the link is live: the code is issued, its shop's program is
/// on, and its advocate still takes part.
async fn offer(state: &AppState, code: ReferralCode) -> Result<Option<Offer>, StoreError> {
    let Some(link) = state.store.referral_link(&code).await? else {
        return Ok(None);
    };
    if !link.advocate_active {
        return Ok(None);
    }
    let program = state.store.engagement_program(&link.merchant).await?;
    if !program.referral.enabled {
        return Ok(None);
    }
    // Only for the language: a shop with codes has its mail secret already (codes are
    // derived from it), so this reads and writes nothing new.
    let Some(mail) = state.store.mail_merchant(&link.merchant).await? else {
        return Ok(None);
    };
    Ok(Some(Offer::new(
        code,
        link.merchant_name,
        link.advocate_name.as_deref(),
        mail.language,
        link.sandbox,
        &program.referral,
    )))
}

async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(code) = link_text(path, MAX_CODE_TEXT).and_then(|t| ReferralCode::parse(&t).ok())
    else {
        return not_found();
    };
    let found = offer(&state, code).await;
    link_response(found, "referral", page, not_found)
}

/// What a public link page answers: the page of what the link names, `missing` when it names
/// nothing, a try-again page when the store failed.
pub(crate) fn link_response<T>(
    found: Result<Option<T>, StoreError>,
    what: &str,
    page: impl FnOnce(&T) -> String,
    missing: fn() -> Response,
) -> Response {
    match found {
        Ok(Some(found)) => public_page(StatusCode::OK, page(&found), Forms::None),
        Ok(None) => missing(),
        Err(error) => {
            tracing::error!(%error, "the {what} page failed");
            public_page(
                StatusCode::SERVICE_UNAVAILABLE,
                try_again_page(),
                Forms::None,
            )
        }
    }
}

fn not_found() -> Response {
    link_not_found(
        "<p>Tautan undangan ini tidak berlaku.</p>\
         <p>This invitation link is not valid.</p>",
    )
}

/// The 404 page of a public link that names nothing: `body` says, in both languages, which
/// kind of link it was.
pub(crate) fn link_not_found(body: &str) -> Response {
    public_page(
        StatusCode::NOT_FOUND,
        layout("id", "Tautan tidak berlaku / Link not valid", body),
        Forms::None,
    )
}

fn page(offer: &Offer) -> String {
    let english = offer.language == EmailLanguage::English;
    let shop = escape(&offer.shop);
    let advocate = offer.advocate.as_deref().map(escape);
    let code = escape(offer.code.as_str());
    let minimum = format_rupiah(offer.minimum);
    let has_minimum = offer.minimum > Money::ZERO;
    let title = match (&advocate, english) {
        (Some(name), false) => format!("{name} mengundang Anda ke {shop}"),
        (Some(name), true) => format!("{name} invites you to {shop}"),
        (None, false) => format!("Anda diundang ke {shop}"),
        (None, true) => format!("You are invited to {shop}"),
    };
    let who = match (&advocate, english) {
        (Some(name), _) => format!("<strong>{name}</strong>"),
        (None, false) => "Teman Anda".to_owned(),
        (None, true) => "A friend".to_owned(),
    };
    let invites = if english {
        format!("{who} invites you to <strong>{shop}</strong>")
    } else {
        format!("{who} mengundang Anda ke <strong>{shop}</strong>")
    };
    let percent = offer.percent;
    let offer_text = match (percent > 0, has_minimum, english) {
        (true, true, false) => format!(
            ": diskon <strong>{percent}%</strong> untuk pesanan pertama Anda minimal <strong>{minimum}</strong>"
        ),
        (true, false, false) => format!(": diskon <strong>{percent}%</strong> untuk pesanan pertama Anda"),
        (true, true, true) => format!(
            ": <strong>{percent}% off</strong> your first order of at least <strong>{minimum}</strong>"
        ),
        (true, false, true) => format!(": <strong>{percent}% off</strong> your first order"),
        (false, _, _) => String::new(),
    };
    let use_code = if english {
        format!(" — use code <strong>{code}</strong> at checkout.")
    } else {
        format!(" — pakai kode <strong>{code}</strong> saat checkout.")
    };
    let (code_label, small_print) = match (&advocate, english) {
        (Some(name), false) => (
            "Kode Anda",
            format!("{shop} memberi diskon saat Anda memesan dengan kode ini; {name} mendapat terima kasih setelah transfer pertama Anda diterima."),
        ),
        (Some(name), true) => (
            "Your code",
            format!("{shop} gives the discount when you order with this code; {name} is thanked once your first transfer has arrived."),
        ),
        (None, false) => (
            "Kode Anda",
            format!("{shop} memberi diskon saat Anda memesan dengan kode ini."),
        ),
        (None, true) => (
            "Your code",
            format!("{shop} gives the discount when you order with this code."),
        ),
    };
    let sandbox = if !offer.sandbox {
        String::new()
    } else if english {
        "<p role=\"note\" style=\"background:#fef3c7;color:#92400e;padding:8px 12px;border-radius:6px;\">\
         This is a test shop (sandbox): nothing here is a real purchase or a real discount.</p>"
            .to_owned()
    } else {
        "<p role=\"note\" style=\"background:#fef3c7;color:#92400e;padding:8px 12px;border-radius:6px;\">\
         Ini toko uji coba (sandbox): tidak ada pembelian atau diskon sungguhan di sini.</p>"
            .to_owned()
    };
    layout(
        offer.language.as_str(),
        &title,
        &format!(
            "{sandbox}<p style=\"font-size:17px;\">{invites}{offer_text}{use_code}</p>\
             <p style=\"margin:24px 0 4px;font-size:13px;color:#6b7280;\">{code_label}</p>\
             <p data-code style=\"margin:0 0 24px;padding:14px 12px;border:2px dashed #0f766e;border-radius:8px;\
             text-align:center;font:700 34px/1.2 ui-monospace,Menlo,Consolas,monospace;letter-spacing:4px;\
             color:#0f766e;overflow-wrap:anywhere;\">{code}</p>\
             <p style=\"font-size:13px;color:#6b7280;\">{small_print}</p>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(name: Option<&str>, language: EmailLanguage, sandbox: bool) -> Offer {
        Offer::new(
            ReferralCode::parse("ABCD2345").unwrap(),
            "Toko <i>Kopi</i> & Co".into(),
            name,
            language,
            sandbox,
            &ReferralSettings::default(),
        )
    }

    #[test]
    fn the_page_states_the_offer_in_the_shops_language() {
        let html = page(&offer(Some("Ani Lestari"), EmailLanguage::English, false));
        assert!(html.contains("<html lang=\"en\">"));
        assert!(
            html.contains("<strong>Ani</strong> invites you to <strong>Toko &lt;i&gt;Kopi&lt;/i&gt; &amp; Co</strong>: <strong>10% off</strong> your first order of at least <strong>Rp 100.000</strong> — use code <strong>ABCD2345</strong> at checkout."),
            "{html}"
        );
        assert!(!html.contains("Lestari"), "the first name only");
        assert!(!html.contains("sandbox"));
        let html = page(&offer(None, EmailLanguage::Indonesian, true));
        assert!(html.contains("Teman Anda mengundang Anda ke"), "{html}");
        assert!(html.contains("diskon <strong>10%</strong> untuk pesanan pertama Anda minimal <strong>Rp 100.000</strong>"));
        assert!(html.contains("toko uji coba (sandbox)"));
    }

    #[test]
    fn names_are_escaped_everywhere() {
        let html = page(&offer(
            Some("<script>x</script>"),
            EmailLanguage::English,
            false,
        ));
        assert!(!html.contains("<script") && !html.contains("<i>"), "{html}");
        assert!(html.contains("<title>&lt;script&gt;x&lt;/script&gt; invites you"));
    }

    #[test]
    fn no_discount_and_no_minimum_are_left_out() {
        let settings = ReferralSettings {
            friend_voucher_percent: 0,
            min_first_order_rupiah: 0,
            ..ReferralSettings::default()
        };
        let mut shown = offer(Some("Ani"), EmailLanguage::English, false);
        shown.percent = settings.friend_voucher_percent;
        shown.minimum = Money::ZERO;
        let html = page(&shown);
        assert!(html.contains(
            "invites you to <strong>Toko &lt;i&gt;Kopi&lt;/i&gt; &amp; Co</strong> — use code"
        ));
        assert!(!html.contains("off"));
    }

    #[test]
    fn public_links_have_one_slash() {
        let code = ReferralCode::parse("ABCD2345").unwrap();
        assert_eq!(
            code.link(&public_base(Some(" https://setia.example/ "))),
            "https://setia.example/r/ABCD2345"
        );
        assert_eq!(
            code.link(&public_base(None)),
            format!("{}/r/ABCD2345", setia_mail::DEFAULT_PUBLIC_URL)
        );
    }
}
