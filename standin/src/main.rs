//! `transfer-standin --listen 127.0.0.1:9124 --seed demo/seed.json
//!  [--tls-listen 127.0.0.1:0 --tls-cert-out DIR]`
//!
//! Runs the local Transfer Family stand-in until interrupted (SIGINT/SIGTERM). The seed
//! format is in the library's documentation; a server's `GenerateUsers` seeds a large
//! fleet (`{"Count": 100000}`), and `POST /_standin/users` adds users to a running one.
//! A seed's `Directory` adds an Identity Store on the same port (the value for
//! `AWS_ENDPOINT_URL_IDENTITYSTORE`).
//!
//! With `--tls-listen`, it also serves the same state over TLS, with a throw-away CA
//! made at start (written to `DIR/ca.pem` for the client: `AWS_CA_BUNDLE`), and prints
//! a second line, `transfer-standin TLS listening on https://127.0.0.1:<port>`. Plain
//! http stays the default (the tests and the demo use it).

use std::net::SocketAddr;
use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:9124".parse()?;
    let mut tls_listen: Option<SocketAddr> = None;
    let mut cert_out: Option<PathBuf> = None;
    let mut seed = serde_json::json!({"Servers": []});
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?.parse()?,
            "--tls-listen" => {
                tls_listen = Some(
                    args.next()
                        .ok_or("--tls-listen needs an address")?
                        .parse()?,
                )
            }
            "--tls-cert-out" => {
                cert_out = Some(
                    args.next()
                        .ok_or("--tls-cert-out needs a directory")?
                        .into(),
                )
            }
            "--seed" => {
                let path = args.next().ok_or("--seed needs a file")?;
                seed = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    transfer_standin::compile_patterns();
    let mut standin = transfer_standin::StandIn::start_on(listen, &seed).await?;
    let tls = match (tls_listen, cert_out) {
        (Some(addr), Some(dir)) => {
            let identity = transfer_standin::tls::TlsIdentity::generate()?;
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("ca.pem"), identity.ca_pem())?;
            Some(standin.listen_tls(addr, &identity).await?)
        }
        (None, None) => None,
        _ => return Err("--tls-listen and --tls-cert-out go together".into()),
    };
    println!("transfer-standin listening on {}", standin.endpoint());
    if let Some(endpoint) = tls {
        println!("transfer-standin TLS listening on {endpoint}");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
