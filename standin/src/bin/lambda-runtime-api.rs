//! `lambda-runtime-api [--listen 127.0.0.1:0] [--deadline-ms 30000]`: a Lambda Runtime
//! API emulator on loopback, for the benchmark (`bench/run.sh`). BENCH TOOLING, not part
//! of the function; what it serves is in [`transfer_standin::runtime_api`].

use std::net::SocketAddr;
use std::time::Duration;

use transfer_standin::runtime_api::{DEFAULT_DEADLINE, RuntimeApi};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut deadline = DEFAULT_DEADLINE;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?.parse()?,
            "--deadline-ms" => {
                let ms: u64 = args.next().ok_or("--deadline-ms needs a number")?.parse()?;
                deadline = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let api = RuntimeApi::start(listen, deadline).await?;
    println!("lambda-runtime-api listening on {}", api.addr());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
