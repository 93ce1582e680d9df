//! The agent is secure by default: no secret, no start (unless `insecure` is said, loudly); its
//! control file never lands where another local user put something, is mode 0600, and lives only in
//! a directory the agent owns; its control sessions are bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn agent_cmd(config: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(["agent", "--config", config.to_str().unwrap()]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GOSSAMER_")) {
        cmd.env_remove(k);
    }
    cmd
}

#[test]
fn no_secret_no_start_unless_insecure_is_said_and_keygen_gives_one() {
    let dir = test_dir("secure-default");
    let config = dir.join("node.toml");
    let base = format!("name = \"a@127.0.0.1\"\nbind = \"127.0.0.1:{}\"\npreset = \"local\"\n", free_port());
    std::fs::write(&config, &base).unwrap();

    let out = agent_cmd(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "refused as a configuration error");
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["`secret`", "GOSSAMER_SECRET", "gossamer keygen", "insecure = true", "GOSSAMER_INSECURE"] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }

    // `gossamer keygen`: 64 hex digits from the OS generator, fresh every time.
    let keygen = || {
        let out = Command::new(bin()).arg("keygen").output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (k1, k2) = (keygen(), keygen());
    assert_eq!(k1.len(), 64, "{k1}");
    assert!(k1.chars().all(|c| c.is_ascii_hexdigit()), "{k1}");
    assert_ne!(k1, k2);

    // With the key from keygen (through the environment) it starts, and says nothing about insecurity.
    let mut a = Agent {
        name: "a@127.0.0.1".into(),
        addr: loopback(0),
        dir: dir.clone(),
        config: config.clone(),
        child: None,
        prefix: Vec::new(),
        env: vec![("GOSSAMER_SECRET".into(), k1.clone())],
    };
    a.start();
    eventually("the sealed agent answers", &[&a], || a.members().is_some());
    assert!(!a.log().contains("INSECURE"), "{}", a.log());
    let status = String::from_utf8_lossy(&a.admin(&["cluster", "status"]).stdout).into_owned();
    assert!(status.contains("sealed: true") && !status.contains("INSECURE"), "{status}");
    a.kill();

    // `GOSSAMER_INSECURE=true` lets it run unsealed, with a warning at start.
    a.env = vec![("GOSSAMER_INSECURE".into(), "true".into())];
    a.start();
    eventually("the insecure agent answers", &[&a], || a.members().is_some());
    eventually("the insecure agent warns", &[&a], || a.log().contains("INSECURE"));
    let log = a.log();
    let line = log.lines().find(|l| l.contains("INSECURE")).unwrap();
    assert!(line.contains("WARN"), "{line}");
    let status = String::from_utf8_lossy(&a.admin(&["cluster", "status"]).stdout).into_owned();
    assert!(status.contains("sealed: false") && status.contains("INSECURE"), "{status}");
    a.kill();

    // ... and so does `insecure = true` in the file.
    std::fs::write(&config, format!("{base}insecure = true\n")).unwrap();
    a.env.clear();
    a.start();
    eventually("the insecure agent (file) warns", &[&a], || a.members().is_some() && a.log().contains("INSECURE"));
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn the_control_file_replaces_planted_files_and_links_and_is_private() {
    let dir = test_dir("control-file");
    let attacker = dir.join("attacker");
    std::fs::create_dir_all(&attacker).unwrap();

    // Agent a: a symlink planted at its control file's path (and at the temp name agents used to use)
    // pointing at files the attacker will read.
    let a_dir = dir.join("a_127.0.0.1");
    std::fs::create_dir_all(&a_dir).unwrap();
    let (loot, loot_tmp) = (attacker.join("loot"), attacker.join("loot.tmp"));
    std::fs::write(&loot, "").unwrap();
    std::fs::write(&loot_tmp, "").unwrap();
    std::os::unix::fs::symlink(&loot, a_dir.join("a_127_0_0_1.control")).unwrap();
    std::os::unix::fs::symlink(&loot_tmp, a_dir.join("a_127_0_0_1.control.tmp")).unwrap();

    // Agent b: a world-readable file pre-created at its control file's path.
    let b_dir = dir.join("b_127.0.0.1");
    std::fs::create_dir_all(&b_dir).unwrap();
    let planted = b_dir.join("b_127_0_0_1.control");
    std::fs::write(&planted, "{}").unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).unwrap();
    let planted_inode = std::fs::metadata(&planted).unwrap().ino();

    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], "");
    let b = Agent::spawn(&dir, "b@127.0.0.1", loopback(free_port()), &[a.addr], "");
    eventually("both agents answer", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);

    for agent in [&a, &b] {
        let path = agent.control_file();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file(), "{} is a regular file, not a link", path.display());
        assert_eq!(meta.mode() & 0o777, 0o600, "{} is private", path.display());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"token\""), "{text}");
    }
    // Nothing was written through the links: the attacker's files are still empty.
    assert_eq!(std::fs::read_to_string(&loot).unwrap(), "", "the token went through the planted link");
    assert_eq!(std::fs::read_to_string(&loot_tmp).unwrap(), "", "the token went through the old temp name");
    // The planted file was replaced, not reused.
    assert_ne!(std::fs::metadata(&planted).unwrap().ino(), planted_inode, "the planted file was kept");
    // No temp file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&a_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") && n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn an_unsafe_data_dir_is_refused_naming_it() {
    let dir = test_dir("unsafe-dir");
    let config = dir.join("node.toml");
    let data = dir.join("shared");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        &config,
        format!(
            "name = \"a@127.0.0.1\"\nbind = \"127.0.0.1:{}\"\npreset = \"local\"\nsecret = \"{TEST_SECRET}\"\ndata_dir = \"{}\"\n",
            free_port(),
            data.display()
        ),
    )
    .unwrap();

    for (mode, who) in [(0o777, "every user"), (0o1777, "every user"), (0o775, "its group")] {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = agent_cmd(&config).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "mode {mode:o}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unsafe data_dir") && err.contains(&data.display().to_string()), "{err}");
        assert!(err.contains(who) && err.contains("chmod go-w") && err.contains("GOSSAMER_DATA_DIR"), "{err}");
        assert!(!data.join("a_127_0_0_1.control").exists());
    }

    // Owned by another user (only root can arrange that here; the rule is unit-tested too).
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    if std::fs::metadata(&dir).unwrap().uid() == 0 {
        let status = Command::new("chown").args(["65534", data.to_str().unwrap()]).status().unwrap();
        assert!(status.success());
        let out = agent_cmd(&config).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("owned by uid 65534"), "{err}");
    }

    // A missing data_dir is created, private to the agent.
    let fresh = dir.join("fresh").join("state");
    std::fs::write(
        &config,
        format!(
            "name = \"a@127.0.0.1\"\nbind = \"127.0.0.1:{}\"\npreset = \"local\"\nsecret = \"{TEST_SECRET}\"\ndata_dir = \"{}\"\n",
            free_port(),
            fresh.display()
        ),
    )
    .unwrap();
    let mut child = agent_cmd(&config).stdout(std::process::Stdio::null()).spawn().unwrap();
    let control = fresh.join("a_127_0_0_1.control");
    let deadline = std::time::Instant::now() + DEADLINE;
    while !control.exists() {
        assert!(std::time::Instant::now() < deadline, "the agent never wrote its control file");
        assert!(child.try_wait().unwrap().is_none(), "the agent exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `bytes` to the control listener and returns what it answers.
fn raw_control(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = s.write_all(bytes);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
}

#[test]
fn control_sessions_are_bounded() {
    let dir = test_dir("control-bounds");
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], "");
    eventually("the agent answers", &[&a], || a.members().is_some());
    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(a.control_file()).unwrap()).unwrap();
    let control: std::net::SocketAddr = info["addr"].as_str().unwrap().parse().unwrap();

    // A request line longer than 64 KiB is refused with a reason (the agent drops the rest it is sent,
    // boundedly, so the client sees the refusal rather than a reset).
    let answer = raw_control(control, &vec![b'x'; 200 * 1024]);
    assert!(answer.contains("request too large") && answer.contains("65536"), "{answer}");

    // 16 idle sessions fill the agent; the next client is told it is busy, at once.
    let mut idle: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(control).unwrap()).collect();
    eventually("the 17th session is refused as busy", &[&a], || {
        let out = a.admin(&["members", "--json"]);
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("agent busy") {
            return true;
        }
        // A session still closing (the refused large request) may have held a slot when the idle ones
        // came, so one of them was refused instead: hold one more.
        idle.push(TcpStream::connect(control).unwrap());
        false
    });
    assert!(idle.len() <= 20, "{} idle sessions were needed to fill 16 slots", idle.len());
    eventually("the refusal is logged", &[&a], || a.log().contains("too many sessions open"));
    // Once they go, the agent serves again.
    drop(idle);
    eventually("the agent serves again", &[&a], || a.members().is_some());
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}
