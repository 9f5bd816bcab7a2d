//! Campaigns (issue 25): the scheduler's campaign pass and what a campaign email says.
//!
//! **The pass.** For each campaign whose first wave is due, it writes the recipients first
//! (the audience evaluated then, a chunk of customers at a time, each recipient with its
//! holdout draw and its wave's due time; the campaign's cursor records how far it got, so a
//! pass cut off by a crash carries on where it stopped), then passes every recipient whose
//! wave is due, a chunk at a time: the treated get their outbox row of kind `campaign`, the
//! held out are only marked. The outbox's unique key (kind, recipient, period = campaign)
//! makes a rerun add nothing. Consent, unsubscribes, complaints and the marketing cap are
//! applied when each email is sent, as for every marketing email.
//!
//! **The email.** The body is Markdown (pulldown-cmark, CommonMark plus strikethrough)
//! rendered into the merchant's layout: raw HTML in it is shown as text, never passed
//! through, and only `http:`, `https:` and `mailto:` links and images survive (the others
//! keep their text). Placeholders are filled in the parsed text, after Markdown has been
//! read, so a customer's name is always text: never Markdown, never HTML. The text
//! alternative is written from the same events.

use chrono::{DateTime, Utc};
use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd, TextMergeStream};
use serde::Serialize;
use setia_core::campaign::{
    fill, in_holdout, Audience, CampaignDraft, CampaignError, CampaignInput, Personal, Wave,
};
use setia_core::{CampaignId, CustomerId, MerchantId};
use setia_store::campaign::{Campaign, CampaignStatus, NewRecipient};
use setia_store::{Store, StoreError};

use crate::context::Common;
use crate::MailError;

/// Customers read per chunk while the audience is written, and recipients passed per
/// transaction while a wave is enqueued: a million customers are a few hundred short
/// transactions, and webhooks never wait long behind one.
pub const AUDIENCE_CHUNK: u32 = 5_000;
pub const WAVE_CHUNK: u32 = 5_000;

fn stored_audience(campaign: &Campaign) -> Result<Audience, MailError> {
    Audience::parse(&campaign.audience).map_err(|error| {
        MailError::Store(StoreError::Corrupt(format!(
            "campaign {} audience: {error}",
            campaign.id
        )))
    })
}

/// Writes a due campaign's recipients, from where its cursor stands to the last customer.
async fn choose_recipients(
    store: &dyn Store,
    merchant: &MerchantId,
    campaign: &Campaign,
    now: DateTime<Utc>,
) -> Result<(), MailError> {
    let audience = stored_audience(campaign)?;
    let mut after = store
        .campaign_audience_cursor(merchant, campaign.id)
        .await?;
    loop {
        let chunk = store
            .audience_chunk(merchant, &audience, after, AUDIENCE_CHUNK, now)
            .await?;
        let recipients: Vec<NewRecipient> = chunk
            .members
            .iter()
            .map(|member| {
                let wave = Wave::of(member.tier);
                NewRecipient {
                    customer: member.customer,
                    wave,
                    holdout: in_holdout(
                        merchant,
                        campaign.id,
                        member.customer,
                        campaign.holdout_percent,
                    ),
                    due_at: wave.due_at(campaign.send_at, campaign.early_access_days),
                }
            })
            .collect();
        store
            .add_campaign_recipients(merchant, campaign.id, &recipients, chunk.scanned_to)
            .await?;
        match chunk.scanned_to {
            Some(to) => after = to,
            None => return Ok(()),
        }
    }
}

/// The campaign pass for one merchant: returns the campaign emails enqueued.
pub async fn schedule(
    store: &dyn Store,
    merchant: &MerchantId,
    now: DateTime<Utc>,
) -> Result<u64, MailError> {
    let mut enqueued = 0;
    for campaign in store.due_campaigns(merchant, now).await? {
        if campaign.status == CampaignStatus::Scheduled {
            choose_recipients(store, merchant, &campaign, now).await?;
        }
        loop {
            let step = store
                .enqueue_campaign_wave(merchant, campaign.id, now, WAVE_CHUNK)
                .await?;
            enqueued += step.enqueued;
            if step.due == 0 {
                break;
            }
        }
    }
    Ok(enqueued)
}

/// How many customers an audience reaches now, by wave, and how many of them a campaign's
/// holdout keeps out: exact for a written campaign, whose id seeds the draw; for a draft,
/// which has no id yet, the holdout is the share it will be about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AudienceCount {
    pub recipients: u64,
    pub holdout: u64,
    /// Gold, silver, everyone else.
    pub by_wave: [u64; 3],
    /// Whether `holdout` is the exact draw (a written campaign) or an estimate.
    pub holdout_exact: bool,
    /// The audience's first customer, a sample recipient for previews.
    #[serde(skip)]
    pub first: Option<CustomerId>,
}

pub async fn count_audience(
    store: &dyn Store,
    merchant: &MerchantId,
    audience: &Audience,
    campaign: Option<CampaignId>,
    holdout_percent: u32,
    now: DateTime<Utc>,
) -> Result<AudienceCount, MailError> {
    let mut count = AudienceCount {
        holdout_exact: campaign.is_some(),
        ..AudienceCount::default()
    };
    let mut after = CustomerId::from_key(0);
    loop {
        let chunk = store
            .audience_chunk(merchant, audience, after, AUDIENCE_CHUNK, now)
            .await?;
        for member in &chunk.members {
            count.first = count.first.or(Some(member.customer));
            count.recipients += 1;
            count.by_wave[Wave::of(member.tier).index() as usize] += 1;
            if let Some(id) = campaign {
                count.holdout +=
                    u64::from(in_holdout(merchant, id, member.customer, holdout_percent));
            }
        }
        match chunk.scanned_to {
            Some(to) => after = to,
            None => break,
        }
    }
    if campaign.is_none() {
        count.holdout = (count.recipients * u64::from(holdout_percent) + 50) / 100;
    }
    Ok(count)
}

/// Parses a campaign as the merchant wrote it, with the `[campaigns]` settings in force, and
/// writes it; then counts whom it reaches now. Bad input (the inner error) writes nothing.
pub async fn create(
    store: &dyn Store,
    merchant: &MerchantId,
    input: &CampaignInput<'_>,
    now: DateTime<Utc>,
) -> Result<Result<(Campaign, AudienceCount), CampaignError>, MailError> {
    let program = store.engagement_program(merchant).await?;
    let draft = match CampaignDraft::parse(input, &program.campaigns, now) {
        Ok(draft) => draft,
        Err(error) => return Ok(Err(error)),
    };
    let campaign = store.create_campaign(merchant, &draft, now).await?;
    let count = count_audience(
        store,
        merchant,
        &draft.audience,
        Some(campaign.id),
        draft.holdout_percent,
        now,
    )
    .await?;
    Ok(Ok((campaign, count)))
}

/// `period` `cmp_3` → the campaign.
pub(crate) fn parse_period(period: &str) -> Option<CampaignId> {
    CampaignId::parse(period).ok()
}

fn safe_link(dest: &str, link_type: LinkType) -> bool {
    if link_type == LinkType::Email {
        return true;
    }
    let lower = dest.trim().to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// The body's Markdown events with the placeholders filled, raw HTML turned into text and
/// links of other schemes dropped (their text kept).
fn safe_events<'a>(markdown: &'a str, personal: &'a Personal) -> impl Iterator<Item = Event<'a>> {
    let mut open_links: Vec<bool> = Vec::new();
    let parser = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH);
    TextMergeStream::new(parser).filter_map(move |event| match event {
        Event::Text(text) => Some(Event::Text(fill(&text, personal).into())),
        Event::Code(text) => Some(Event::Code(fill(&text, personal).into())),
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        Event::Start(Tag::Link {
            link_type,
            ref dest_url,
            ..
        })
        | Event::Start(Tag::Image {
            link_type,
            ref dest_url,
            ..
        }) => {
            let keep = safe_link(dest_url, link_type);
            open_links.push(keep);
            keep.then_some(event)
        }
        Event::End(TagEnd::Link) | Event::End(TagEnd::Image) => {
            open_links.pop().unwrap_or(true).then_some(event)
        }
        other => Some(other),
    })
}

/// The body as HTML, for the layout's content block.
pub fn body_html(markdown: &str, personal: &Personal) -> String {
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, safe_events(markdown, personal));
    html
}

/// The body as plain text: paragraphs apart, list items with a dash, a link's address
/// after its text.
pub fn body_text(markdown: &str, personal: &Personal) -> String {
    let mut text = String::with_capacity(markdown.len());
    let mut links: Vec<String> = Vec::new();
    let mut numbers: Vec<Option<u64>> = Vec::new();
    for event in safe_events(markdown, personal) {
        match event {
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push('\n'),
            Event::Rule => text.push_str("----\n\n"),
            Event::Start(Tag::List(first)) => numbers.push(first),
            Event::End(TagEnd::List(_)) => {
                numbers.pop();
                text.push('\n');
            }
            Event::Start(Tag::Item) => match numbers.last_mut() {
                Some(Some(n)) => {
                    text.push_str(&format!("{n}. "));
                    *n += 1;
                }
                _ => text.push_str("- "),
            },
            Event::End(TagEnd::Item) if !text.ends_with('\n') => text.push('\n'),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            })
            | Event::Start(Tag::Image {
                link_type,
                dest_url,
                ..
            }) => links.push(if link_type == LinkType::Email {
                format!("mailto:{dest_url}")
            } else {
                dest_url.to_string()
            }),
            Event::End(TagEnd::Link) | Event::End(TagEnd::Image) => {
                if let Some(url) = links.pop() {
                    if !text.ends_with(url.trim_start_matches("mailto:")) {
                        text.push_str(&format!(" ({url})"));
                    }
                }
            }
            Event::End(TagEnd::Paragraph)
            | Event::End(TagEnd::Heading(_))
            | Event::End(TagEnd::CodeBlock)
            | Event::End(TagEnd::BlockQuote(_))
            | Event::End(TagEnd::HtmlBlock) => {
                if numbers.is_empty() {
                    text.push_str("\n\n");
                } else if !text.ends_with('\n') {
                    text.push('\n');
                }
            }
            _ => {}
        }
    }
    let mut text = text.trim_end().to_owned();
    text.push('\n');
    text
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignContext {
    #[serde(flatten)]
    pub common: Common,
    pub subject: String,
    /// The rendered body: escaped and filtered here, placed as it is by the template.
    pub body_html: String,
    pub body_text: String,
}

/// A campaign's email to one recipient.
pub fn context(
    subject: &str,
    markdown: &str,
    personal: &Personal,
    common: Common,
) -> CampaignContext {
    CampaignContext {
        common,
        subject: fill(subject, personal),
        body_html: body_html(markdown, personal),
        body_text: body_text(markdown, personal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn siti() -> Personal {
        Personal {
            name: "Siti".into(),
            tier: "Gold".into(),
            points: "1.240".into(),
        }
    }

    #[test]
    fn markdown_renders_with_placeholders_filled() {
        let body = "# Early access\n\nHi **{{name}}**, as a {{ tier }} member with {{points}} points you shop first.\n\n- one\n- two\n\n[Shop now](https://toko.example/sale)\n";
        let html = body_html(body, &siti());
        assert!(html.contains("<h1>Early access</h1>"), "{html}");
        assert!(
            html.contains("Hi <strong>Siti</strong>, as a Gold member with 1.240 points"),
            "{html}"
        );
        assert!(html.contains("<li>one</li>"), "{html}");
        assert!(
            html.contains("<a href=\"https://toko.example/sale\">Shop now</a>"),
            "{html}"
        );
        let text = body_text(body, &siti());
        assert!(
            text.starts_with("Early access\n\nHi Siti, as a Gold member"),
            "{text}"
        );
        assert!(text.contains("- one\n- two\n"), "{text}");
        assert!(
            text.contains("Shop now (https://toko.example/sale)"),
            "{text}"
        );
    }

    #[test]
    fn html_in_the_body_or_a_name_is_escaped() {
        let body = "<script>alert(1)</script>\n\nHello {{name}} <img src=x onerror=alert(2)> done\n\n<div onclick=\"x\">block</div>\n";
        let evil = Personal {
            name: "<script>steal()</script> *bold* [x](javascript:alert(3))".into(),
            ..siti()
        };
        let html = body_html(body, &evil);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<div"), "{html}");
        assert!(!html.contains("<em>"), "a name is never Markdown: {html}");
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;steal()&lt;/script&gt; *bold*"),
            "{html}"
        );
    }

    #[test]
    fn only_web_and_mail_links_survive() {
        let body = "[a](javascript:alert(1)) [b](data:text/html,x) [c](HTTPS://ok.example) \
                    [d](mailto:cs@toko.example) <cs@toko.example> [e](/relative) ![p](vbscript:x)";
        let html = body_html(body, &siti());
        assert!(!html.contains("javascript"), "{html}");
        assert!(!html.contains("data:"), "{html}");
        assert!(!html.contains("vbscript"), "{html}");
        assert!(!html.contains("/relative"), "{html}");
        assert!(
            html.contains("<a href=\"HTTPS://ok.example\">c</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"mailto:cs@toko.example\">d</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"mailto:cs@toko.example\">cs@toko.example</a>"),
            "{html}"
        );
        for kept in ["a", "b", "e", "p"] {
            assert!(
                html.contains(kept),
                "the text of a dropped link stays: {html}"
            );
        }
        let text = body_text(body, &siti());
        assert!(!text.contains("javascript"), "{text}");
        assert!(text.contains("c (HTTPS://ok.example)"), "{text}");
    }

    #[test]
    fn periods_name_campaigns() {
        assert_eq!(parse_period("cmp_3"), Some(CampaignId::from_key(3)));
        assert_eq!(parse_period("3"), None);
    }
}
