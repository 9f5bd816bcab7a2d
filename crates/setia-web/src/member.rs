//! `GET /m/{token}`: the member page every customer email links to. It shows the customer
//! their tier (the `[perks]` title), points, when their oldest points expire, what the tier
//! gives (the points multiplier and the merchant's perk lines), how much is left to spend to
//! the next tier, and their referral code while the program is on.
//!
//! The token is a [`MemberToken`] (signed, never expiring, like the unsubscribe link): the
//! page shows nothing more sensitive than a first name, a tier and points, and a GET changes
//! nothing (no code is made here; one made by an earlier email is shown). A malformed,
//! oversized, forged or other merchant's token is one 404 that says nothing more. Like the
//! other public link pages: no script, nothing from another host, in the shop's language.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use setia_core::engagement::EngagementProgram;
use setia_core::loyalty::LoyaltyProgram;
use setia_core::mail_token::MemberToken;
use setia_core::perks::to_next_tier;
use setia_core::{format_rupiah, MerchantTimezone};
use setia_mail::context::long_date;
use setia_mail::perks::TierView;
use setia_mail::templates::thousands;
use setia_store::mail::EmailLanguage;
use setia_store::perks::MemberPage;
use setia_store::StoreError;

use crate::referral::{link_not_found, link_response};
use crate::unsubscribe::{escape, layout, link_text, MAX_TOKEN_TEXT};
use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/m/{token}", get(show))
        .with_state(state)
}

/// Everything the page shows.
struct Member {
    page: MemberPage,
    zone: MerchantTimezone,
    loyalty: LoyaltyProgram,
    engagement: EngagementProgram,
}

async fn member(state: &AppState, text: &str) -> Result<Option<Member>, StoreError> {
    let Ok(token) = MemberToken::parse(text) else {
        return Ok(None);
    };
    let Some(mail) = state.store.mail_merchant(token.merchant()).await? else {
        return Ok(None);
    };
    if !token.verify(&mail.secret) {
        return Ok(None);
    }
    let merchant = token.merchant();
    let Some(page) = state
        .store
        .member_page(merchant, token.customer(), Utc::now())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Member {
        page,
        zone: mail.merchant.timezone,
        loyalty: state.store.loyalty_program(merchant).await?,
        engagement: state.store.engagement_program(merchant).await?,
    }))
}

async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(text) = link_text(path, MAX_TOKEN_TEXT) else {
        return not_found();
    };
    let found = member(&state, &text).await;
    link_response(found, "member", |m| page(m, &state.public_url), not_found)
}

fn not_found() -> Response {
    link_not_found(
        "<p>Tautan halaman member ini tidak berlaku.</p>\
         <p>This member page link is not valid.</p>",
    )
}

fn page(member: &Member, public_url: &str) -> String {
    let language = member.page.language;
    let english = language == EmailLanguage::English;
    let customer = &member.page.customer;
    let shop = escape(&member.page.merchant_name);
    let tier = TierView::of(
        language,
        &member.engagement.perks,
        &member.loyalty,
        customer.tier,
    );
    let title = escape(&tier.title);
    let first_name = customer
        .name
        .as_deref()
        .and_then(|name| name.split_whitespace().next())
        .map(escape);
    let mut body = String::new();
    body.push_str(&match (&first_name, english) {
        (Some(name), false) => {
            format!("<p>Halo {name}, ini keanggotaan Anda di <strong>{shop}</strong>.</p>")
        }
        (Some(name), true) => {
            format!("<p>Hello {name}, this is your membership at <strong>{shop}</strong>.</p>")
        }
        (None, false) => format!("<p>Ini keanggotaan Anda di <strong>{shop}</strong>.</p>"),
        (None, true) => format!("<p>This is your membership at <strong>{shop}</strong>.</p>"),
    });
    let box_style = "background:#f3f4f6;border-radius:8px;padding:14px 18px;margin:16px 0;";
    let points = thousands(customer.points_balance);
    body.push_str(&format!(
        "<div style=\"{box_style}\"><p style=\"margin:0;font-size:13px;color:#6b7280;\">{}</p>\
         <p style=\"margin:4px 0 0;font-size:24px;font-weight:bold;\">{title}</p>\
         <p style=\"margin:8px 0 0;\">{}</p></div>",
        if english { "Your tier" } else { "Tingkat Anda" },
        if english {
            format!("<strong>{points}</strong> points")
        } else {
            format!("<strong>{points}</strong> poin")
        },
    ));
    if let Some(expiry) = customer.next_expiry {
        let day = long_date(language, member.zone.local_day(expiry.at));
        let count = thousands(expiry.points);
        body.push_str(&if english {
            format!("<p>{count} of your points expire on <strong>{day}</strong>.</p>")
        } else {
            format!("<p>{count} poin Anda berlaku sampai <strong>{day}</strong>.</p>")
        });
    }
    let mut perks: Vec<String> = Vec::new();
    if let Some(multiplier) = &tier.points_multiplier {
        perks.push(if english {
            format!("{multiplier}× points on every purchase")
        } else {
            format!("Poin {multiplier}× untuk setiap belanja")
        });
    }
    perks.extend(tier.perks.iter().map(|line| escape(line)));
    if !perks.is_empty() {
        body.push_str(&format!(
            "<p>{}</p><ul>{}</ul>",
            if english {
                format!("What {title} gives you:")
            } else {
                format!("Keuntungan {title}:")
            },
            perks
                .iter()
                .map(|line| format!("<li>{line}</li>"))
                .collect::<String>()
        ));
    }
    body.push_str(&match to_next_tier(&member.loyalty, customer.trailing_spend) {
        Some((next, left)) => {
            let next_title = escape(&member.engagement.perks.offer(next).title);
            let left = format_rupiah(left);
            if english {
                format!("<p>Spend <strong>{left}</strong> more within a year to reach <strong>{next_title}</strong>.</p>")
            } else {
                format!("<p>Belanja <strong>{left}</strong> lagi dalam setahun untuk mencapai <strong>{next_title}</strong>.</p>")
            }
        }
        None => if english {
            "<p>You are at our highest tier. Thank you!</p>".to_owned()
        } else {
            "<p>Anda berada di tingkat tertinggi kami. Terima kasih!</p>".to_owned()
        },
    });
    if let (true, Some(code)) = (
        member.engagement.referral.enabled,
        &member.page.referral_code,
    ) {
        let link = escape(&code.link(public_url));
        let code = escape(code.as_str());
        body.push_str(&if english {
            format!("<p>Invite friends with your code <strong>{code}</strong>: {link}</p>")
        } else {
            format!("<p>Ajak teman dengan kode Anda <strong>{code}</strong>: {link}</p>")
        });
    }
    layout(
        language.as_str(),
        if english {
            "Your membership"
        } else {
            "Keanggotaan Anda"
        },
        &body,
    )
}
