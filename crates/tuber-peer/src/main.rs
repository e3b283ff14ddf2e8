//! `tuber-peer`: the headless Tuber peer. See `tuber-peer --help`, and
//! `daemon/cli.rs` for the commands.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = tuber_peer::daemon::cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match tuber_peer::daemon::cli::main(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tuber-peer: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
