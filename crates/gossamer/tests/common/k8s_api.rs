//! A minimal HTTP/1.1 server on 127.0.0.1 standing in for the Kubernetes API server: it serves one
//! canned JSON body at one request target, and only to requests carrying the expected bearer token
//! (others get the API's 401 `Status`). Every request's target and Authorization header is recorded.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One recorded request: target (path and query) and its Authorization header.
#[derive(Debug, Clone)]
pub struct Seen {
    pub target: String,
    pub authorization: Option<String>,
}

/// The running stand-in; its accept loop stops when dropped.
pub struct FakeK8s {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeK8s {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Route {
    target: String,
    token: String,
    body: String,
}

const UNAUTHORIZED: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
const NOT_FOUND: &str =
    r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"not found","reason":"NotFound","code":404}"#;

async fn serve_one(mut sock: TcpStream, route: Arc<Route>, seen: Arc<Mutex<Vec<Seen>>>) {
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
    let authorization = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    seen.lock().unwrap().push(Seen { target: target.clone(), authorization: authorization.clone() });
    let (status, body) = if authorization.as_deref() != Some(&format!("Bearer {}", route.token)) {
        (401, UNAUTHORIZED)
    } else if target == route.target {
        (200, route.body.as_str())
    } else {
        (404, NOT_FOUND)
    };
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

impl FakeK8s {
    /// Serves `body` at `target` to requests bearing `token`.
    pub async fn start(target: &str, token: &str, body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let route = Arc::new(Route { target: target.into(), token: token.into(), body });
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let s = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve_one(sock, route.clone(), s.clone()));
            }
        });
        FakeK8s { url, seen, task }
    }
}
