//! `tuber-hub`: see `tuber-hub --help`, and `cli.rs` for the commands.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = tuber_hub::cli::Cli::parse();
    match tuber_hub::cli::main(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tuber-hub: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
