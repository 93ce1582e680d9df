//! A minimal HTTP/1.1 server on 127.0.0.1 (optionally HTTPS) standing in for HTTP APIs that cannot run
//! here (Kubernetes, Rancher metadata): canned (status, body) per request target, answered with the real
//! API's JSON, and every request recorded so tests can check the path, query and headers a strategy sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path with query.
    pub target: String,
    /// Headers, names lower-cased.
    pub headers: HashMap<String, String>,
}

/// A minimal HTTP/1.1 server: canned (status, body) per request target, one request per connection.
pub struct FakeApi {
    /// `http://127.0.0.1:<port>` (or `https://`).
    pub url: String,
    routes: Arc<Mutex<HashMap<String, (u16, String)>>>,
    /// Every request served so far, in arrival order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head from `sock`, records it, and answers from `routes`.
async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    routes: Arc<Mutex<HashMap<String, (u16, String)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let target = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_string();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    seen.lock().unwrap().push(Seen { target: target.clone(), headers });
    let (status, body) = routes.lock().unwrap().get(&target).cloned().unwrap_or((
        404,
        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"not found","reason":"NotFound","code":404}"#.into(),
    ));
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

impl FakeApi {
    /// Starts a plain HTTP server with no routes (every target answers the Kubernetes 404 `Status`).
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// With `tls`, the server speaks HTTPS (like a real API server) and the URL is `https://`.
    pub async fn start_with(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake API listener");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("fake API address"));
        let routes: Arc<Mutex<HashMap<String, (u16, String)>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (r, s) = (routes.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (r, s, tls) = (r.clone(), s.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve_one(sock, r, s).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(sock).await {
                                serve_one(stream, r, s).await
                            }
                        }
                    }
                });
            }
        });
        FakeApi { url, routes, seen, task }
    }

    /// Answers `target` (path with query, exactly) with `status` and `body`.
    pub fn route(&self, target: &str, status: u16, body: &str) {
        self.routes.lock().expect("routes lock").insert(target.to_string(), (status, body.to_string()));
    }

    /// The latest request served; panics if none arrived.
    pub fn last(&self) -> Seen {
        self.seen.lock().expect("seen lock").last().cloned().expect("no request reached the fake API")
    }
}
