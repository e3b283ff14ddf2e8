//! The `tuber-peer` command line: `run` starts the daemon in the foreground;
//! `status`, `join`, `leave`, `pause`, `resume` and `set` act on the running
//! one through its local API.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use http::Method;

use super::api::{JoinRequest, LeaveRequest};
use super::client::DaemonClient;
use super::run::{self, RunOptions};
use super::units::{parse_rate, parse_size};
use super::{status, DaemonError};
use crate::engine::{Settings, SettingsPatch, Status};

/// Tuber peer: share websites' content from this machine, headless.
#[derive(Debug, Parser)]
#[command(name = "tuber-peer", version, about)]
pub struct Cli {
    /// Data directory: key, store, settings, API token (default: the OS
    /// config dir, ~/.config/tuber-peer on Linux).
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the peer in the foreground, with its local API, until Ctrl-C or
    /// SIGTERM.
    Run(RunArgs),
    /// Show the running peer's swarms, peers, rates and store usage.
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Join a swarm by its site's URL.
    Join {
        /// The site's URL, e.g. https://example.com/.
        url: String,
        /// An invite from the site's operator, to share as a trusted peer.
        #[arg(long, value_name = "TOKEN")]
        invite: Option<String>,
    },
    /// Leave a swarm (its cached pieces stay until evicted).
    Leave {
        /// The swarm's URL.
        url: String,
    },
    /// Pause sharing: every request is answered busy.
    Pause,
    /// Resume sharing.
    Resume,
    /// Change the caps and the disk budget.
    Set(SetArgs),
}

/// `run`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Join this swarm at start (unless already joined). Repeatable.
    #[arg(long = "join", value_name = "URL")]
    pub join: Vec<String>,
    /// The invite for the --join just before it.
    #[arg(long = "invite", value_name = "TOKEN", requires = "join")]
    pub invite: Vec<String>,
    /// Address of the local API: a loopback address only (port 0: any free
    /// port).
    #[arg(long, value_name = "ADDR", default_value = super::DEFAULT_API)]
    pub api: SocketAddr,
    /// A PEM file of extra CA certificates to trust for https:// hubs (a
    /// private deployment), on top of the system's and the bundled roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Send invites to http:// hubs on public addresses, in cleartext
    /// (refused by default: anyone on the way could read the invite).
    #[arg(long)]
    pub allow_insecure: bool,
    /// Each --join with its --invite, in order (filled by [`parse_from`]).
    #[arg(skip)]
    pub joins: Vec<(String, Option<String>)>,
}

/// `set`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SetArgs {
    /// Upload cap, e.g. 2MB/s, 512KiB/s; 0 or unlimited for none.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub upload_cap: Option<u64>,
    /// Download cap, e.g. 10MB/s; 0 or unlimited for none.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub download_cap: Option<u64>,
    /// Disk budget for cached pieces, e.g. 10GB, 512MiB. Lowering it evicts
    /// at once.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub disk_budget: Option<u64>,
}

/// Parses the process's arguments, exiting with clap's message on error.
pub fn parse() -> Cli {
    parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// Parses `args` (the first is the program name), pairing each `--invite`
/// with the `--join` before it.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let (Command::Run(run), Some(("run", sub))) = (&mut cli.command, matches.subcommand()) {
        run.joins = pair_invites(sub)?;
    }
    Ok(cli)
}

fn pair_invites(m: &ArgMatches) -> Result<Vec<(String, Option<String>)>, clap::Error> {
    let urls: Vec<(usize, String)> = indexed(m, "join");
    let mut joins: Vec<(String, Option<String>)> =
        urls.iter().map(|(_, u)| (u.clone(), None)).collect();
    for (at, invite) in indexed(m, "invite") {
        let owner = urls.iter().rposition(|(i, _)| *i < at);
        let slot = owner.and_then(|o| joins.get_mut(o));
        match slot {
            Some((_, inv @ None)) => *inv = Some(invite),
            Some((url, Some(_))) => {
                return Err(Cli::command().error(
                    ErrorKind::ArgumentConflict,
                    format!("two --invite for --join {url}"),
                ))
            }
            None => {
                return Err(Cli::command().error(
                    ErrorKind::ArgumentConflict,
                    "--invite must follow the --join it belongs to",
                ))
            }
        }
    }
    Ok(joins)
}

fn indexed(m: &ArgMatches, id: &str) -> Vec<(usize, String)> {
    match (m.indices_of(id), m.get_many::<String>(id)) {
        (Some(at), Some(values)) => at.zip(values.cloned()).collect(),
        _ => Vec::new(),
    }
}

/// Does what the command line says.
pub async fn main(cli: Cli) -> Result<(), DaemonError> {
    let data_dir = match cli.data {
        Some(d) => d,
        None => crate::identity::default_config_dir().ok_or_else(|| {
            DaemonError::Usage("this system names no config directory; pass --data DIR".into())
        })?,
    };
    if let Command::Run(args) = cli.command {
        return run::run(RunOptions {
            data_dir,
            api: args.api,
            joins: args.joins,
            ca_file: args.ca_file,
            allow_insecure: args.allow_insecure,
        })
        .await;
    }
    let client = DaemonClient::for_data_dir(&data_dir)?;
    match cli.command {
        Command::Run(_) => Err(DaemonError::Usage("run is handled above".into())),
        Command::Status { json } => {
            let s: Status = client.get("/api/status").await?;
            if json {
                let text = serde_json::to_string_pretty(&s)
                    .map_err(|e| DaemonError::Server(e.to_string()))?;
                println!("{text}");
            } else {
                print!("{}", status::render(&s));
            }
            Ok(())
        }
        Command::Join { url, invite } => {
            let body = JoinRequest { url, invite };
            let answer: serde_json::Value = client
                .send(Method::POST, "/api/swarms", Some(&body))
                .await?;
            println!("joined {}", answer_url(&answer, &body.url));
            Ok(())
        }
        Command::Leave { url } => {
            let body = LeaveRequest { url };
            let answer: serde_json::Value = client
                .send(Method::DELETE, "/api/swarms", Some(&body))
                .await?;
            println!("left {}", answer_url(&answer, &body.url));
            Ok(())
        }
        Command::Pause => {
            let _: Settings = client.send(Method::POST, "/api/pause", None::<&()>).await?;
            println!("sharing paused");
            Ok(())
        }
        Command::Resume => {
            let _: Settings = client
                .send(Method::POST, "/api/resume", None::<&()>)
                .await?;
            println!("sharing resumed");
            Ok(())
        }
        Command::Set(args) => {
            let patch = SettingsPatch {
                upload_bps: args.upload_cap,
                download_bps: args.download_cap,
                disk_budget: args.disk_budget,
                paused: None,
            };
            if patch == SettingsPatch::default() {
                return Err(DaemonError::Usage(
                    "nothing to set: give --upload-cap, --download-cap or --disk-budget".into(),
                ));
            }
            let new: Settings = client
                .send(Method::PATCH, "/api/settings", Some(&patch))
                .await?;
            println!("{}", status::caps(&new));
            Ok(())
        }
    }
}

fn answer_url(answer: &serde_json::Value, asked: &str) -> String {
    answer
        .get("url")
        .and_then(|u| u.as_str())
        .unwrap_or(asked)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let cli = parse_from(std::iter::once("tuber-peer").chain(args.iter().copied()))?;
        match cli.command {
            Command::Run(r) => Ok(r),
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn invites_pair_with_the_join_before_them() {
        let r = run_args(&[
            "run",
            "--join",
            "http://a/",
            "--invite",
            "tok-a",
            "--join",
            "http://b/",
            "--join",
            "http://c/",
            "--invite",
            "tok-c",
        ])
        .unwrap();
        assert_eq!(
            r.joins,
            vec![
                ("http://a/".to_string(), Some("tok-a".to_string())),
                ("http://b/".to_string(), None),
                ("http://c/".to_string(), Some("tok-c".to_string())),
            ]
        );
        assert_eq!(r.api, "127.0.0.1:7447".parse::<SocketAddr>().unwrap());
    }

    #[test]
    fn a_stray_or_double_invite_is_refused() {
        assert!(run_args(&["run", "--invite", "x", "--join", "http://a/"]).is_err());
        assert!(run_args(&["run", "--invite", "x"]).is_err());
        assert!(run_args(&[
            "run",
            "--join",
            "http://a/",
            "--invite",
            "x",
            "--invite",
            "y"
        ])
        .is_err());
    }

    #[test]
    fn data_is_global_and_set_parses_units() {
        let cli = parse_from([
            "tuber-peer",
            "set",
            "--upload-cap",
            "2MB/s",
            "--disk-budget",
            "512MiB",
            "--data",
            "/tmp/x",
        ])
        .unwrap();
        assert_eq!(cli.data, Some(PathBuf::from("/tmp/x")));
        match cli.command {
            Command::Set(s) => {
                assert_eq!(s.upload_cap, Some(2_000_000));
                assert_eq!(s.download_cap, None);
                assert_eq!(s.disk_budget, Some(512 << 20));
            }
            other => panic!("not set: {other:?}"),
        }
        assert!(parse_from(["tuber-peer", "set", "--upload-cap", "fast"]).is_err());
    }

    #[test]
    fn a_non_loopback_api_is_refused() {
        let r = run_args(&["run", "--api", "0.0.0.0:7447"]).unwrap();
        let e = run::check_loopback(r.api).unwrap_err().to_string();
        assert!(e.contains("loopback"), "{e}");
        assert!(run::check_loopback("[::1]:0".parse().unwrap()).is_ok());
        assert!(run::check_loopback("127.0.0.1:0".parse().unwrap()).is_ok());
    }
}
