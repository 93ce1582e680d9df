//! Agents as separate processes on 127.0.0.1: a cluster forms from one
//! seed, a SIGKILLed agent is detected by all, a restart rejoins with a
//! higher incarnation, `cluster leave` is seen as left, `force-leave` works.

mod common;

use common::*;

#[test]
fn agents_form_detect_a_kill_rejoin_and_leave() {
    let dir = test_dir("lifecycle");
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let seed = loopback(ports[0]);
    let mut agents: Vec<Agent> = (0..4)
        .map(|i| {
            let seeds = if i == 0 { vec![] } else { vec![seed] };
            Agent::spawn(&dir, &format!("agent{i}@127.0.0.1"), loopback(ports[i]), &seeds, "")
        })
        .collect();
    let refs: Vec<&Agent> = agents.iter().collect();
    eventually("four agents see four alive members", &refs, || agents.iter().all(|a| a.alive_count() == 4));

    // Status and metrics work through the control socket.
    let status = agents[0].admin(&["cluster", "status"]);
    assert!(status.status.success());
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("running_nodes") && text.contains("agent3@127.0.0.1"), "{text}");
    eventually("agent0 reports probes and four alive in its metrics", &refs, || {
        agents[0].metrics().is_some_and(|m| {
            m["probes"].as_u64().unwrap_or(0) > 0
                && m["alive"] == 4
                && m["updates_sent"].as_u64().unwrap_or(0) > 0
                && m["incarnation"].is_u64()
        })
    });

    // SIGKILL agent3: every other agent declares it dead.
    let victim = "agent3@127.0.0.1";
    let (_, old_inc) = agents[0].sees(victim).unwrap();
    agents[3].kill();
    {
        let refs: Vec<&Agent> = agents.iter().collect();
        eventually("all survivors see agent3 dead", &refs, || {
            agents[..3].iter().all(|a| a.sees(victim).is_some_and(|(s, _)| s == "dead"))
        });
    }
    let status = String::from_utf8_lossy(&agents[0].admin(&["cluster", "status"]).stdout).into_owned();
    let stopped = status.lines().find(|l| l.contains("stopped_nodes")).unwrap_or_default().to_owned();
    assert!(stopped.contains(victim), "{status}");

    // Restart it with the same config: it rejoins with a higher incarnation.
    agents[3].start();
    {
        let refs: Vec<&Agent> = agents.iter().collect();
        eventually("agent3 alive again with a higher incarnation", &refs, || {
            agents[..3].iter().all(|a| a.sees(victim).is_some_and(|(s, inc)| s == "alive" && inc > old_inc))
        });
    }

    // agent1 leaves gracefully: the command returns, the process exits,
    // the others see it as left.
    let out = agents[1].admin(&["cluster", "leave"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    {
        eventually("agent1's process exits after leaving", &[], || !agents[1].running());
        let refs: Vec<&Agent> = agents.iter().collect();
        eventually("the others see agent1 as left", &refs, || {
            [0, 2, 3].iter().all(|&i| agents[i].sees("agent1@127.0.0.1").is_some_and(|(s, _)| s == "left"))
        });
    }

    // force-leave a member that is gone for good.
    agents[2].kill();
    {
        let refs: Vec<&Agent> = agents.iter().collect();
        eventually("agent0 sees agent2 dead", &refs, || {
            agents[0].sees("agent2@127.0.0.1").is_some_and(|(s, _)| s == "dead")
        });
    }
    let out = agents[0].admin(&["cluster", "force-leave", "agent2@127.0.0.1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    {
        let refs: Vec<&Agent> = agents.iter().collect();
        eventually("agent0 and agent3 see agent2 as left", &refs, || {
            [0, 3].iter().all(|&i| agents[i].sees("agent2@127.0.0.1").is_some_and(|(s, _)| s == "left"))
        });
    }
    let out = agents[0].admin(&["cluster", "force-leave", "nobody@nowhere"]);
    assert!(!out.status.success(), "force-leave of an unknown member fails");

    drop(agents);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn join_command_connects_two_lone_agents() {
    let dir = test_dir("join");
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], "");
    let b = Agent::spawn(&dir, "b@127.0.0.1", loopback(free_port()), &[], "");
    eventually("both agents answer", &[&a, &b], || a.alive_count() == 1 && b.alive_count() == 1);
    let out = b.admin(&["cluster", "join", &a.addr.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually("the two agents see each other", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn multicast_agents_find_each_other_without_seeds() {
    let dir = test_dir("mcast");
    let group_port = free_port();
    let extra = format!("[multicast]\ninterface = \"127.0.0.1\"\nport = {group_port}\ninterval_ms = 300\n");
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], &extra);
    let b = Agent::spawn(&dir, "b@127.0.0.1", loopback(free_port()), &[], &extra);
    eventually("the two agents find each other by multicast", &[&a, &b], || {
        a.alive_count() == 2 && b.alive_count() == 2
    });
    // Whichever heard the other first joined it, so the other may not have
    // heard a heartbeat yet; heartbeats go on every interval, so both will.
    eventually("each agent hears the other's heartbeats", &[&a, &b], || {
        [&a, &b].iter().all(|agent| agent.metrics().is_some_and(|m| m["heartbeats_received"].as_u64() > Some(0)))
    });
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_makes_the_agent_leave_gracefully() {
    let dir = test_dir("sigterm");
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], "");
    let mut b = Agent::spawn(&dir, "b@127.0.0.1", loopback(free_port()), &[a.addr], "");
    eventually("the pair forms", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);
    let status = std::process::Command::new("kill").args(["-TERM", &b.pid().to_string()]).status().unwrap();
    assert!(status.success());
    eventually("b's process exits", &[], || !b.running());
    assert!(!b.control_file().exists(), "the agent removed its control file");
    eventually("a sees b as left, not failed", &[&a], || a.sees("b@127.0.0.1").is_some_and(|(s, _)| s == "left"));
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
