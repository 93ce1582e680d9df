//! A real etcd (Debian's `etcd-server`, /usr/bin/etcd) started on 127.0.0.1 with free ports and its
//! own data dir, killed by a guard. Missing binary: the test fails (CI installs it) unless
//! GOSSAMER_SKIP_ETCD=1. Readiness is probed with a raw HTTP/1.1 request to the v3 JSON gateway, so the
//! fixture does not depend on the client under test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_DEADLINE: Duration = Duration::from_secs(30);

/// A running etcd; killed (and its data dir removed) on drop.
pub struct Etcd {
    child: Child,
    /// Client URL, `http://127.0.0.1:<port>`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn etcd_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("GOSSAMER_ETCD_BIN") {
        return Some(PathBuf::from(p));
    }
    let default = PathBuf::from("/usr/bin/etcd");
    if default.exists() {
        return Some(default);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| PathBuf::from(d).join("etcd")).find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

fn spawn(bin: &Path) -> Etcd {
    let dir = tempfile::tempdir().expect("etcd data dir");
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new(bin)
        .args(["--name", "gossamer-test", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
        .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("gossamer-test={peer_url}"), "--log-level", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    Etcd { child, url, _dir: dir }
}

/// Ready when the v3 JSON gateway answers a range request (a raw HTTP/1.1 POST, no client crate).
async fn ready(url: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = url.trim_start_matches("http://");
    let Ok(Ok(mut sock)) = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(host)).await
    else {
        return false;
    };
    let body = r#"{"key":"cHJvYmU="}"#;
    let req = format!(
        "POST /v3/kv/range HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    if sock.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut resp = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(1), sock.read_to_end(&mut resp)).await;
    matches!(read, Ok(Ok(_))) && resp.starts_with(b"HTTP/1.1 200")
}

/// Starts etcd, or returns `None` when it is absent and GOSSAMER_SKIP_ETCD=1.
pub async fn start() -> Option<Etcd> {
    let Some(bin) = etcd_binary() else {
        if std::env::var("GOSSAMER_SKIP_ETCD").as_deref() == Ok("1") {
            // libtest names the test's thread after the test.
            let thread = std::thread::current();
            crate::skip::skip(thread.name().unwrap_or("an etcd test"), "etcd not found and GOSSAMER_SKIP_ETCD=1");
            return None;
        }
        panic!(
            "etcd binary not found (looked at $GOSSAMER_ETCD_BIN, /usr/bin/etcd, $PATH): install Debian's \
             etcd-server (`apt-get install -y etcd-server`), as CI does, or set GOSSAMER_SKIP_ETCD=1 to skip"
        );
    };
    // Free ports are picked then released, so another process may take one first: etcd then exits and
    // we retry with new ports.
    for attempt in 1..=3 {
        let mut etcd = spawn(&bin);
        let start = Instant::now();
        loop {
            if ready(&etcd.url).await {
                return Some(etcd);
            }
            assert!(start.elapsed() < READY_DEADLINE, "etcd did not become ready at {}", etcd.url);
            if let Ok(Some(status)) = etcd.child.try_wait() {
                eprintln!("etcd exited early ({status}) on attempt {attempt}; retrying with new ports");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("etcd failed to start three times");
}
