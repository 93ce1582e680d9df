//! The operator agent as a sidecar, with real agent processes on 127.0.0.1: `[[handlers]]` scripts see a
//! join, a `kill -9` and a leave (env + stdin written to a file); `gossamer event` reaches another agent's
//! `user:deploy` handler; `gossamer query` is answered by two agents' handlers and reports the silent
//! ones; `tags set` on one agent shows in `members --tag` on another; a hanging handler is killed at its
//! timeout while the agent keeps serving; `monitor` prints a join; bad arguments exit 2.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn gossamer(agent: &Agent, args: &[&str]) -> std::process::Output {
    agent.admin(args)
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A handler script that appends what it got (env and stdin) to `log`.
fn recorder(dir: &Path, name: &str, log: &Path) -> String {
    let script = dir.join(format!("{name}.sh"));
    std::fs::write(
        &script,
        format!(
            "{{ echo \"EVENT=$GOSSAMER_EVENT SELF=$GOSSAMER_SELF_NAME TAGS=$GOSSAMER_SELF_TAGS ROLE=$GOSSAMER_TAG_ROLE \
             USER=$GOSSAMER_USER_EVENT LTIME=$GOSSAMER_USER_LTIME\"; echo \"STDIN=$(cat)\"; }} >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    format!("sh {}", script.display())
}

#[test]
fn handlers_commands_and_monitor_on_real_agents() {
    let dir = test_dir("operator");
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let seed = loopback(ports[0]);
    let members_log = dir.join("members.log");
    let deploy_log = dir.join("deploy.log");
    let a0_extra = format!(
        "[metadata]\nrole = \"seed\"\n\n\
         [[handlers]]\nevents = [\"member-join\", \"member-failed\", \"member-leave\", \"member-update\"]\ncommand = \"{}\"\n\n\
         [[handlers]]\nevents = [\"user:deploy\"]\ncommand = \"{}\"\n\n\
         [[handlers]]\nevents = [\"query:uptime\"]\ncommand = \"echo up-$GOSSAMER_SELF_NAME\"\n\n\
         [[handlers]]\nevents = [\"query:flood\"]\ncommand = \"yes flood | head -c 5000000\"\n",
        recorder(&dir, "members", &members_log),
        recorder(&dir, "deploy", &deploy_log),
    );
    let a1_extra = "[[handlers]]\nevents = [\"query:*\"]\ncommand = \"echo answer-from-a1; cat\"\n\n\
                    [[handlers]]\nevents = [\"user:hang\"]\ncommand = \"sleep 300\"\ntimeout = \"500ms\"\n";
    let a0 = Agent::spawn(&dir, "agent0@127.0.0.1", seed, &[], &a0_extra);
    let a1 = Agent::spawn(&dir, "agent1@127.0.0.1", loopback(ports[1]), &[seed], a1_extra);
    let mut a2 = Agent::spawn(&dir, "agent2@127.0.0.1", loopback(ports[2]), &[seed], "");
    eventually("three agents see three alive", &[&a0, &a1, &a2], || {
        [&a0, &a1, &a2].iter().all(|a| a.alive_count() == 3)
    });

    // `monitor` on agent0 prints agent3's join.
    let monitor_out = dir.join("monitor.out");
    let mut monitor = Command::new(bin())
        .args(["monitor", "--control", a0.control_file().to_str().unwrap()])
        .stdout(std::fs::File::create(&monitor_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("monitor connected", &[&a0], || read(&monitor_out).starts_with("# monitoring agent0@127.0.0.1"));
    let mut a3 = Agent::spawn(&dir, "agent3@127.0.0.1", loopback(ports[3]), &[seed], "");
    eventually("four alive", &[&a0, &a1, &a2, &a3], || [&a0, &a1, &a2, &a3].iter().all(|a| a.alive_count() == 4));
    eventually("monitor printed agent3's join", &[&a0], || {
        read(&monitor_out).lines().any(|l| l.starts_with("member-join agent3@127.0.0.1"))
    });
    let _ = monitor.kill();
    let _ = monitor.wait();

    // The join handler got env and stdin.
    let a3_line = format!("STDIN=agent3@127.0.0.1\t{}\t", loopback(ports[3]));
    eventually("agent0's handler recorded agent3's join", &[&a0], || {
        let log = read(&members_log);
        log.contains("EVENT=member-join SELF=agent0@127.0.0.1 TAGS=role=seed ROLE=seed") && log.contains(&a3_line)
    });

    // `gossamer event` from agent2 reaches agent0's user:deploy handler.
    let out = gossamer(&a2, &["event", "deploy", "v42"]);
    assert!(out.status.success(), "{}", text(&out));
    eventually("agent0's deploy handler ran", &[&a0, &a2], || {
        let log = read(&deploy_log);
        log.contains("EVENT=user SELF=agent0@127.0.0.1")
            && log.contains("USER=deploy LTIME=")
            && log.contains("STDIN=v42")
    });

    // The sender's own handlers run too (as Serf's do).
    let out = gossamer(&a0, &["event", "deploy", "v43", "--coalesce"]);
    assert!(out.status.success(), "{}", text(&out));
    eventually("agent0's deploy handler ran for its own event", &[&a0], || read(&deploy_log).contains("STDIN=v43"));

    // `gossamer query` answered by agent0's and agent1's handlers; agent2 and agent3 have none: silent.
    let out = gossamer(&a2, &["query", "uptime", "ping", "--timeout", "3s"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("agent0@127.0.0.1: up-agent0@127.0.0.1"), "{shown}");
    assert!(shown.contains("agent1@127.0.0.1: answer-from-a1\nping"), "{shown}");
    assert!(shown.contains("silent: agent2@127.0.0.1") && shown.contains("silent: agent3@127.0.0.1"), "{shown}");
    assert!(!shown.contains("silent: agent0") && !shown.contains("silent: agent1"), "{shown}");

    // A handler flooding stdout: its answer is cut at the bound (1 KiB at most), counted, and the agent serves on.
    let out = gossamer(&a2, &["query", "flood", "--node", "agent0@127.0.0.1", "--timeout", "5s", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let answer = v["answers"][0][1].as_str().unwrap_or_default().to_owned();
    assert_eq!(v["answers"][0][0], "agent0@127.0.0.1", "{v}");
    assert!(answer.starts_with("flood\nflood\n") && answer.len() <= 1024 && answer.len() > 100, "{}", answer.len());
    assert_eq!(a0.metrics().unwrap()["handler_truncated"], 1);

    // `tags set` on agent1 is gossiped: `members --tag` on agent2 finds it, agent0's handler sees the update.
    let out = gossamer(&a1, &["tags", "set", "role=web", "zone=a"]);
    assert!(out.status.success() && text(&out).contains("role=web"), "{}", text(&out));
    eventually("agent2 filters agent1 by its new tag", &[&a1, &a2], || {
        let out = gossamer(&a2, &["members", "--tag", "role=web", "--status", "alive", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v.as_array().is_some_and(|ms| ms.len() == 1 && ms[0]["name"] == "agent1@127.0.0.1")
    });
    eventually("agent0's handler saw agent1's update", &[&a0], || {
        let log = read(&members_log);
        log.contains("EVENT=member-update")
            && log.contains("STDIN=agent1@127.0.0.1\t")
            && log.contains("role=web,zone=a")
    });
    let out = gossamer(&a1, &["tags", "delete", "zone"]);
    assert!(out.status.success() && text(&out).contains("tags now: role=web\n"), "{}", text(&out));
    let out = gossamer(&a2, &["members", "--name", "^agent[01]@", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{v}");

    // A handler that hangs is killed at its 500 ms timeout; the agent keeps serving, and says so in its log,
    // which `monitor --level warn` streams.
    let warn_out = dir.join("monitor-warn.out");
    let mut warn_monitor = Command::new(bin())
        .args(["monitor", "--level", "warn", "--control", a1.control_file().to_str().unwrap()])
        .stdout(std::fs::File::create(&warn_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("warn monitor connected", &[&a1], || read(&warn_out).starts_with("# monitoring agent1@127.0.0.1"));
    let out = gossamer(&a2, &["event", "hang"]);
    assert!(out.status.success(), "{}", text(&out));
    eventually("agent1 counted a handler timeout", &[&a1], || {
        a1.metrics().is_some_and(|m| m["handler_timeouts"].as_u64().unwrap_or(0) >= 1)
    });
    let m = a1.metrics().unwrap();
    assert!(m["handler_runs"].as_u64().unwrap() >= 2 && m["handler_failures"].as_u64().unwrap() >= 1, "{m}");
    assert_eq!(a1.alive_count(), 4);
    eventually("monitor --level warn printed the handler's failure", &[&a1], || {
        read(&warn_out)
            .lines()
            .any(|l| l.starts_with("log WARN ") && l.contains("handler failed") && l.contains("timeout"))
    });
    let _ = warn_monitor.kill();
    let _ = warn_monitor.wait();

    // Bad arguments: a clear error and exit 2.
    for args in [
        &["query", "bad name"][..],
        &["query", "q", "--timeout", "soon"],
        &["event", ""],
        &["members", "--status", "sleepy"],
        &["members", "--name", "("],
        &["tags", "set", "novalue"],
        &["monitor", "--level", "loud"],
        &["tags", "set"],
    ] {
        let out = gossamer(&a2, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(!out.stderr.is_empty(), "{args:?}");
    }

    // `kill -9` agent3: agent0's handler gets member-failed; agent2 leaves: member-leave.
    a3.kill();
    eventually("agent0's handler recorded agent3's failure", &[&a0], || {
        read(&members_log).lines().any(|l| l.starts_with("EVENT=member-failed"))
    });
    let out = gossamer(&a2, &["cluster", "leave"]);
    assert!(out.status.success(), "{}", text(&out));
    eventually("agent0's handler recorded agent2's leave", &[&a0], || {
        let log = read(&members_log);
        log.contains("EVENT=member-leave") && log.contains("STDIN=agent2@127.0.0.1\t")
    });
    let log = read(&members_log);
    let failed = log.split("EVENT=member-failed").nth(1).unwrap_or_default();
    assert!(failed.lines().nth(1).is_some_and(|l| l.starts_with("STDIN=agent3@127.0.0.1\t")), "{log}");
    eventually("agent2 exited", &[&a0], || !a2.running());
    assert!(a0.metrics().unwrap()["handler_failures"].as_u64() == Some(0), "{}", a0.log());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dead member forgotten (here by `[heal] autoclean` after 2 s) reaches a `member-reap` handler, with the
/// member on stdin.
#[test]
fn a_forgotten_member_reaches_the_reap_handler() {
    let dir = test_dir("operator-reap");
    let (p0, p1) = (free_port(), free_port());
    let log = dir.join("reap.log");
    let extra = format!(
        "[heal]\nautoclean = \"2s\"\n\n[[handlers]]\nevents = [\"member-reap\"]\ncommand = \"{}\"\n",
        recorder(&dir, "reap", &log)
    );
    let a0 = Agent::spawn(&dir, "keeper@127.0.0.1", loopback(p0), &[], &extra);
    let mut a1 = Agent::spawn(&dir, "gone@127.0.0.1", loopback(p1), &[loopback(p0)], "");
    eventually("two alive", &[&a0, &a1], || a0.alive_count() == 2 && a1.alive_count() == 2);
    assert!(read(&log).is_empty(), "{}", read(&log));
    a1.kill();
    eventually("keeper's handler got member-reap for gone", &[&a0], || {
        let text = read(&log);
        text.contains("EVENT=member-reap SELF=keeper@127.0.0.1")
            && text.contains(&format!("STDIN=gone@127.0.0.1\t{}\t", loopback(p1)))
    });
    assert!(a0.sees("gone@127.0.0.1").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}
