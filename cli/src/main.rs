//! `infinicache`: store and fetch objects from the command line.
//!
//! ```text
//! infinicache put KEY FILE      # FILE "-" reads standard input
//! infinicache get KEY [FILE]    # no FILE: write to standard output
//! infinicache del KEY
//! infinicache exists KEY
//! infinicache dashboard [--admin ADDR] [--interval 1s]   # live view of a proxy
//! ```
//!
//! Exit status: 0 on success, 1 when the key does not exist (get, del,
//! exists), 2 on usage errors, 3 on any other failure.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use infinicache::Client;
use infinicache::client::TlsOptions;

#[derive(Debug, Parser)]
#[command(
    name = "infinicache",
    version,
    about = "InfiniCache command-line client"
)]
struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Command,
}

/// How to reach the proxies (the object commands).
#[derive(Debug, clap::Args)]
struct ClientArgs {
    /// Proxy address (repeat for several proxies).
    #[arg(
        short,
        long = "proxy",
        env = "INFINICACHE_PROXY",
        value_delimiter = ',',
        default_value = "127.0.0.1:6378"
    )]
    proxies: Vec<String>,
    /// Data shards per object (default: the proxy's suggestion).
    #[arg(short = 'k', long)]
    data_shards: Option<usize>,
    /// Parity shards per object (default: the proxy's suggestion).
    #[arg(short = 'r', long)]
    parity_shards: Option<usize>,
    /// The proxy's shared secret, if it requires one.
    #[arg(long, env = "INFINICACHE_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Connect over TLS, verifying the proxy against the system's CAs (or
    /// --tls-ca). INFINICACHE_TLS=1 (or true, yes, on) does the same.
    #[arg(
        long,
        env = "INFINICACHE_TLS",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    tls: bool,
    /// Connect over TLS, trusting the CA certificates of this PEM file.
    #[arg(long, value_name = "FILE", env = "INFINICACHE_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// The name the proxy's certificate must carry (default: the host of
    /// its address); implies --tls.
    #[arg(long, value_name = "NAME")]
    tls_server_name: Option<String>,
    /// Time limit per operation, e.g. 30s.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Object(ObjectCommand),
    /// A live view of a proxy: the function pool, throughput, latency,
    /// memory, invocations and cost (polls its admin API).
    Dashboard(infinicache_cli::dashboard::DashboardArgs),
}

#[derive(Debug, Subcommand)]
enum ObjectCommand {
    /// Store FILE (or standard input for "-") under KEY.
    Put { key: String, file: PathBuf },
    /// Fetch KEY into FILE, or to standard output.
    Get { key: String, file: Option<PathBuf> },
    /// Delete KEY.
    #[command(alias = "delete")]
    Del { key: String },
    /// Tell whether KEY exists.
    Exists { key: String },
}

/// How a command ended, beyond plain success.
enum Failure {
    NotFound(String),
    Error(String),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Object(command) => run(args.client, command).await,
        // The dashboard talks to the admin API, not the client listener.
        Command::Dashboard(dashboard) => infinicache_cli::dashboard::run(dashboard)
            .await
            .map_err(|err| Failure::Error(err.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::NotFound(key)) => {
            eprintln!("infinicache: {key}: not found");
            ExitCode::from(1)
        }
        Err(Failure::Error(message)) => {
            eprintln!("infinicache: {message}");
            ExitCode::from(3)
        }
    }
}

async fn run(args: ClientArgs, command: ObjectCommand) -> Result<(), Failure> {
    let error = |err: infinicache::Error| Failure::Error(err.to_string());
    let mut builder = Client::builder()
        .proxies(args.proxies)
        .timeout(args.timeout)
        .name("infinicache-cli");
    if let Some(secret) = args.secret {
        builder = builder.secret(secret);
    }
    if args.tls || args.tls_ca.is_some() || args.tls_server_name.is_some() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = args.tls_ca {
            tls = tls.ca_file(ca);
        }
        if let Some(name) = args.tls_server_name {
            tls = tls.server_name(name);
        }
        builder = builder.tls(tls);
    }
    if let Some(k) = args.data_shards {
        builder = builder.data_shards(k);
    }
    if let Some(r) = args.parity_shards {
        builder = builder.parity_shards(r);
    }
    let client = builder.connect().await.map_err(error)?;
    match command {
        ObjectCommand::Put { key, file } => {
            let data = read_input(&file).map_err(Failure::Error)?;
            let size = data.len();
            let version = client.put(key.as_str(), data).await.map_err(error)?;
            eprintln!("stored {key}: {size} bytes, version {version}");
        }
        ObjectCommand::Get { key, file } => {
            let Some(data) = client.get(key.as_str()).await.map_err(error)? else {
                return Err(Failure::NotFound(key));
            };
            let written = match &file {
                Some(path) => std::fs::write(path, &data),
                None => std::io::stdout().lock().write_all(&data),
            };
            written.map_err(|err| Failure::Error(format!("cannot write output: {err}")))?;
        }
        ObjectCommand::Del { key } => {
            if !client.delete(key.as_str()).await.map_err(error)? {
                return Err(Failure::NotFound(key));
            }
        }
        ObjectCommand::Exists { key } => {
            if !client.exists(key.as_str()).await.map_err(error)? {
                return Err(Failure::NotFound(key));
            }
            println!("{key} exists");
        }
    }
    Ok(())
}

fn read_input(file: &PathBuf) -> Result<Vec<u8>, String> {
    if file.as_os_str() == "-" {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|err| format!("cannot read standard input: {err}"))?;
        return Ok(data);
    }
    std::fs::read(file).map_err(|err| format!("cannot read {}: {err}", file.display()))
}
