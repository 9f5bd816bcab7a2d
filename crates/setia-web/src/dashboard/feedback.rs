//! Feedback (*Ulasan*): the program's satisfaction figure (CSAT or NPS) over the last 30 days
//! against the 30 before, its trend per week or month, the distribution of scores, recent
//! comments by score, and the complaints queue with a form to move each complaint along.
//!
//! The figures are counted from the store's answers per local day and score; the rule is
//! setia-core's [`satisfaction`](setia_core::feedback::satisfaction).

use std::ops::RangeInclusive;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Datelike, Months, NaiveDate, Offset, TimeDelta, Utc};
use minijinja::context;
use minijinja::value::Value;
use serde::Deserialize;
use setia_core::engagement::FeedbackKind;
use setia_core::feedback::{satisfaction, FeedbackComment};
use setia_store::engagement::{AnswerFilter, ComplaintStatus, DailyScores, FeedbackAnswer};
use setia_store::PageRequest;

use super::auth::{CsrfForm, Session};
use super::customers::id_cursor;
use super::format::{self, number, percent};
use super::i18n::{texts, Lang};
use super::render::{ser, PageError};
use super::{charts, Dash};

/// Days in the headline's window (and in the window it is compared with).
const HEADLINE_DAYS: i64 = 30;
/// Periods the trend shows, the current one included.
const TREND_PERIODS: u32 = 12;
/// Comments per page.
const COMMENTS_PAGE: usize = 25;
/// Answers read per look for comments, and how many looks one page may take: answers
/// without a comment are skipped, and a page stops after this many.
const COMMENT_SCAN: u32 = 200;
const COMMENT_SCANS: usize = 5;
/// Complaints per status and page.
const COMPLAINTS_PAGE: u32 = 20;
/// Resolved complaints shown after the unresolved ones.
const RESOLVED_PAGE: u32 = 10;
/// The longest note a complaint may carry from the dashboard.
pub const MAX_NOTE_CHARS: usize = 1_000;
/// Who a dashboard update is recorded as (the API records `api`).
pub const DASHBOARD_ACTOR: &str = "dashboard";

const STATUSES: [ComplaintStatus; 3] = [
    ComplaintStatus::Open,
    ComplaintStatus::InProgress,
    ComplaintStatus::Resolved,
];

/// Answers per score (0–10) of one scale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ScoreCounts([u64; 11]);

impl ScoreCounts {
    fn add(&mut self, score: u8, answers: u64) {
        if let Some(count) = self.0.get_mut(usize::from(score)) {
            *count += answers;
        }
    }

    fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn get(&self, score: u8) -> u64 {
        self.0.get(usize::from(score)).copied().unwrap_or(0)
    }

    /// The program's figure of these answers (setia-core's rule): CSAT, the share of 4s
    /// and 5s; NPS, the share of 9–10 minus that of 0–6. `None` without answers.
    fn satisfaction(&self, kind: FeedbackKind) -> Option<f64> {
        satisfaction(kind, (0..=10).map(|score| (score, self.get(score))))
    }
}

/// The figure as the page shows it: CSAT a percentage, NPS a whole number from -100 to 100.
fn show(kind: FeedbackKind, figure: Option<f64>, lang: Lang) -> String {
    match (figure, kind) {
        (None, _) => "–".into(),
        (Some(v), FeedbackKind::Csat) => percent(v, 0, lang),
        (Some(v), FeedbackKind::Nps) => number(v * 100.0, 0, lang),
    }
}

/// A change of the figure: percentage points for CSAT, points for NPS; up, down or flat.
fn change(kind: FeedbackKind, now: Option<f64>, before: Option<f64>, lang: Lang) -> Value {
    let (Some(now), Some(before)) = (now, before) else {
        return Value::from(());
    };
    let delta = ((now - before) * 100.0).round();
    let direction = if delta > 0.0 {
        "up"
    } else if delta < 0.0 {
        "down"
    } else {
        "flat"
    };
    let sign = if delta > 0.0 { "+" } else { "" };
    let unit = match kind {
        FeedbackKind::Csat => " pp",
        FeedbackKind::Nps => "",
    };
    context! {
        delta => format!("{sign}{}{unit}", number(delta, 0, lang)),
        direction => direction,
    }
}

/// The instant a local day starts at, for a zone `utc_offset_seconds` ahead of UTC (the
/// store counts days the same way).
fn day_start(day: NaiveDate, utc_offset_seconds: i32) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
        - TimeDelta::seconds(i64::from(utc_offset_seconds))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Week,
    Month,
}

impl Period {
    fn as_str(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The period a day belongs to: `2025-W03` (ISO week) or `2025-01`.
    fn key(self, day: NaiveDate) -> String {
        match self {
            Period::Week => {
                let week = day.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Period::Month => format!("{}-{:02}", day.year(), day.month()),
        }
    }

    /// The first day of the last `count` periods up to the one holding `today`, oldest
    /// first.
    fn starts(self, today: NaiveDate, count: u32) -> Vec<NaiveDate> {
        match self {
            Period::Week => {
                let monday =
                    today - TimeDelta::days(i64::from(today.weekday().num_days_from_monday()));
                (0..count)
                    .rev()
                    .map(|back| monday - TimeDelta::weeks(i64::from(back)))
                    .collect()
            }
            Period::Month => {
                let first = today.with_day(1).expect("every month has a first day");
                (0..count)
                    .rev()
                    .filter_map(|back| first.checked_sub_months(Months::new(back)))
                    .collect()
            }
        }
    }
}

/// Answers on the program's scale per period, and the whole window's.
struct Trend {
    keys: Vec<String>,
    counts: Vec<ScoreCounts>,
    window: ScoreCounts,
}

fn trend(rows: &[DailyScores], kind: FeedbackKind, period: Period, starts: &[NaiveDate]) -> Trend {
    let keys: Vec<String> = starts.iter().map(|d| period.key(*d)).collect();
    let mut counts = vec![ScoreCounts::default(); keys.len()];
    let mut window = ScoreCounts::default();
    let first = starts.first().copied().unwrap_or(NaiveDate::MAX);
    for row in rows.iter().filter(|r| r.kind == kind && r.day >= first) {
        if let Some(i) = keys.iter().position(|k| *k == period.key(row.day)) {
            counts[i].add(row.score, row.answers);
            window.add(row.score, row.answers);
        }
    }
    Trend {
        keys,
        counts,
        window,
    }
}

/// Answers on the program's scale given on days in `days`.
fn counts_between(
    rows: &[DailyScores],
    kind: FeedbackKind,
    days: RangeInclusive<NaiveDate>,
) -> ScoreCounts {
    let mut counts = ScoreCounts::default();
    for row in rows
        .iter()
        .filter(|r| r.kind == kind && days.contains(&r.day))
    {
        counts.add(row.score, row.answers);
    }
    counts
}

/// A score filter from the URL: a whole number 0–10, or nothing.
fn score_filter(text: &str) -> Result<Option<u8>, PageError> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u8>()
        .ok()
        .filter(|score| *score <= 10)
        .map(Some)
        .ok_or_else(|| PageError::BadRequest("score".into()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FeedbackQuery {
    /// `week` (the default) or `month`: the trend's periods.
    period: String,
    /// Comments of one score.
    score: String,
    /// Older comments.
    cursor: String,
    /// Older complaints of each status.
    open: String,
    in_progress: String,
    resolved: String,
}

/// One page of comments, newest first: answers without a comment are skipped, reading at
/// most [`COMMENT_SCANS`] batches of answers; the cursor continues after what was read.
async fn comments(
    dash: &Dash,
    session: &Session,
    score: Option<u8>,
    before: Option<i64>,
) -> Result<(Vec<FeedbackAnswer>, Option<i64>), PageError> {
    let filter = AnswerFilter {
        score,
        ..AnswerFilter::default()
    };
    let mut shown = Vec::new();
    let mut before = before;
    for _ in 0..COMMENT_SCANS {
        let page = dash
            .store
            .feedback_answers(
                &session.merchant.id,
                filter,
                PageRequest {
                    before,
                    limit: COMMENT_SCAN,
                },
            )
            .await?;
        let mut answers = page.items.into_iter();
        for answer in answers.by_ref() {
            if answer.comment.is_some() {
                shown.push(answer);
                if shown.len() == COMMENTS_PAGE {
                    break;
                }
            }
        }
        if shown.len() == COMMENTS_PAGE {
            let more = answers.next().is_some() || page.next_cursor.is_some();
            let next = shown.last().filter(|_| more).map(|a| a.id);
            return Ok((shown, next));
        }
        match page.next_cursor {
            None => return Ok((shown, None)),
            Some(cursor) => before = Some(cursor),
        }
    }
    Ok((shown, before))
}

pub async fn feedback(
    State(dash): State<Dash>,
    session: Session,
    Query(query): Query<FeedbackQuery>,
) -> Result<Response, PageError> {
    let period = match query.period.as_str() {
        "" | "week" => Period::Week,
        "month" => Period::Month,
        _ => return Err(PageError::BadRequest("period".into())),
    };
    let score = score_filter(&query.score)?;
    let comments_before = id_cursor(&query.cursor)?;
    let (open_before, in_progress_before, resolved_before) = (
        id_cursor(&query.open)?,
        id_cursor(&query.in_progress)?,
        id_cursor(&query.resolved)?,
    );
    let lang = session.lang;
    let tr = texts(lang);
    let store = &*dash.store;
    let merchant = &session.merchant.id;
    let kind = store.engagement_program(merchant).await?.feedback.kind;
    let (low, high) = kind.scale();

    let now = Utc::now();
    let zone = session.merchant.timezone;
    let offset = now
        .with_timezone(&zone.tz())
        .offset()
        .fix()
        .local_minus_utc();
    let today = zone.local_day(now);
    let recent = today - TimeDelta::days(HEADLINE_DAYS - 1)..=today;
    let earlier =
        today - TimeDelta::days(2 * HEADLINE_DAYS - 1)..=today - TimeDelta::days(HEADLINE_DAYS);
    let starts = period.starts(today, TREND_PERIODS);
    let from = starts
        .first()
        .copied()
        .unwrap_or(today)
        .min(*earlier.start());
    let until = day_start(today + TimeDelta::days(1), offset);
    let rows = store
        .daily_scores(merchant, day_start(from, offset), until, offset)
        .await?;
    let requests = store
        .daily_requests(merchant, day_start(*recent.start(), offset), until, offset)
        .await?;
    let complaint_counts = store
        .complaint_counts(merchant, day_start(*recent.start(), offset), until)
        .await?;

    // The headline: the last 30 days against the 30 before.
    let now_counts = counts_between(&rows, kind, recent.clone());
    let before_counts = counts_between(&rows, kind, earlier);
    let figure = now_counts.satisfaction(kind);
    let figure_before = before_counts.satisfaction(kind);
    let asked: u64 = requests.iter().map(|r| r.asked).sum();
    let answered: u64 = requests.iter().map(|r| r.answered).sum();
    let headline = context! {
        figure => show(kind, figure, lang),
        figure_before => show(kind, figure_before, lang),
        change => change(kind, figure, figure_before, lang),
        answers => now_counts.total(),
        answers_before => before_counts.total(),
        asked => asked,
        answered => answered,
        response_rate => (asked > 0).then(|| answered as f64 / asked as f64),
        opened => complaint_counts.opened,
        unresolved => complaint_counts.unresolved,
    };
    // Answers given on another scale (the program changed it) are left out of every figure.
    let other_scale: u64 = rows
        .iter()
        .filter(|r| r.kind != kind && recent.contains(&r.day))
        .map(|r| r.answers)
        .sum();

    // The trend per period, and the distribution over its window.
    let trend = trend(&rows, kind, period, &starts);
    let figures: Vec<Option<f64>> = trend.counts.iter().map(|c| c.satisfaction(kind)).collect();
    let labels: Vec<String> = trend
        .keys
        .iter()
        .map(|k| format::period_label(k, lang))
        .collect();
    let bottom = match kind {
        FeedbackKind::Csat => 0.0,
        FeedbackKind::Nps => -1.0,
    };
    let chart_key = format!("feedback_chart_{}", kind.as_str());
    let chart_title = tr.get(&chart_key);
    let trend_svg = charts::line_with_gaps(chart_title, &labels, &figures, (bottom, 1.0), &|v| {
        show(kind, Some(v), lang)
    })?;
    let trend_rows: Vec<Value> = trend
        .keys
        .iter()
        .zip(&trend.counts)
        .zip(&figures)
        .rev()
        .map(|((key, counts), figure)| {
            context! {
                period => key,
                figure => show(kind, *figure, lang),
                answers => counts.total(),
            }
        })
        .collect();
    let scores: Vec<u8> = (low..=high).rev().collect();
    let window_total = trend.window.total();
    let distribution_rows: Vec<Value> = scores
        .iter()
        .map(|&s| {
            let answers = trend.window.get(s);
            context! {
                score => s,
                answers => answers,
                share => (window_total > 0).then(|| answers as f64 / window_total as f64),
            }
        })
        .collect();
    let distribution_svg = charts::bars(
        tr.get("feedback_distribution"),
        &scores.iter().map(u8::to_string).collect::<Vec<_>>(),
        &scores
            .iter()
            .map(|&s| trend.window.get(s) as f64)
            .collect::<Vec<_>>(),
        &|v| number(v, 0, lang),
    )?;

    // Comments, and the complaints queue: unresolved first, then recently resolved.
    let (comment_items, comments_next) = comments(&dash, &session, score, comments_before).await?;
    let complaints = |status: ComplaintStatus, before: Option<i64>, limit: u32| {
        store.complaints(merchant, Some(status), PageRequest { before, limit })
    };
    let open = complaints(ComplaintStatus::Open, open_before, COMPLAINTS_PAGE).await?;
    let in_progress = complaints(
        ComplaintStatus::InProgress,
        in_progress_before,
        COMPLAINTS_PAGE,
    )
    .await?;
    let resolved = complaints(ComplaintStatus::Resolved, resolved_before, RESOLVED_PAGE).await?;

    let mut base = format!("/dashboard/feedback?period={}", period.as_str());
    if let Some(score) = score {
        base.push_str(&format!("&score={score}"));
    }
    let page = context! {
        kind => kind.as_str(),
        period => period.as_str(),
        base => base,
        headline => headline,
        other_scale => other_scale,
        trend => context! {
            svg => trend_svg,
            rows => trend_rows,
            answers => window_total,
        },
        distribution => context! {
            svg => distribution_svg,
            rows => distribution_rows,
        },
        scores => (low..=high).collect::<Vec<u8>>(),
        score => score,
        comments => context! { items => ser(&comment_items), next_cursor => comments_next },
        statuses => STATUSES.map(ComplaintStatus::as_str),
        open => context! { items => ser(&open.items), next_cursor => open.next_cursor },
        in_progress => context! { items => ser(&in_progress.items), next_cursor => in_progress.next_cursor },
        resolved => context! { items => ser(&resolved.items), next_cursor => resolved.next_cursor },
        max_note => MAX_NOTE_CHARS,
    };
    dash.page(&session, "feedback", "feedback.html", page).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ComplaintForm {
    status: String,
    /// Empty keeps the note the complaint has.
    note: String,
}

/// A note from the form: at most [`MAX_NOTE_CHARS`] characters, printable like a customer's
/// comment; empty is no change.
fn note(text: &str) -> Result<Option<String>, PageError> {
    let text = text.trim();
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(PageError::BadRequest("note_too_long".into()));
    }
    FeedbackComment::parse(text)
        .map(|note| note.map(|n| n.as_str().to_owned()))
        .map_err(|_| PageError::BadRequest("note".into()))
}

/// `POST /dashboard/feedback/complaints/{id}`: a complaint's new status and note, recorded
/// as done by the dashboard; back to the complaint on the page.
pub async fn update_complaint(
    State(dash): State<Dash>,
    Path(id): Path<String>,
    posted: CsrfForm<ComplaintForm>,
) -> Result<Response, PageError> {
    let merchant = &posted.session.merchant.id;
    // Any id that is not this merchant's complaint is the same 404.
    let id = id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(PageError::NotFound)?;
    let status = ComplaintStatus::parse(posted.form.status.trim())
        .ok_or_else(|| PageError::BadRequest("status".into()))?;
    let note = note(&posted.form.note)?;
    let updated = dash
        .store
        .update_complaint(
            merchant,
            id,
            status,
            note.as_deref(),
            DASHBOARD_ACTOR,
            Utc::now(),
        )
        .await?
        .ok_or(PageError::NotFound)?;
    tracing::info!(merchant = %merchant, complaint = updated.id, status = status.as_str(), "complaint updated in the dashboard");
    Ok(Redirect::to(&format!("/dashboard/feedback#complaint-{}", updated.id)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(scores: &[u8]) -> ScoreCounts {
        let mut counts = ScoreCounts::default();
        for &s in scores {
            counts.add(s, 1);
        }
        counts
    }

    #[test]
    fn the_figure_counts_every_score_of_the_scale() {
        assert_eq!(
            counts(&[5, 4, 3, 1]).satisfaction(FeedbackKind::Csat),
            Some(0.5)
        );
        let nps = counts(&[10, 9, 8, 7, 6, 0, 10, 9, 3, 10]).satisfaction(FeedbackKind::Nps);
        assert!((nps.unwrap() - 0.2).abs() < 1e-12, "{nps:?}");
        assert_eq!(counts(&[]).satisfaction(FeedbackKind::Nps), None);
        let mut many = ScoreCounts::default();
        many.add(5, 3);
        many.add(2, 1);
        many.add(11, 7);
        assert_eq!(
            (many.total(), many.satisfaction(FeedbackKind::Csat)),
            (4, Some(0.75)),
            "off the scale counts nothing"
        );
    }

    #[test]
    fn figures_read_as_percent_or_points() {
        assert_eq!(show(FeedbackKind::Csat, Some(0.75), Lang::Id), "75%");
        assert_eq!(show(FeedbackKind::Nps, Some(-0.2), Lang::En), "-20");
        assert_eq!(show(FeedbackKind::Nps, None, Lang::En), "–");
        let up = change(FeedbackKind::Csat, Some(0.75), Some(0.5), Lang::Id);
        assert_eq!(up.get_attr("delta").unwrap().as_str(), Some("+25 pp"));
        let down = change(FeedbackKind::Nps, Some(0.1), Some(0.3), Lang::Id);
        assert_eq!(
            (
                down.get_attr("delta").unwrap().as_str(),
                down.get_attr("direction").unwrap().as_str()
            ),
            (Some("-20"), Some("down"))
        );
        assert!(change(FeedbackKind::Nps, None, Some(0.3), Lang::Id).is_none());
    }

    #[test]
    fn periods_are_iso_weeks_and_months_ending_with_the_current_one() {
        let day = NaiveDate::from_ymd_opt(2025, 1, 2).unwrap(); // a Thursday
        let weeks = Period::Week.starts(day, 12);
        assert_eq!(weeks.len(), 12);
        assert_eq!(weeks[11], NaiveDate::from_ymd_opt(2024, 12, 30).unwrap());
        assert_eq!(Period::Week.key(weeks[11]), "2025-W01");
        assert_eq!(Period::Week.key(weeks[0]), "2024-W42");
        let months = Period::Month.starts(day, 12);
        assert_eq!(
            (Period::Month.key(months[0]), Period::Month.key(months[11])),
            ("2024-02".to_owned(), "2025-01".to_owned())
        );
    }

    #[test]
    fn the_trend_counts_the_programs_scale_per_period() {
        let day = |m, d| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
        let row = |day, kind, score, answers| DailyScores {
            day,
            kind,
            score,
            answers,
        };
        let rows = [
            row(day(1, 1), FeedbackKind::Csat, 2, 9),
            row(day(1, 6), FeedbackKind::Csat, 5, 2),
            row(day(1, 7), FeedbackKind::Csat, 1, 1),
            row(day(1, 8), FeedbackKind::Nps, 10, 4),
            row(day(1, 14), FeedbackKind::Csat, 4, 1),
        ];
        let starts = Period::Week.starts(day(1, 15), 2);
        let t = trend(&rows, FeedbackKind::Csat, Period::Week, &starts);
        assert_eq!(t.keys, ["2025-W02", "2025-W03"]);
        assert_eq!(
            t.counts.iter().map(ScoreCounts::total).collect::<Vec<_>>(),
            [3, 1],
            "the NPS answers and the weeks before are left out"
        );
        assert_eq!(
            (t.window.get(5), t.window.get(1), t.window.get(2)),
            (2, 1, 0)
        );
        let recent = counts_between(&rows, FeedbackKind::Csat, day(1, 7)..=day(1, 14));
        assert_eq!(recent.total(), 2);
    }

    #[test]
    fn notes_are_bounded_and_empty_keeps_the_old_one() {
        assert_eq!(note("  ").unwrap(), None);
        assert_eq!(
            note(" Dikirim ulang\r\n ").unwrap().as_deref(),
            Some("Dikirim ulang")
        );
        assert!(note(&"é".repeat(MAX_NOTE_CHARS)).is_ok());
        assert!(matches!(
            note(&"é".repeat(MAX_NOTE_CHARS + 1)),
            Err(PageError::BadRequest(detail)) if detail == "note_too_long"
        ));
        assert!(note("a\u{0}b").is_err());
        assert!(score_filter("11").is_err() && score_filter("-1").is_err());
        assert!(score_filter("x").is_err());
        assert_eq!(score_filter("0").unwrap(), Some(0));
        assert_eq!(score_filter("").unwrap(), None);
    }
}
