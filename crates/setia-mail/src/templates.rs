//! The email templates: minijinja, HTML auto-escaped, embedded in the binary (Indonesian and
//! English sets, from `templates/email/`), each of which a merchant may override from a
//! folder. A template that does not compile or render is reported with its name and line,
//! and only the emails that need it are held.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use setia_core::MerchantId;
use setia_store::mail::{EmailLanguage, OutboxKind};
use sha2::{Digest, Sha256};

/// The HTML layout the default HTML templates extend.
pub const LAYOUT: &str = "layout.html.jinja";

/// The three parts of every email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];

    fn suffix(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "txt",
            Part::Html => "html",
        }
    }
}

/// `thank_you.html.jinja`: the file name of one part of one kind.
pub fn template_name(kind: OutboxKind, part: Part) -> String {
    format!("{}.{}.jinja", kind.as_str(), part.suffix())
}

macro_rules! embedded {
    ($($lang:literal => [$($file:literal),* $(,)?]),* $(,)?) => {
        &[$($(($lang, $file, include_str!(concat!("../../../templates/email/", $lang, "/", $file)))),*),*]
    };
}

/// (language, file name, source) of the built-in templates.
const BUILT_IN: &[(&str, &str, &str)] = embedded! {
    "id" => [
        "layout.html.jinja", "recommendations.html.jinja", "recommendations.txt.jinja",
        "thank_you.subject.jinja", "thank_you.txt.jinja", "thank_you.html.jinja",
        "birthday_offer.subject.jinja", "birthday_offer.txt.jinja", "birthday_offer.html.jinja",
        "weekly_churn_report.subject.jinja", "weekly_churn_report.txt.jinja", "weekly_churn_report.html.jinja",
        "feedback_request.subject.jinja", "feedback_request.txt.jinja", "feedback_request.html.jinja",
        "feedback_alert.subject.jinja", "feedback_alert.txt.jinja", "feedback_alert.html.jinja",
        "winback.subject.jinja", "winback.txt.jinja", "winback.html.jinja",
        "referral_reward.subject.jinja", "referral_reward.txt.jinja", "referral_reward.html.jinja",
        "tier_welcome.subject.jinja", "tier_welcome.txt.jinja", "tier_welcome.html.jinja",
        "tier_nudge.subject.jinja", "tier_nudge.txt.jinja", "tier_nudge.html.jinja",
        "campaign.subject.jinja", "campaign.txt.jinja", "campaign.html.jinja",
    ],
    "en" => [
        "layout.html.jinja", "recommendations.html.jinja", "recommendations.txt.jinja",
        "thank_you.subject.jinja", "thank_you.txt.jinja", "thank_you.html.jinja",
        "birthday_offer.subject.jinja", "birthday_offer.txt.jinja", "birthday_offer.html.jinja",
        "weekly_churn_report.subject.jinja", "weekly_churn_report.txt.jinja", "weekly_churn_report.html.jinja",
        "feedback_request.subject.jinja", "feedback_request.txt.jinja", "feedback_request.html.jinja",
        "feedback_alert.subject.jinja", "feedback_alert.txt.jinja", "feedback_alert.html.jinja",
        "winback.subject.jinja", "winback.txt.jinja", "winback.html.jinja",
        "referral_reward.subject.jinja", "referral_reward.txt.jinja", "referral_reward.html.jinja",
        "tier_welcome.subject.jinja", "tier_welcome.txt.jinja", "tier_welcome.html.jinja",
        "tier_nudge.subject.jinja", "tier_nudge.txt.jinja", "tier_nudge.html.jinja",
        "campaign.subject.jinja", "campaign.txt.jinja", "campaign.html.jinja",
    ],
};

/// A template that does not compile or render: which one, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template}{} ({origin}): {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct TemplateError {
    /// The file name, e.g. `thank_you.html.jinja`.
    pub template: String,
    pub line: Option<usize>,
    /// `built-in` or the override file's path.
    pub origin: String,
    pub message: String,
}

/// An email rendered from its three templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The template instructions one part of one email may take to render: far beyond what a
/// built-in email takes (they loop over a few hundred rows at most); running out of it took
/// about a second in a debug build.
pub const RENDER_FUEL: u64 = 5_000_000;

/// One merchant's compiled templates in one language.
pub struct Templates {
    env: Environment<'static>,
    origins: HashMap<String, String>,
    /// Templates that did not compile, by file name.
    broken: HashMap<String, TemplateError>,
    fingerprint: String,
}

impl Templates {
    /// Compiles a set of (file name, source, origin); a file that does not compile is
    /// recorded, not fatal: the other kinds still render.
    fn compile(sources: BTreeMap<String, (String, String)>) -> Templates {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.jinja") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // A misspelt variable in an override is an error, not an empty string in a
        // customer's inbox; `{% if x %}` on a missing value is still allowed.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        // An override that loops (by mistake or not) fails its render, and the email is
        // held like one whose template does not compile, instead of holding a thread of the
        // runtime that also answers webhooks.
        env.set_fuel(Some(RENDER_FUEL));
        env.add_filter("thousands", thousands);
        let mut hasher = Sha256::new();
        let mut origins = HashMap::new();
        let mut broken = HashMap::new();
        for (name, (source, origin)) in sources {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(source.as_bytes());
            hasher.update([0]);
            if let Err(error) = env.add_template_owned(name.clone(), source) {
                broken.insert(name.clone(), template_error(&name, &origin, &error));
            }
            origins.insert(name, origin);
        }
        Templates {
            env,
            origins,
            broken,
            fingerprint: hex::encode(&hasher.finalize()[..12]),
        }
    }

    /// Identifies the set: emails held on a broken template are released when it changes.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Renders one kind of email with `context` (any serialisable value).
    pub fn render(
        &self,
        kind: OutboxKind,
        context: &impl Serialize,
    ) -> Result<RenderedEmail, TemplateError> {
        // A template that does not compile holds the email before anything renders.
        for name in Part::ALL
            .iter()
            .map(|part| template_name(kind, *part))
            .chain([LAYOUT.to_owned()])
        {
            if let Some(error) = self.broken.get(&name) {
                return Err(error.clone());
            }
        }
        let context = minijinja::Value::from(minijinja::value::Serde(context));
        let origin = |n: &str| {
            self.origins
                .get(n)
                .cloned()
                .unwrap_or_else(|| "missing".into())
        };
        let mut parts = Part::ALL.iter().map(|part| {
            let name = template_name(kind, *part);
            let template = self
                .env
                .get_template(&name)
                .map_err(|e| template_error(&name, &origin(&name), &e))?;
            template.render(context.clone()).map_err(|e| {
                // An error inside the layout names the layout.
                let at = e.name().unwrap_or(&name).to_owned();
                template_error(&at, &origin(&at), &e)
            })
        });
        let subject = parts.next().unwrap_or_else(|| Ok(String::new()))?;
        let text = parts.next().unwrap_or_else(|| Ok(String::new()))?;
        let html = parts.next().unwrap_or_else(|| Ok(String::new()))?;
        Ok(RenderedEmail {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text,
            html,
        })
    }
}

/// `1240` as `1.240`: the `thousands` filter, for points and counts.
pub fn thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        grouped.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('.');
        }
        grouped.push(digit);
    }
    grouped
}

fn template_error(name: &str, origin: &str, error: &minijinja::Error) -> TemplateError {
    let message = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    TemplateError {
        template: error.name().unwrap_or(name).to_owned(),
        line: error.line(),
        origin: origin.to_owned(),
        message,
    }
}

/// Compiled sets by merchant and language, with when they were loaded.
type TemplateCache = HashMap<(String, EmailLanguage), (Instant, Arc<Templates>)>;

/// Finds each merchant's templates: `{folder}/{merchant id}/{lang}/{file}`, then
/// `{folder}/{lang}/{file}`, then the built-in one. Compiled sets are kept for a few
/// seconds, so an edited override is picked up without a restart.
pub struct TemplateLoader {
    folder: Option<PathBuf>,
    cache: Mutex<TemplateCache>,
    ttl: Duration,
}

impl TemplateLoader {
    pub fn new(folder: Option<PathBuf>) -> TemplateLoader {
        TemplateLoader {
            folder,
            cache: Mutex::new(HashMap::new()),
            ttl: Duration::from_secs(5),
        }
    }

    pub fn folder(&self) -> Option<&Path> {
        self.folder.as_deref()
    }

    /// The templates a merchant's email in `language` is rendered with.
    pub fn load(&self, merchant: &MerchantId, language: EmailLanguage) -> Arc<Templates> {
        let key = (merchant.as_str().to_owned(), language);
        if let Ok(cache) = self.cache.lock() {
            if let Some((at, templates)) = cache.get(&key) {
                if at.elapsed() < self.ttl {
                    return templates.clone();
                }
            }
        }
        let templates = Arc::new(Templates::compile(self.sources(merchant, language)));
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, (Instant::now(), templates.clone()));
        }
        templates
    }

    fn sources(
        &self,
        merchant: &MerchantId,
        language: EmailLanguage,
    ) -> BTreeMap<String, (String, String)> {
        let lang = language.as_str();
        let mut sources = BTreeMap::new();
        for (_, name, source) in BUILT_IN.iter().filter(|(l, _, _)| *l == lang) {
            let overridden = self.folder.as_ref().and_then(|folder| {
                [
                    folder.join(merchant.as_str()).join(lang).join(name),
                    folder.join(lang).join(name),
                ]
                .into_iter()
                .find_map(|path| {
                    let text = std::fs::read_to_string(&path).ok()?;
                    Some((text, path.display().to_string()))
                })
            });
            let entry = overridden.unwrap_or_else(|| ((*source).to_owned(), "built-in".into()));
            sources.insert((*name).to_owned(), entry);
        }
        sources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant() -> MerchantId {
        MerchantId::from_random_bytes([3; 20])
    }

    #[test]
    fn thousands_are_grouped_with_dots() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_240), "1.240");
        assert_eq!(thousands(-1_000_000), "-1.000.000");
    }

    #[test]
    fn every_built_in_template_compiles() {
        for language in [EmailLanguage::Indonesian, EmailLanguage::English] {
            let templates = TemplateLoader::new(None).load(&merchant(), language);
            assert!(templates.broken.is_empty(), "{:?}", templates.broken);
            assert_eq!(templates.origins.len(), 33);
        }
    }

    fn thank_you(recommendations: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "merchant_name": "Toko Kopi", "language": "id",
            "unsubscribe_url": "https://setia.example/u/t",
            "recommendations": recommendations,
            "customer_name": "Siti", "day": "14 Maret 2027",
            "purchases": [{"amount": "Rp 125.000", "time": "14:05", "points": 125}],
            "total": "Rp 125.000", "points_earned": 125,
            "loyalty": {"points_balance": 1240, "tier": "Silver", "next_tier": null, "to_next_tier": null},
        })
    }

    #[test]
    fn the_recommendations_block_shows_products_and_is_absent_without_them() {
        for language in [EmailLanguage::Indonesian, EmailLanguage::English] {
            let templates = TemplateLoader::new(None).load(&merchant(), language);
            let heading = match language {
                EmailLanguage::Indonesian => "Mungkin Anda juga suka",
                EmailLanguage::English => "You may also like",
            };
            for kind in [OutboxKind::ThankYou, OutboxKind::BirthdayOffer] {
                let mut context = thank_you(serde_json::json!([]));
                context["offer_code"] = "ULTAH-1".into();
                context["offer_expires"] = "20 Maret 2027".into();
                context["birthday_points"] = 100.into();
                let without = templates.render(kind, &context).unwrap();
                assert!(!without.text.contains(heading) && !without.html.contains(heading));
                assert!(without.text.contains("\n\n--\n"), "{}", without.text);

                context["recommendations"] = serde_json::json!([
                    {"name": "Kopi <b>Gayo</b>", "price": "Rp 89.000",
                     "url": "https://toko.id/p/gayo?utm_source=setia&utm_medium=email",
                     "image_url": "https://toko.id/i/gayo.jpg"},
                    {"name": "Gula Aren", "price": null, "url": null, "image_url": null},
                ]);
                let with = templates.render(kind, &context).unwrap();
                assert!(with.text.contains(&format!(
                    "{heading}:\n- Kopi <b>Gayo</b> (Rp 89.000)\n  https://toko.id/p/gayo?utm_source=setia&utm_medium=email\n- Gula Aren\n\n--"
                )), "{}", with.text);
                // minijinja writes `/` as `&#x2f;` in HTML; browsers read both alike.
                let html = with.html.replace("&#x2f;", "/");
                assert!(html.contains(heading));
                assert!(html.contains("Kopi &lt;b&gt;Gayo&lt;/b&gt;"), "{html}");
                assert!(html.contains(r#"<img src="https://toko.id/i/gayo.jpg""#));
                assert!(html.contains("utm_source=setia&amp;utm_medium=email"));
                assert_eq!(html.matches("<img").count(), 1);
            }
        }
    }

    #[test]
    fn a_broken_override_names_its_file_and_line_and_breaks_only_its_kind() {
        let folder = tempfile::tempdir().unwrap();
        let lang = folder.path().join("id");
        std::fs::create_dir_all(&lang).unwrap();
        std::fs::write(
            lang.join("thank_you.html.jinja"),
            "<p>one</p>\n<p>two</p>\n{% if %}\n",
        )
        .unwrap();
        let loader = TemplateLoader::new(Some(folder.path().to_owned()));
        let templates = loader.load(&merchant(), EmailLanguage::Indonesian);
        let error = templates
            .render(OutboxKind::ThankYou, &serde_json::json!({}))
            .unwrap_err();
        assert_eq!(error.template, "thank_you.html.jinja");
        assert_eq!(error.line, Some(3));
        assert!(error.origin.ends_with("id/thank_you.html.jinja"), "{error}");
        let shown = error.to_string();
        assert!(
            shown.starts_with("template thank_you.html.jinja line 3 ("),
            "{shown}"
        );
        assert!(!templates.broken.contains_key("birthday_offer.html.jinja"));
    }

    #[test]
    fn a_merchants_own_folder_wins_over_the_shared_one() {
        let folder = tempfile::tempdir().unwrap();
        for (dir, text) in [
            (folder.path().join("en"), "shared {{ merchant_name }}"),
            (
                folder.path().join(merchant().as_str()).join("en"),
                "own {{ merchant_name }}",
            ),
        ] {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("thank_you.subject.jinja"), text).unwrap();
        }
        let loader = TemplateLoader::new(Some(folder.path().to_owned()));
        let own = loader.load(&merchant(), EmailLanguage::English);
        let other = loader.load(
            &MerchantId::from_random_bytes([4; 20]),
            EmailLanguage::English,
        );
        let subject = |t: &Templates| {
            t.env
                .get_template("thank_you.subject.jinja")
                .unwrap()
                .render(minijinja::context! { merchant_name => "Toko" })
                .unwrap()
        };
        assert_eq!(subject(&own), "own Toko");
        assert_eq!(subject(&other), "shared Toko");
        assert_ne!(own.fingerprint(), other.fingerprint());
        let built_in = TemplateLoader::new(None).load(&merchant(), EmailLanguage::English);
        assert_ne!(own.fingerprint(), built_in.fingerprint());
    }

    #[test]
    fn a_misspelt_variable_is_an_error_with_its_line() {
        let mut sources = BTreeMap::new();
        sources.insert(
            "thank_you.subject.jinja".to_owned(),
            ("Hi\n{{ custmer_name }}".to_owned(), "test".to_owned()),
        );
        let templates = Templates::compile(sources);
        let error = templates
            .render(
                OutboxKind::ThankYou,
                &serde_json::json!({"customer_name": "x"}),
            )
            .unwrap_err();
        assert_eq!(
            (error.template.as_str(), error.line),
            ("thank_you.subject.jinja", Some(2))
        );
    }

    #[test]
    fn a_template_that_loops_runs_out_of_fuel() {
        let mut sources = BTreeMap::new();
        sources.insert(
            "thank_you.subject.jinja".to_owned(),
            (
                "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
                    .to_owned(),
                "test".to_owned(),
            ),
        );
        let templates = Templates::compile(sources);
        let started = std::time::Instant::now();
        let error = templates
            .render(OutboxKind::ThankYou, &serde_json::json!({}))
            .unwrap_err();
        assert!(error.message.contains("fuel"), "{error:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
