//! The agent as a sidecar: its `[dns]` and `[http]` interfaces, tested with real agent processes, a real
//! DNS client (hickory's resolver; `dig` when installed) and a real HTTP client (reqwest), while members
//! join, crash (`kill -9`) and leave; and hostile input (a malformed DNS packet, an oversized HTTP
//! request) that must get a bounded refusal while the agent keeps answering.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

fn resolver(dns: SocketAddr) -> TokioResolver {
    let mut server = NameServerConfig::udp_and_tcp(dns.ip());
    for conn in &mut server.connections {
        conn.port = dns.port();
    }
    let mut builder = TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![server]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().timeout = Duration::from_secs(2);
    builder.options_mut().attempts = 2;
    builder.build().expect("resolver")
}

/// A/AAAA addresses of `name`; empty on NXDOMAIN or no records.
async fn ips(r: &TokioResolver, name: &str) -> BTreeSet<IpAddr> {
    r.clear_cache();
    r.lookup_ip(name).await.map(|l| l.iter().collect()).unwrap_or_default()
}

/// SRV (target, port) pairs of `name`.
async fn srv(r: &TokioResolver, name: &str) -> BTreeSet<(String, u16)> {
    r.clear_cache();
    match r.srv_lookup(name).await {
        Ok(l) => l
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::SRV(s) => Some((s.target.to_ascii(), s.port)),
                _ => None,
            })
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Polls an async condition until it holds (generous bound), panicking with the agents' logs.
async fn until<F: std::future::Future<Output = bool>>(what: &str, agents: &[&Agent], mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        if Instant::now() > deadline {
            for a in agents {
                eprintln!("--- log of {} ---\n{}", a.name, a.log());
            }
            panic!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One raw query over UDP (or TCP), answered within 5 s.
fn raw_query(dns: SocketAddr, name: &str, rtype: RecordType, tcp: bool) -> Message {
    let mut msg = Message::query();
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let bytes = msg.to_vec().unwrap();
    let answer = if tcp {
        let mut s = std::net::TcpStream::connect(dns).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let len = u16::try_from(bytes.len()).unwrap().to_be_bytes();
        s.write_all(&[&len[..], &bytes].concat()).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).unwrap();
        buf
    } else {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(&bytes, dns).unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = s.recv_from(&mut buf).expect("a DNS answer within 5 s");
        buf.truncate(n);
        buf
    };
    Message::from_vec(&answer).expect("a well-formed DNS answer")
}

fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

/// `dig` output lines of the answer section, or None when dig is not installed.
fn dig(dns: SocketAddr, name: &str, rtype: &str, tcp: bool) -> Option<Vec<String>> {
    let mut cmd = std::process::Command::new("dig");
    cmd.args([
        format!("@{}", dns.ip()),
        "-p".into(),
        dns.port().to_string(),
        name.into(),
        rtype.into(),
        "+short".into(),
    ]);
    if tcp {
        cmd.arg("+tcp");
    }
    let out = cmd.output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Three agents on 127.0.0.1/2/3 (distinct addresses, so A records tell them apart); the first serves
/// `[dns]` and `[http]`, the others join it. A and SRV answers follow a join, a `kill -9` and a leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_track_join_crash_and_leave() {
    let dir = test_dir("sidecar-dns");
    let dns_port = free_port();
    let http_port = free_port();
    let dns = loopback(dns_port);
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a_addr = loopback(pa);
    let b_addr: SocketAddr = format!("127.0.0.2:{pb}").parse().unwrap();
    let c_addr: SocketAddr = format!("127.0.0.3:{pc}").parse().unwrap();
    let sidecar = format!(
        "[metadata]\nrole = \"web\"\n[http]\nbind = \"127.0.0.1:{http_port}\"\n[dns]\nbind = \"{dns}\"\ndomain = \"gossamer.\"\nttl = 1\n"
    );
    let a = Agent::spawn(&dir, "web-1", a_addr, &[], &sidecar);
    let r = resolver(dns);
    until("the DNS interface answers with web-1", &[&a], || async {
        ips(&r, "gossamer.").await == [ip("127.0.0.1")].into()
    })
    .await;

    let b = Agent::spawn(&dir, "web-2", b_addr, &[a_addr], "[metadata]\nrole = \"web\"\n");
    let mut c = Agent::spawn(&dir, "db-1", c_addr, &[a_addr], "[metadata]\nrole = \"db\"\n");
    let all: BTreeSet<IpAddr> = [ip("127.0.0.1"), ip("127.0.0.2"), ip("127.0.0.3")].into();
    until("A answers list the three members", &[&a, &b, &c], || async { ips(&r, "members.gossamer.").await == all })
        .await;
    assert_eq!(ips(&r, "gossamer.").await, all);
    let want_srv: BTreeSet<(String, u16)> = [
        ("web-1.node.gossamer.".to_owned(), pa),
        ("web-2.node.gossamer.".to_owned(), pb),
        ("db-1.node.gossamer.".to_owned(), pc),
    ]
    .into();
    assert_eq!(srv(&r, "_gossamer._udp.gossamer.").await, want_srv);
    assert_eq!(srv(&r, "_gossamer._tcp.gossamer.").await, want_srv);
    assert_eq!(ips(&r, "web-2.node.gossamer.").await, [ip("127.0.0.2")].into());
    assert_eq!(ips(&r, "WEB.role.tag.gossamer.").await, [ip("127.0.0.1"), ip("127.0.0.2")].into());
    assert_eq!(ips(&r, "db.role.tag.gossamer.").await, [ip("127.0.0.3")].into());
    assert_eq!(srv(&r, "_gossamer._udp.db.role.tag.gossamer.").await, [("db-1.node.gossamer.".to_owned(), pc)].into());

    // Answer codes, with raw queries over UDP and TCP.
    let m = raw_query(dns, "members.gossamer.", RecordType::A, true);
    assert_eq!((rcode(&m), m.answers.len()), (ResponseCode::NoError, 3), "over TCP: {m:?}");
    assert!(m.answers.iter().all(|rec| rec.ttl == 1), "{m:?}");
    assert!(m.metadata.authoritative, "{m:?}");
    let m = raw_query(dns, "nobody.node.gossamer.", RecordType::A, false);
    assert_eq!(rcode(&m), ResponseCode::NXDomain, "{m:?}");
    let m = raw_query(dns, "members.gossamer.", RecordType::AAAA, false);
    assert_eq!((rcode(&m), m.answers.len()), (ResponseCode::NoError, 0), "a name without AAAA: {m:?}");
    let m = raw_query(dns, "example.com.", RecordType::A, false);
    assert_eq!(rcode(&m), ResponseCode::Refused, "outside the domain: {m:?}");

    // A malformed packet and a truncated one: refused (or dropped), and the server keeps answering.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xffgarbage", dns).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf).expect("a FORMERR answer to a malformed query");
    let refusal = Message::from_vec(&buf[..n]).expect("a well-formed refusal");
    assert_eq!((refusal.metadata.id, rcode(&refusal)), (0x1234, ResponseCode::FormErr), "{refusal:?}");
    s.send_to(b"\x00", dns).unwrap();
    s.send_to(&[0xffu8; 600], dns).unwrap();
    let m = raw_query(dns, "web-1.node.gossamer.", RecordType::A, false);
    assert_eq!((rcode(&m), m.answers.len()), (ResponseCode::NoError, 1), "after garbage: {m:?}");

    match dig(dns, "members.gossamer.", "A", false) {
        Some(lines) => {
            let got: BTreeSet<IpAddr> = lines.iter().filter_map(|l| l.parse().ok()).collect();
            assert_eq!(got, all, "dig A: {lines:?}");
            let lines = dig(dns, "_gossamer._udp.gossamer.", "SRV", true).unwrap();
            assert_eq!(lines.len(), 3, "dig +tcp SRV: {lines:?}");
        }
        None => eprintln!("SKIPPED: the `dig` checks (dig is not installed; apt-get install dnsutils)"),
    }

    // kill -9: the member is dropped from every answer once the agent stops seeing it alive.
    let killed = Instant::now();
    c.kill();
    let two: BTreeSet<IpAddr> = [ip("127.0.0.1"), ip("127.0.0.2")].into();
    until("the crashed member leaves the A answers", &[&a, &b], || async { ips(&r, "members.gossamer.").await == two })
        .await;
    let detected = killed.elapsed();
    // Suspect is not alive: it is dropped as soon as it is suspected, never served while in doubt.
    let m = raw_query(dns, "db-1.node.gossamer.", RecordType::A, false);
    assert_eq!(rcode(&m), ResponseCode::NXDomain, "{m:?}");
    let m = raw_query(dns, "db.role.tag.gossamer.", RecordType::A, false);
    assert_eq!(rcode(&m), ResponseCode::NXDomain, "{m:?}");
    assert_eq!(srv(&r, "_gossamer._udp.gossamer.").await.len(), 2);
    eprintln!("kill -9 of db-1 left the DNS answers after {detected:?}");

    // A graceful leave.
    let out = b.admin(&["cluster", "leave"]);
    assert!(out.status.success(), "leave: {}", String::from_utf8_lossy(&out.stderr));
    until("the member that left leaves the A answers", &[&a], || async {
        ips(&r, "members.gossamer.").await == [ip("127.0.0.1")].into()
    })
    .await;
    assert_eq!(srv(&r, "_gossamer._udp.gossamer.").await, [("web-1.node.gossamer.".to_owned(), pa)].into());
    drop(a);
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(10)).no_proxy().build().unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    match client.get(url).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// The value of the sample `line_prefix` (a metric name with its labels) in OpenMetrics `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Checks `text` is OpenMetrics: comment or `name[{labels}] value` lines, ending with `# EOF`.
fn assert_openmetrics(text: &str) {
    assert!(text.ends_with("# EOF\n"), "no EOF trailer:\n{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
        assert!(name.starts_with("gossamer_"), "{line:?}");
        assert!(value.parse::<f64>().is_ok(), "value of {line:?}");
    }
}

/// `/v1/members` with filters, `/v1/health` 503 until `expected_size` members are alive and again after
/// a crash, `/metrics` that parses and moves; an oversized request gets 431 and the agent keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_members_health_metrics_and_refusals() {
    let dir = test_dir("sidecar-http");
    let http_port = free_port();
    let base = format!("http://127.0.0.1:{http_port}");
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a_addr = loopback(pa);
    let extra = format!(
        "[metadata]\nrole = \"web\"\nzone = \"a\"\n[http]\nbind = \"127.0.0.1:{http_port}\"\nexpected_size = 3\n"
    );
    let a = Agent::spawn(&dir, "web-1", a_addr, &[], &extra);
    let client = http_client();

    until("the HTTP API answers", &[&a], || async { get(&client, &format!("{base}/v1/health")).await.0 != 0 }).await;
    let (status, body) = get(&client, &format!("{base}/v1/health")).await;
    assert_eq!(status, 503, "alone, with expected_size = 3: {body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((health["healthy"].as_bool(), health["alive"].as_u64()), (Some(false), Some(1)), "{body}");

    let b_http = free_port();
    let b_extra = format!("[metadata]\nrole = \"web\"\nzone = \"b\"\n[http]\nbind = \"127.0.0.1:{b_http}\"\n");
    let b = Agent::spawn(&dir, "web-2", loopback(pb), &[a_addr], &b_extra);
    let mut c = Agent::spawn(&dir, "db-1", loopback(pc), &[a_addr], "[metadata]\nrole = \"db\"\nzone = \"a\"\n");
    until("health is 200 with three alive members", &[&a, &b, &c], || async {
        get(&client, &format!("{base}/v1/health")).await.0 == 200
    })
    .await;

    let names = |body: &str| -> BTreeSet<String> {
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        v.as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_owned()).collect()
    };
    let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let (status, body) = get(&client, &format!("{base}/v1/members")).await;
    assert_eq!(status, 200);
    assert_eq!(names(&body), set(&["web-1", "web-2", "db-1"]));
    let (_, body) = get(&client, &format!("{base}/v1/members?status=alive&tag=role%3Dweb")).await;
    assert_eq!(names(&body), set(&["web-1", "web-2"]));
    let (_, body) = get(&client, &format!("{base}/v1/members?tag=role=web&tag=zone=a")).await;
    assert_eq!(names(&body), set(&["web-1"]));
    let (_, body) = get(&client, &format!("{base}/v1/members?name=%5Edb-")).await;
    assert_eq!(names(&body), set(&["db-1"]));
    let (_, body) = get(&client, &format!("{base}/v1/members?status=dead")).await;
    assert_eq!(names(&body), set(&[]));
    assert_eq!(get(&client, &format!("{base}/v1/members?status=zombie")).await.0, 400);
    assert_eq!(get(&client, &format!("{base}/v1/members?name=(")).await.0, 400);
    assert_eq!(get(&client, &format!("{base}/nothing-here")).await.0, 404);
    let posted = client.post(format!("{base}/v1/members")).body("x").send().await.unwrap();
    assert_eq!(posted.status().as_u16(), 405);

    // Metrics: OpenMetrics text whose counters move between two scrapes.
    let resp = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let first = resp.text().await.unwrap();
    assert_openmetrics(&first);
    assert_eq!(sample(&first, "gossamer_members{status=\"alive\"}"), Some(3.0), "{first}");
    for name in ["gossamer_messages_in_total", "gossamer_bytes_out_total", "gossamer_net_streams_accepted_total"] {
        assert!(sample(&first, name).is_some(), "{name} missing:\n{first}");
    }
    let probes = sample(&first, "gossamer_probes_total").unwrap();
    until("the probe counter moves", &[&a], || async {
        let (_, text) = get(&client, &format!("{base}/metrics")).await;
        sample(&text, "gossamer_probes_total").is_some_and(|p| p > probes)
    })
    .await;

    // Probes were acked: their round trips are in the histogram, all well under a second on loopback.
    let (_, text) = get(&client, &format!("{base}/metrics")).await;
    let rtts = sample(&text, "gossamer_probe_rtt_seconds_count").unwrap_or(0.0);
    assert!(rtts >= 1.0, "no probe round trip recorded:\n{text}");
    assert_eq!(sample(&text, "gossamer_probe_rtt_seconds_bucket{le=\"1.0\"}"), Some(rtts), "{text}");

    // b joined through a push-pull with a: its duration is in b's histogram.
    let (_, text) = get(&client, &format!("http://127.0.0.1:{b_http}/metrics")).await;
    assert_openmetrics(&text);
    let joins = sample(&text, "gossamer_net_push_pull_duration_seconds_count").unwrap_or(0.0);
    assert!(joins >= 1.0, "b's join push-pull not in its histogram:\n{text}");
    let within_10s = sample(&text, "gossamer_net_push_pull_duration_seconds_bucket{le=\"10.0\"}");
    assert_eq!(within_10s, Some(joins), "a loopback push-pull took over 10 s?\n{text}");

    // An oversized request head: 431 (bounded by hyper's header buffer), then the agent still serves.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", http_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let big = format!("GET /v1/members HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(20 * 1024));
    let _ = s.write_all(big.as_bytes());
    let mut head = [0u8; 12];
    s.read_exact(&mut head).expect("an answer to the oversized request");
    assert_eq!(&head, b"HTTP/1.1 431", "{}", String::from_utf8_lossy(&head));
    drop(s);
    // A client that never finishes its head is cut off (header timeout), not served forever.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", http_port)).unwrap();
    slow.write_all(b"GET /v1/members HTTP/1.1\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(25), "a stalled request head was not cut off");
    assert_eq!(get(&client, &format!("{base}/v1/health")).await.0, 200, "the agent kept serving");

    // A crash: health goes back to 503 once the member is no longer alive.
    c.kill();
    until("health is 503 after a member crashed", &[&a, &b], || async {
        get(&client, &format!("{base}/v1/health")).await.0 == 503
    })
    .await;
    let (_, body) = get(&client, &format!("{base}/v1/members?status=alive")).await;
    assert_eq!(names(&body), set(&["web-1", "web-2"]));
    let (_, text) = get(&client, &format!("{base}/metrics")).await;
    assert_eq!(sample(&text, "gossamer_members{status=\"alive\"}"), Some(2.0), "{text}");
    drop(b);
}

/// Connections beyond `max_connections` are answered 503 at once and closed; once the held ones close,
/// requests are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_connections_beyond_the_limit_are_refused_with_503() {
    let dir = test_dir("sidecar-http-limit");
    let http_port = free_port();
    let base = format!("http://127.0.0.1:{http_port}");
    let extra = format!("[http]\nbind = \"127.0.0.1:{http_port}\"\nmax_connections = 2\n");
    let a = Agent::spawn(&dir, "solo", loopback(free_port()), &[], &extra);
    let client = http_client();
    until("the HTTP API answers", &[&a], || async { get(&client, &format!("{base}/v1/health")).await.0 == 200 }).await;
    // Two connections that send nothing hold both slots (for up to the 5 s header timeout).
    let held: Vec<std::net::TcpStream> =
        (0..2).map(|_| std::net::TcpStream::connect(("127.0.0.1", http_port)).unwrap()).collect();
    // Connections the agent accepted after both slots were taken get the busy answer. The slots may be
    // taken a moment after `connect` returns, so retry (well within the header timeout) until one is.
    let mut refused = None;
    for _ in 0..20 {
        let mut third = std::net::TcpStream::connect(("127.0.0.1", http_port)).unwrap();
        third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = third.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n");
        let mut answer = Vec::new();
        let _ = third.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if text.starts_with("HTTP/1.1 503") {
            refused = Some(text);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = refused.expect("a connection beyond max_connections = 2 was served");
    assert!(refused.contains("connection: close"), "{refused}");
    drop(held);
    until("requests are served again once the held connections closed", &[&a], || async {
        get(&client, &format!("{base}/v1/health")).await.0 == 200
    })
    .await;
}
