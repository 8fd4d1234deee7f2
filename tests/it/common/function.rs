//! The real function binary under the compiled Runtime API emulator
//! (`transfer_standin::runtime_api`), against a stand-in: what Lambda runs, with the
//! configuration read from the environment by `main`, as a deployment would.
//!
//! Shared with `examples/soak.rs` (through `#[path]`): [`Function::spawn`] takes the
//! binary and its configuration; [`Function::start`], the tests' own, is the demo's.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use transfer_standin::StandIn;
use transfer_standin::runtime_api::{DEFAULT_DEADLINE, RuntimeApi};

/// A running function process and its emulator; the process is killed when dropped.
pub struct Function {
    pub api: RuntimeApi,
    child: Child,
    pub log: std::path::PathBuf,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `demo/config.env` as a map (comments and blank lines skipped): the function's
/// configuration for the demo, the tests and the soak.
pub fn demo_vars() -> HashMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/config.env");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[cfg(test)]
impl Function {
    /// Starts the binary with `demo/config.env`, pointed at `standin`, with `extra`
    /// variables on top, and waits for its first `GET /next`.
    pub async fn start(standin: &StandIn, extra: &[(&str, &str)]) -> Self {
        let binary = Path::new(env!("CARGO_BIN_EXE_bootstrap"));
        Self::spawn(binary, demo_vars(), standin, extra).await
    }
}

impl Function {
    /// Starts `binary` with the configuration `vars`, pointed at `standin`, with `extra`
    /// variables on top, and waits for its first `GET /next`.
    pub async fn spawn(
        binary: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
        standin: &StandIn,
        extra: &[(&str, &str)],
    ) -> Self {
        let api = RuntimeApi::start("127.0.0.1:0".parse().unwrap(), DEFAULT_DEADLINE)
            .await
            .expect("emulator starts");
        let log = std::env::temp_dir().join(format!(
            "transfer-chroot-fn-{}-{}.log",
            std::process::id(),
            api.addr().port()
        ));
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .envs(vars)
            .env("CHECK_HOME_FOLDERS", "false")
            .env("AWS_LAMBDA_RUNTIME_API", api.addr().to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "transfer-chroot-test")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "test-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_ENDPOINT_URL_TRANSFER", standin.endpoint())
            .envs(extra.iter().copied())
            .stdout(out)
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("the function starts");
        let function = Self { api, child, log };
        function
            .api
            .ready()
            .await
            .expect("the function initialises");
        function
    }

    /// Invokes the function with `event` and returns its JSON result.
    pub async fn invoke(&self, event: &Value) -> Value {
        let r = self
            .api
            .invoke(event.to_string())
            .await
            .expect("the invocation is answered");
        assert_eq!(r.kind, "response", "{}", String::from_utf8_lossy(&r.body));
        serde_json::from_slice(&r.body).expect("a JSON result")
    }

    /// The JSON log lines the process printed (stdout), parsed.
    pub fn log_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
