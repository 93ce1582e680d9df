//! The agent file's schema-driven tables, tested on real agent processes and real sockets: `[runtime]`
//! limits set in the file and by `GOSSAMER_RUNTIME_*` take effect on the TCP listener; the heal layer's
//! counters reach `gossamer metrics` and an HTTP scrape of `/metrics`; `[http]`/`[dns]` can be turned on
//! by their generated variables alone; a malformed DNS packet over UDP is counted while the agent keeps
//! answering.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::Value;

/// A number in `gossamer metrics --json`, at a path such as `["heal", "probes"]`.
fn metric(agent: &Agent, path: &[&str]) -> Option<u64> {
    let mut v: Value = agent.metrics()?;
    for p in path {
        v = v.get(*p)?.clone();
    }
    v.as_u64()
}

/// `GET path` over a plain TCP connection (HTTP/1.1, `Connection: close`); the body, or `None` on a
/// connection error or a status other than 200.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The value of the OpenMetrics sample `name` (no labels) in `text`.
fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Opens `n` idle TCP connections to the agent's push-pull port (each sends nothing, so each sits in
/// its header phase, the least proved kind of stream).
fn idle_streams(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| TcpStream::connect(addr).expect("connect to the agent's TCP port")).collect()
}

/// `[runtime]` in the file sets the per-address stream limit; `GOSSAMER_RUNTIME_*` overrides the file;
/// both show in what the TCP listener does (evictions counted in `gossamer metrics`). The header
/// deadline is made long (file) so that only admission closes these idle streams.
#[test]
fn runtime_limits_from_the_file_and_the_environment_take_effect() {
    let dir = test_dir("runtime-limits");
    let file = "[runtime]\nmax_inbound_streams_per_ip = 2\nstream_header_timeout = \"9s\"\n";

    // The file's limit: two idle streams from 127.0.0.1 fit (the default would take four) ...
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], file);
    eventually("agent a answers", &[&a], || a.metrics().is_some());
    let mut open = idle_streams(a.addr, 2);
    eventually("two idle streams are open", &[&a], || metric(&a, &["streams_open"]) == Some(2));
    assert_eq!(metric(&a, &["streams_evicted"]), Some(0), "two streams fit under a per-address limit of 2");
    // ... and a third evicts one of them.
    open.extend(idle_streams(a.addr, 1));
    eventually("the third stream evicts one", &[&a], || metric(&a, &["streams_evicted"]).is_some_and(|n| n >= 1));
    assert!(metric(&a, &["streams_open"]).is_some_and(|n| n <= 2), "never more than 2 open from one address");
    drop(open);

    // The variable wins over the file: one stream per address, so the second evicts the first.
    let b = Agent::spawn_env(
        &dir,
        "b@127.0.0.1",
        loopback(free_port()),
        file,
        &[("GOSSAMER_RUNTIME_MAX_INBOUND_STREAMS_PER_IP", "1")],
    );
    eventually("agent b answers", &[&b], || b.metrics().is_some());
    let first = idle_streams(b.addr, 1);
    eventually("one idle stream is open", &[&b], || metric(&b, &["streams_open"]) == Some(1));
    let second = idle_streams(b.addr, 1);
    eventually("the second stream evicts the first", &[&b], || {
        metric(&b, &["streams_evicted"]).is_some_and(|n| n >= 1)
    });
    drop((first, second));
}

/// A bad limit stops the agent at start with an error naming the key, or the variable that set it.
#[test]
fn bad_runtime_limits_are_refused_naming_the_key_or_the_variable() {
    let dir = test_dir("runtime-refused");
    let run = |file: &str, env: &[(&str, &str)]| {
        let config = dir.join(format!("node-{}.toml", file.len() + env.len()));
        let text = format!(
            "name = \"a@127.0.0.1\"\nbind = \"127.0.0.1:{}\"\ninsecure = true\nlog = \"warn\"\n{file}\n",
            free_port()
        );
        std::fs::write(&config, text).unwrap();
        let mut cmd = Command::new(bin());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GOSSAMER_")) {
            cmd.env_remove(k);
        }
        let out = cmd.args(["agent", "--config", config.to_str().unwrap()]).envs(env.iter().copied()).output().unwrap();
        assert!(!out.status.success(), "the agent started with {file:?} {env:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("[runtime]\nmax_inbound_streams_per_ip = 0\n", &[]);
    assert!(err.contains("runtime.max_inbound_streams_per_ip"), "{err}");
    let err = run("[runtime]\nmax_seed = 3\n", &[]);
    assert!(err.contains("max_seed"), "{err}");
    let err = run("", &[("GOSSAMER_RUNTIME_STREAM_HEADER_TIMEOUT", "soon")]);
    assert!(err.contains("GOSSAMER_RUNTIME_STREAM_HEADER_TIMEOUT"), "{err}");
    let err = run("", &[("GOSSAMER_RUNTIME_MAX_PENDING_PUSH_PULLS", "1")]);
    assert!(
        err.contains("runtime.max_pending_push_pulls") && err.contains("GOSSAMER_RUNTIME_MAX_PENDING_PUSH_PULLS"),
        "{err}"
    );
}

/// The heal layer probes a dead member: its counter shows in `gossamer metrics` (JSON and text) and
/// in a real scrape of `/metrics`, the `[http]` listener turned on by `GOSSAMER_HTTP_BIND` alone.
#[test]
fn heal_metrics_reach_gossamer_metrics_and_the_scrape() {
    let dir = test_dir("heal-metrics");
    let heal = "[heal]\nprobe_interval = \"200ms\"\n";
    let (pa, pb) = (free_port(), free_port());
    let http = loopback(free_port());
    let a = Agent::spawn_env(&dir, "a@127.0.0.1", loopback(pa), heal, &[("GOSSAMER_HTTP_BIND", &http.to_string())]);
    let mut b = Agent::spawn(&dir, "b@127.0.0.1", loopback(pb), &[loopback(pa)], heal);
    eventually("a and b see each other", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);
    assert_eq!(metric(&a, &["heal", "probes"]), Some(0), "no dead member, no heal probe");

    b.kill();
    eventually("a's heal layer probes the dead member", &[&a], || {
        metric(&a, &["heal", "probes"]).is_some_and(|n| n >= 1)
    });
    let text = a.admin(&["metrics"]);
    let text = String::from_utf8_lossy(&text.stdout);
    let line = text.lines().find(|l| l.starts_with("heal.probes ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n >= 1), "{line}");
    for field in ["heal.detections", "heal.heals", "heal.rejoins"] {
        assert!(text.lines().any(|l| l.starts_with(&format!("{field} "))), "{field} missing:\n{text}");
    }

    eventually("the scrape shows the heal probes", &[&a], || {
        http_get(http, "/metrics").and_then(|t| sample(&t, "gossamer_heal_probes_total")).is_some_and(|n| n >= 1)
    });
    let scrape = http_get(http, "/metrics").unwrap();
    assert!(scrape.contains("# TYPE gossamer_heal_heals counter"), "{scrape}");
}

fn query(name: &str) -> Vec<u8> {
    let mut msg = Message::query();
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    msg.to_vec().unwrap()
}

/// `[dns]` and `[http]` turned on by their variables alone; malformed packets over UDP are counted
/// (`gossamer metrics`, the scrape), a query's header gets FORMERR, and good queries keep being
/// answered.
#[test]
fn malformed_dns_queries_are_counted_and_the_agent_keeps_answering() {
    let dir = test_dir("dns-malformed");
    let dns = loopback(free_port());
    let http = loopback(free_port());
    let a = Agent::spawn_env(
        &dir,
        "web-1",
        loopback(free_port()),
        "",
        &[("GOSSAMER_DNS_BIND", &dns.to_string()), ("GOSSAMER_HTTP_BIND", &http.to_string())],
    );
    eventually("agent answers", &[&a], || a.metrics().is_some());
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1500];
    let mut ask = |packet: &[u8]| -> Message {
        s.send_to(packet, dns).unwrap();
        let (n, _) = s.recv_from(&mut buf).expect("an answer");
        Message::from_vec(&buf[..n]).expect("a well-formed answer")
    };
    eventually("the zone holds this member", &[&a], || {
        let m = ask(&query("members.gossamer."));
        (m.metadata.response_code, m.answers.len()) == (ResponseCode::NoError, 1)
    });
    assert_eq!(metric(&a, &["dns_malformed"]), Some(0));

    // A query header with a body that does not decode: FORMERR, counted.
    let m = ask(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xffgarbage");
    assert_eq!((m.metadata.id, m.metadata.response_code), (0x1234, ResponseCode::FormErr), "{m:?}");
    // Shorter than a header, and a flood of junk: dropped, counted.
    s.send_to(b"\x00", dns).unwrap();
    for _ in 0..20 {
        s.send_to(&[0xffu8; 600], dns).unwrap();
    }
    // Still answering, and every bad packet counted.
    let m = ask(&query("members.gossamer."));
    assert_eq!((m.metadata.response_code, m.answers.len()), (ResponseCode::NoError, 1), "{m:?}");
    eventually("22 malformed packets counted", &[&a], || metric(&a, &["dns_malformed"]) == Some(22));
    let scrape = http_get(http, "/metrics").expect("scrape");
    assert_eq!(sample(&scrape, "gossamer_dns_malformed_total"), Some(22), "{scrape}");
    // Logged at warn, but not once per packet.
    let log = a.log();
    let warned = log.matches("malformed dns query refused").count();
    assert!((1..22).contains(&warned), "{warned} warnings:\n{log}");
}
