// `sqlx::migrate!` embeds the SQL files when the crate compiles: a new or edited migration
// must rebuild it, or the binary silently keeps the old schema.
fn main() {
    println!("cargo:rerun-if-changed=../../sql");
}
