//! `transfer-standin --listen 127.0.0.1:9124 --seed demo/seed.json`
//!
//! Runs the local Transfer Family stand-in until interrupted (SIGINT/SIGTERM). The seed
//! format is in the library's documentation; a server's `GenerateUsers` seeds a large
//! fleet (`{"Count": 100000}`), and `POST /_standin/users` adds users to a running one.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:9124".parse()?;
    let mut seed = serde_json::json!({"Servers": []});
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?.parse()?,
            "--seed" => {
                let path = args.next().ok_or("--seed needs a file")?;
                seed = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let standin = transfer_standin::StandIn::start_on(listen, &seed).await?;
    println!("transfer-standin listening on {}", standin.endpoint());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
