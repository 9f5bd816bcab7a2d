//! The command line of DESIGN §3, as clap derives it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "setia",
    version,
    about = "Customer-retention analytics for merchants paid by bank transfer and virtual account",
    long_about = "setia turns verified Moota payments into a customer ledger and the retention \
                  numbers a marketing team works from.\n\nConfiguration comes from SETIA_* \
                  environment variables and an optional TOML file (--config); the environment \
                  wins, and flags win over both."
)]
pub struct Cli {
    /// Database URL: sqlite://PATH (created with its folder) or postgres://…
    /// [default: sqlite://./setia-data/setia.db; env: SETIA_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// A TOML file with the same keys as the SETIA_* variables, in lower case
    /// (database_url, listen, public_url, smtp_url, mail_from, moota_allowed_ips,
    /// trusted_proxies)
    #[arg(long, global = true, env = "SETIA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How log lines on stderr look
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job on the embedded database: a sandbox merchant "Toko Demo" with customers
    /// and a year of history, the server with its jobs, live sandbox payments through the
    /// signed webhook, metrics every minute and emails as .eml files; prints the dashboard
    /// URL and a login token. A second run reuses the data.
    Demo(DemoArgs),
    /// Serve HTTP: the Moota webhook, the JSON API, /healthz, /readyz and /metrics
    Serve(ServeArgs),
    /// Run the inbox worker only (for scale-out next to `serve --no-worker` nodes)
    Worker,
    /// Compute a merchant's retention metrics (repeat purchase, cohorts, RFM, BG/NBD churn,
    /// CLV, loyalty), store them as the latest snapshot and print them
    Metrics(MetricsArgs),
    /// The Moota sandbox simulator: push signed mutations, generate purchase histories
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Lifecycle email: deliver what is due, preview a template, choose the language
    #[command(subcommand)]
    Mail(MailCommand),
    /// Apply the database migrations this build knows (every command also does this)
    Migrate,
    /// Create and list merchants
    #[command(subcommand)]
    Merchant(MerchantCommand),
    /// Import customers from a CSV file, or erase one at their request
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// Import purchase history from a CSV file
    #[command(subcommand)]
    Transactions(TransactionsCommand),
    /// Import what purchases and orders held (order lines) from a CSV file
    #[command(subcommand)]
    Items(ItemsCommand),
    /// Reconciliation through Moota's API V2: find the payments a webhook never brought
    #[command(subcommand)]
    Moota(MootaCommand),
    /// Campaigns: a one-off email to an audience, with early access for the higher tiers
    /// and a holdout that shows what it earned
    #[command(subcommand)]
    Campaign(CampaignCommand),
}

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Write and schedule a campaign; prints it as JSON with the recipients it reaches now
    Create(CampaignCreateArgs),
    /// The merchant's campaigns, newest first, as JSON
    List(CampaignListArgs),
    /// One campaign with its delivery and its result against the holdout, as JSON
    Show(CampaignShowArgs),
}

#[derive(Debug, Args)]
pub struct CampaignCreateArgs {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
    /// What the merchant calls it (the dashboard's lists)
    #[arg(long)]
    pub name: String,
    /// tier:member|silver|gold, segment:NAME (an RFM segment), at_risk or all, joined with +
    #[arg(long)]
    pub audience: String,
    /// The subject: one line; may use {{name}}, {{tier}} and {{points}}
    #[arg(long)]
    pub subject: String,
    /// A Markdown file, at most 100 KB; may use {{name}}, {{tier}} and {{points}}
    #[arg(long, value_name = "FILE.md")]
    pub body: PathBuf,
    /// When the first (gold) wave goes, RFC 3339 [default: now]; not in the past
    #[arg(long, value_name = "RFC3339")]
    pub send_at: Option<String>,
    /// Gold members first, silver this many days later, everyone else as many days after
    #[arg(long, value_name = "D")]
    pub early_access_days: Option<u32>,
}

#[derive(Debug, Args)]
pub struct CampaignListArgs {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
}

#[derive(Debug, Args)]
pub struct CampaignShowArgs {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
    /// The campaign's id (cmp_…)
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum MootaCommand {
    /// Page through the merchant's credit mutations in a window of days (Asia/Jakarta, as
    /// Moota's) and put every one setia has not seen into the inbox; prints
    /// {"pages","mutations","new","already_known","window"}
    Sync(MootaSyncArgs),
}

#[derive(Debug, Args)]
pub struct MootaSyncArgs {
    /// The merchant's id (mer_…); it needs a token (`setia merchant moota`)
    #[arg(long)]
    pub merchant: String,
    /// The first day, YYYY-MM-DD [default: the day before the last sync's end, or the day
    /// the merchant was created]
    #[arg(long)]
    pub since: Option<String>,
    /// The last day, YYYY-MM-DD, not after today in Asia/Jakarta [default: today there]
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct MerchantMoota {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
    /// A file holding the Moota personal token (one string without spaces); never printed
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The Moota bank ids to reconcile, comma-separated (not account numbers); "all" for
    /// every bank of the account
    #[arg(long, value_name = "ID,ID|all")]
    pub banks: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MerchantCommand {
    /// Create a merchant; prints its id, webhook path, webhook secret and API token as JSON.
    /// The API token is shown only this once.
    Create(MerchantCreate),
    /// List merchants as a JSON array (no secrets)
    List,
    /// Replace a merchant's loyalty program with the one in a TOML file (keys:
    /// rupiah_per_point, silver_threshold_rupiah, silver_multiplier, gold_threshold_rupiah,
    /// gold_multiplier, bonus_every, bonus_points, birthday_points, expiry_days)
    Loyalty(MerchantProgram),
    /// Replace a merchant's engagement program with the one in a TOML file (top-level
    /// marketing_cap_days; [feedback] enabled, kind = "csat"|"nps", delay_days,
    /// resurvey_days, reminder, alert_at_or_below); prints the program in force as JSON
    Engagement(MerchantProgram),
    /// Store the merchant's Moota API token and the banks to reconcile; prints whether a
    /// token is set (never the token) and the banks
    Moota(MerchantMoota),
    /// Replace a leaked or departed colleague's credentials: a new API token (which ends
    /// every dashboard session of the merchant) and/or a new webhook secret (enter it in
    /// Moota's webhook settings too); prints the new ones as JSON, shown only this once
    Rotate(MerchantRotate),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true)
    .args(["api_token", "webhook_secret", "webhook_secret_file"])))]
pub struct MerchantRotate {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
    /// A new API token; the old one and every dashboard session stop working at once
    #[arg(long)]
    pub api_token: bool,
    /// A new random webhook secret; webhooks signed with the old one are refused within
    /// 30 seconds (Moota's later retries and the API reconciliation bring them in)
    #[arg(long, conflicts_with = "webhook_secret_file")]
    pub webhook_secret: bool,
    /// The new webhook secret, read from a file (one line), e.g. the one set in Moota
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MerchantProgram {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
    /// The program, as TOML; keys left out keep their defaults, an unknown key is an error
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct MerchantCreate {
    /// The merchant's name, as the dashboard and emails show it
    #[arg(long)]
    pub name: String,
    /// IANA time zone that days, cohorts and email schedules follow
    #[arg(long, default_value = "Asia/Jakarta")]
    pub timezone: String,
    /// The secret Moota signs webhooks with (default: 32 random bytes as hex)
    #[arg(long, conflicts_with = "webhook_secret_file")]
    pub webhook_secret: Option<String>,
    /// The webhook secret read from a file (one line), kept out of `ps` and shell history
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Where the weekly churn report goes (repeat the flag for several)
    #[arg(long = "report-email", value_name = "EMAIL")]
    pub report_emails: Vec<String>,
    /// A sandbox merchant: its payments are shown but never count, earn or mail anyone
    #[arg(long)]
    pub sandbox: bool,
    /// The loyalty program as a TOML file (see `setia merchant loyalty --help`); default:
    /// 1 point per Rp 10,000, silver ×1.25 from Rp 2,000,000 a year, gold ×1.5 from
    /// Rp 10,000,000, +50 every 5th purchase, +100 on the birthday, points expire after 365 days
    #[arg(long, value_name = "FILE.toml")]
    pub loyalty: Option<PathBuf>,
    /// The engagement program as a TOML file (see `setia merchant engagement --help`);
    /// default: at most one marketing email per customer every 3 days; a CSAT feedback
    /// request 3 days after a purchase, once per 90 days, with one reminder
    #[arg(long, value_name = "FILE.toml")]
    pub engagement: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Upsert customers by external_id from a CSV with the header
    /// external_id,name,email,birthday,virtual_account,payer_names,consent
    /// (only external_id is required; a blank cell keeps the stored value;
    /// birthday YYYY-MM-DD or MM-DD; payer_names ;-separated; consent true/false)
    Import(ImportArgs),
    /// Erase a customer at their request (Indonesia's UU PDP): name, email, birthday,
    /// virtual account and payer names are removed, with the payer text of their transfers,
    /// their feedback comments and their pending emails; their points are forfeited. The
    /// purchases stay, anonymous, under `erased-cus_N`, so revenue and metrics stay true.
    /// Prints what was taken out as JSON.
    Erase(CustomerArgs),
    /// Everything setia holds about a customer, as one JSON document, for their right of
    /// access (Indonesia's UU PDP): what the merchant told setia, profile and scores,
    /// purchases with their items, points, emails, feedback and referrals
    Export(CustomerArgs),
}

#[derive(Debug, Args)]
pub struct CustomerArgs {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
    /// The customer's external id
    pub external_id: String,
}

#[derive(Debug, Subcommand)]
pub enum TransactionsCommand {
    /// Backfill purchase history from a CSV with the header
    /// customer_external_id,occurred_at,amount[,reference]
    /// (occurred_at YYYY-MM-DD, YYYY-MM-DD HH:MM:SS in merchant time, or RFC 3339; amount a
    /// decimal ≥ 0; unknown customers are created; rows seen before are skipped, so a second
    /// import of the same file adds nothing)
    Import(TransactionImportArgs),
}

#[derive(Debug, Subcommand)]
pub enum ItemsCommand {
    /// Attach lines to imported purchases (by their reference) or orders (by external_id)
    /// from a CSV with the header reference,sku,name,quantity,unit_price[,category]
    /// (name may be blank for a known SKU; unknown SKUs become products; lines seen before
    /// are skipped, so a second import of the same file adds nothing)
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct TransactionImportArgs {
    #[command(flatten)]
    pub import: ImportArgs,
    /// Also award loyalty points for the imported purchases, oldest first, as the program
    /// would have at the time (imported history never sends email)
    #[arg(long)]
    pub award_points: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
    /// The CSV file
    pub file: PathBuf,
    /// Import the valid rows and list the rejected ones, instead of importing nothing
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:8080 or 127.0.0.1:0 for any free port
    /// [default: 127.0.0.1:8080; env: SETIA_LISTEN]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve HTTP only; inbox rows are left to `setia worker` processes
    #[arg(long)]
    pub no_worker: bool,
    /// Do not enqueue or deliver email here (leave it to `setia worker` processes)
    #[arg(long)]
    pub no_scheduler: bool,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
    /// The last day counted, YYYY-MM-DD in the merchant's zone, not after today there
    /// [default: today there]
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Cohorts by calendar month or by ISO week
    #[arg(long, value_enum, default_value_t = CohortPeriod::Month)]
    pub period: CohortPeriod,
    /// JSON (schema 1) or a readable table
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CohortPeriod {
    Month,
    Week,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Table,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Send simulated Moota mutations from sandbox accounts (bank transfers with bank-style
    /// descriptions, VA payments, duplicates and retries, a few debits), signed with the
    /// secret as Moota signs them; prints a summary of the answers
    Push(SandboxPush),
    /// Write a purchase history drawn from BG/NBD + Gamma-Gamma (CDNOW-like buying, a mean
    /// spend of Rp 150,000) over the two years to yesterday, in the transactions import format
    Generate(SandboxGenerate),
}

#[derive(Debug, Args)]
pub struct SandboxPush {
    /// The full webhook URL, e.g. http://127.0.0.1:8080/webhooks/moota/mer_…
    #[arg(long)]
    pub url: String,
    /// The merchant's webhook secret
    #[arg(long)]
    pub secret: String,
    /// How many deliveries to send
    #[arg(long, default_value_t = 100)]
    pub mutations: u64,
    /// Deliveries per second
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
}

#[derive(Debug, Args)]
pub struct SandboxGenerate {
    #[arg(long)]
    pub customers: u64,
    /// The expected number of purchases (the draw lands near it)
    #[arg(long)]
    pub purchases: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The CSV file to write
    #[arg(long, value_name = "FILE.csv")]
    pub out: PathBuf,
    /// Also write the purchases' order lines (`setia items import` format), drawn from a
    /// catalogue of Indonesian products and each customer's taste for a few categories
    #[arg(long, value_name = "FILE.csv")]
    pub items_out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Enqueue every email due (birthday offers, weekly reports; thank-you emails are
    /// enqueued with their purchase) and deliver the outbox once; prints
    /// {"enqueued":{"thank_you","birthday_offer","weekly_churn_report"},"sent","failed","retrying","held","suppressed"}
    RunDue(MailRunDueArgs),
    /// Print an email's subject, text and HTML as a merchant's templates render it
    Preview(MailPreviewArgs),
    /// Choose the language of a merchant's emails: id (Indonesian, the default) or en
    Language(MailLanguageArgs),
}

#[derive(Debug, Args)]
pub struct MailRunDueArgs {
    /// The instant to act as of, RFC 3339 [default: now]
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct MailPreviewArgs {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
    #[arg(long, value_enum)]
    pub kind: MailKind,
    /// A customer's external id: their real data instead of a sample customer's
    #[arg(long, value_name = "EXT_ID")]
    pub customer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum MailKind {
    ThankYou,
    BirthdayOffer,
    WeeklyChurnReport,
    FeedbackRequest,
    FeedbackAlert,
    Winback,
    ReferralReward,
    TierWelcome,
    TierNudge,
    Campaign,
}

#[derive(Debug, Args)]
pub struct MailLanguageArgs {
    /// The merchant's id (mer_…)
    #[arg(long)]
    pub merchant: String,
    /// id or en
    pub language: String,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to listen on [default: 127.0.0.1:8080; env: SETIA_LISTEN]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Start over: delete the embedded database (and its email folder) first
    #[arg(long)]
    pub reset: bool,
}
