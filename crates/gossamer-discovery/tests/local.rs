//! Same-host registry strategy (`local`, libcluster's LocalEpmd) with real OS processes: this test binary
//! re-executes itself (`current_exe() --exact local_child_process`) with `GOSSAMER_TEST_LOCAL_CHILD` set,
//! so each child is a separate process running a full `DiscoveryRunner` configured from the real
//! environment (`GOSSAMER_DISCOVERY=local`, `GOSSAMER_LOCAL_DIR`, ...). Children print their peer set on
//! every change and shut down (deregistering) when their stdin closes. A child killed with SIGKILL leaves
//! its entry behind; the survivors must notice its PID is gone, stop listing it and remove the file.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use gossamer_discovery::strategy::LocalDiscovery;
use gossamer_discovery::{apply_env_from, build, Discovery, DiscoveryConfig, DiscoveryRunner, Peer, StrategyKind};

const DEADLINE: Duration = Duration::from_secs(60);
const CHILD_ENV: &str = "GOSSAMER_TEST_LOCAL_CHILD";
const CHILD_TEST: &str = "local_child_process";
/// Prefix of the lines children print, to tell them from the test harness's own output.
const TAG: &str = "GOSSAMER-CHILD";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Child mode: `node` runs a discovery runner until stdin closes; `idle` just blocks on stdin (a process
/// whose PID is then used in a hand-written entry). Without the variable this test does nothing.
#[tokio::test]
async fn local_child_process() {
    let Ok(mode) = std::env::var(CHILD_ENV) else { return };
    let (closed_tx, mut closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed_tx.send(());
    });
    if mode == "idle" {
        let _ = tokio::time::timeout(DEADLINE * 2, closed_rx).await;
        return;
    }
    let mut cfg = DiscoveryConfig::from_toml("[local]\npoll_interval_ms = 50").unwrap();
    cfg.apply_env().unwrap();
    assert_eq!(cfg.strategy, vec![StrategyKind::Local]);
    let (runner, mut updates) = DiscoveryRunner::from_config(&cfg).unwrap().spawn();
    println!("{TAG} started");
    // Our own deadline, so a lost parent never leaves a child behind for long.
    let give_up = tokio::time::sleep(DEADLINE * 2);
    tokio::pin!(give_up);
    loop {
        tokio::select! {
            u = updates.recv() => {
                let u = u.expect("runner stopped");
                let names: Vec<String> = u.peers.iter().map(|p| p.name.clone().unwrap_or_default()).collect();
                println!("{TAG} peers={}", names.join(","));
            }
            _ = &mut closed_rx => break,
            _ = &mut give_up => panic!("child gave up waiting for its parent"),
        }
    }
    runner.shutdown().await;
    println!("{TAG} bye");
}

/// Child processes, killed and reaped if the test fails half-way.
struct Children {
    procs: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    lines: mpsc::Receiver<(usize, String)>,
    /// Last `peers=` line of each child.
    latest: Vec<Option<BTreeSet<String>>>,
    said_bye: Vec<bool>,
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_child(mode: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // The children's configuration comes from these variables only.
    for var in ["GOSSAMER_DISCOVERY", "GOSSAMER_NODE_NAME", "GOSSAMER_ADVERTISE_ADDR", "GOSSAMER_LOCAL_DIR"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child test process")
}

impl Children {
    fn spawn_nodes(dir: &Path, names: &[&str]) -> Self {
        let (tx, lines) = mpsc::channel();
        let mut procs = Vec::new();
        let mut stdins = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let mut child = spawn_child(
                "node",
                &[
                    ("GOSSAMER_DISCOVERY", "local".into()),
                    ("GOSSAMER_NODE_NAME", name.to_string()),
                    ("GOSSAMER_ADVERTISE_ADDR", format!("127.0.0.1:{}", 7101 + i)),
                    ("GOSSAMER_LOCAL_DIR", dir.display().to_string()),
                ],
            );
            let out = child.stdout.take().unwrap();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix(TAG) {
                        if tx.send((i, rest.trim().to_string())).is_err() {
                            return;
                        }
                    }
                }
            });
            stdins.push(child.stdin.take());
            procs.push(child);
        }
        let n = names.len();
        Children { procs, stdins, lines, latest: vec![None; n], said_bye: vec![false; n] }
    }

    /// Reads child output until `done(self)` holds, failing after the deadline with what was seen.
    fn wait_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((i, line)) => {
                    if let Some(p) = line.strip_prefix("peers=") {
                        self.latest[i] = Some(p.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect());
                    } else if line == "bye" {
                        self.said_bye[i] = true;
                    }
                }
                Err(_) => panic!("timed out waiting for {what}; latest peer sets: {:?}", self.latest),
            }
        }
    }

    fn sees(&self, i: usize, names: &[&str]) -> bool {
        self.latest[i].as_ref().is_some_and(|s| s.iter().map(String::as_str).eq(names.iter().copied()))
    }
}

fn node_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".node"))
        .collect();
    v.sort();
    v
}

#[test]
fn three_processes_find_each_other_and_drop_a_killed_one() {
    let tmp = tempfile::tempdir().unwrap();
    // A directory that does not exist yet: the first registrant creates it.
    let dir = tmp.path().join("registry");
    let names = ["a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"];
    let mut kids = Children::spawn_nodes(&dir, &names);

    kids.wait_until("all three to see the other two", |k| {
        k.sees(0, &[names[1], names[2]]) && k.sees(1, &[names[0], names[2]]) && k.sees(2, &[names[0], names[1]])
    });
    assert_eq!(node_files(&dir), ["a@127.0.0.1.node", "b@127.0.0.1.node", "c@127.0.0.1.node"]);

    // SIGKILL: no deregistration, the entry stays behind with a dead PID.
    let pid_a = kids.procs[0].id();
    kids.procs[0].kill().unwrap();
    let status = kids.procs[0].wait().unwrap();
    assert!(!status.success());
    let entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("a@127.0.0.1.node")).unwrap_or_default()).unwrap_or_default();
    // (Unless a survivor already cleaned it up, the file is a's and names its PID.)
    assert!(entry.is_null() || entry["pid"] == pid_a, "{entry}");

    kids.wait_until("the survivors to drop the killed node", |k| k.sees(1, &[names[2]]) && k.sees(2, &[names[1]]));
    assert_eq!(node_files(&dir), ["b@127.0.0.1.node", "c@127.0.0.1.node"], "stale entry not removed");

    // Clean shutdown: stdin closes, the runner deregisters, the entries go.
    kids.stdins.iter_mut().for_each(|s| drop(s.take()));
    kids.wait_until("the survivors to shut down", |k| k.said_bye[1] && k.said_bye[2]);
    for c in &mut kids.procs[1..] {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(node_files(&dir), Vec::<String>::new());
}

fn me(name: &str, port: u16) -> Option<(String, SocketAddr)> {
    Some((name.to_string(), SocketAddr::from(([127, 0, 0, 1], port))))
}

fn strategy(dir: &Path, name: Option<&str>) -> LocalDiscovery {
    LocalDiscovery::new(dir, name.and_then(|n| me(n, 7000)), Duration::from_millis(50), Duration::from_secs(30))
}

/// A hand-written entry, as another process would leave it.
fn write_entry(dir: &Path, file: &str, body: serde_json::Value) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(file);
    std::fs::write(&p, serde_json::to_vec(&body).unwrap()).unwrap();
    p
}

fn own_pid_ns() -> serde_json::Value {
    match std::fs::read_link("/proc/self/ns/pid") {
        Ok(p) => p.to_string_lossy().into_owned().into(),
        Err(_) => serde_json::Value::Null,
    }
}

#[tokio::test]
async fn garbage_is_skipped_and_registration_is_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    let a = strategy(&dir, Some("a"));
    // Nobody registered: the directory does not even exist, and that is an empty answer.
    assert_eq!(a.discover().await.unwrap(), vec![]);
    a.register().await.unwrap();
    let own = a.entry_path().unwrap();
    assert_eq!(own, dir.join("a.node"));
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&own).unwrap()).unwrap();
    assert_eq!((rec["name"].as_str(), rec["addr"].as_str()), (Some("a"), Some("127.0.0.1:7000")));
    assert_eq!(rec["pid"], std::process::id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    }

    // Unparsable entries and foreign files are skipped, a live entry (this very process) is listed.
    std::fs::write(dir.join("broken.node"), "{\"name\": ").unwrap();
    std::fs::write(dir.join("wrong-shape.node"), r#"{"name": "x", "addr": "nowhere", "pid": 1}"#).unwrap();
    std::fs::write(dir.join("notes.txt"), "not an entry").unwrap();
    // Temp files of writers killed before their rename: an old one is cleaned up, a fresh one left alone.
    let old_tmp = dir.join(".c.4242.tmp");
    std::fs::write(&old_tmp, "{").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&old_tmp)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let fresh_tmp = dir.join(".d.4243.tmp");
    std::fs::write(&fresh_tmp, "{").unwrap();
    let b = strategy(&dir, Some("b/../weird name"));
    b.register().await.unwrap();
    assert_eq!(b.entry_path().unwrap(), dir.join("b%2F..%2Fweird%20name.node"));
    assert_eq!(a.discover().await.unwrap(), vec![Peer::named("b/../weird name", addr("127.0.0.1:7000"))]);
    assert!(dir.join("broken.node").exists(), "unparsable files are skipped, not deleted");
    assert!(dir.join("notes.txt").exists() && fresh_tmp.exists());
    assert!(!old_tmp.exists(), "abandoned temp file not removed");

    // Someone wipes our entry: the next poll puts it back; b sees a again.
    std::fs::remove_file(&own).unwrap();
    assert_eq!(a.discover().await.unwrap().len(), 1);
    assert!(own.exists());
    assert_eq!(b.discover().await.unwrap(), vec![Peer::named("a", addr("127.0.0.1:7000"))]);

    // Deregistering removes only one's own entry; a discover-only strategy cannot register.
    b.deregister().await.unwrap();
    assert_eq!(a.discover().await.unwrap(), vec![]);
    let observer = strategy(&dir, None);
    assert_eq!(observer.discover().await.unwrap(), vec![Peer::named("a", addr("127.0.0.1:7000"))]);
    assert!(observer.register().await.unwrap_err().to_string().contains("node_name"));
    a.deregister().await.unwrap();
    assert!(!own.exists());
    // Deregistered: no longer repaired by polls.
    a.discover().await.unwrap();
    assert!(!own.exists());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn dead_zombie_and_reused_pids_are_stale_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let ns = own_pid_ns();
    let me_ = strategy(&dir, Some("me"));

    // A process that has exited and been reaped.
    let mut gone = Command::new(std::env::current_exe().unwrap()).arg("--list").stdout(Stdio::null()).spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let gone_file = write_entry(
        &dir,
        "gone.node",
        serde_json::json!({"name": "gone", "addr": "127.0.0.1:1", "pid": gone_pid, "pid_ns": ns}),
    );

    // This process, but with another start time: the PID was reused by someone else.
    let reused_file = write_entry(
        &dir,
        "reused.node",
        serde_json::json!({"name": "reused", "addr": "127.0.0.1:2", "pid": std::process::id(), "started": 1, "pid_ns": ns}),
    );

    // A live process, listed while it runs; once it exits it is a zombie (not reaped yet) and is dropped.
    let mut idle = spawn_child("idle", &[]);
    let idle_file = write_entry(
        &dir,
        "idle.node",
        serde_json::json!({"name": "idle", "addr": "127.0.0.1:3", "pid": idle.id(), "pid_ns": ns}),
    );
    let peers = me_.discover().await.unwrap();
    assert_eq!(peers, vec![Peer::named("idle", addr("127.0.0.1:3"))]);
    assert!(!gone_file.exists() && !reused_file.exists(), "stale entries are removed");

    drop(idle.stdin.take());
    let deadline = Instant::now() + DEADLINE;
    while idle_file.exists() {
        assert!(Instant::now() < deadline, "exited (zombie) process still listed: {:?}", me_.discover().await);
        assert!(me_.discover().await.unwrap().len() <= 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(me_.discover().await.unwrap(), vec![]);
    // Only now is it reaped: detection did not depend on /proc/<pid> disappearing.
    assert!(idle.wait().unwrap().success());
}

#[tokio::test]
async fn unverifiable_pids_fall_back_to_the_file_age() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let me_ = LocalDiscovery::new(&dir, me("me", 7000), Duration::from_millis(50), Duration::from_secs(5));
    // Written from another PID namespace (a container sharing the directory): its PID means nothing here.
    let body = serde_json::json!({"name": "boxed", "addr": "127.0.0.1:9", "pid": 1, "pid_ns": "pid:[1]"});
    let fresh = write_entry(&dir, "boxed.node", body.clone());
    assert_eq!(me_.discover().await.unwrap(), vec![Peer::named("boxed", addr("127.0.0.1:9"))]);
    std::fs::File::options()
        .write(true)
        .open(&fresh)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    assert_eq!(me_.discover().await.unwrap(), vec![]);
    assert!(!fresh.exists());
}

#[test]
fn config_env_and_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = DiscoveryConfig::from_toml(
        r#"
        strategy = "local"
        node_name = "n1@127.0.0.1"
        advertise_addr = "127.0.0.1:7946"
        [local]
        cluster = "prod"
        poll_interval_ms = 250
        "#,
    )
    .unwrap();
    assert_eq!(cfg.local.dir, None);
    apply_env_from(&mut cfg, [("GOSSAMER_LOCAL_DIR", tmp.path().display().to_string())]).unwrap();
    assert_eq!(cfg.local.dir.as_deref(), Some(tmp.path()));
    let built = build(&cfg).unwrap();
    assert_eq!(built[0].name(), "local");
    assert_eq!(built[0].poll_interval(), Some(Duration::from_millis(250)));

    // The default directory: per cluster, under XDG_RUNTIME_DIR or a per-user temp directory.
    let d = LocalDiscovery::default_dir("prod");
    assert!(
        d.ends_with("gossamer/prod")
            || d.parent().unwrap().file_name().unwrap().to_string_lossy().starts_with("gossamer-")
    );
    assert!(d.ends_with("prod"));

    for bad in ["..", "a/b", ""] {
        let mut c = cfg.clone();
        c.local.cluster = bad.into();
        let e = build(&c).err().expect("bad cluster must be rejected").to_string();
        assert!(e.contains("discovery.local.cluster"), "{bad:?}: {e}");
    }
    let mut c = cfg.clone();
    c.node_name = None;
    assert!(build(&c).err().unwrap().to_string().contains("discovery.node_name"));
    assert!(DiscoveryConfig::from_toml("[local]\ndirectory = \"/tmp\"").is_err());
    assert_eq!("local".parse::<StrategyKind>().unwrap(), StrategyKind::Local,);
    let mut c = DiscoveryConfig::default();
    apply_env_from(&mut c, [("GOSSAMER_DISCOVERY", "local,rancher")]).unwrap();
    assert_eq!(c.strategy, vec![StrategyKind::Local, StrategyKind::Rancher]);
}
