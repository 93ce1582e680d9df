//! Agents find each other through the discovery crate's strategies
//! (`[discovery]` table and `GOSSAMER_*` variables), with no `seeds`.

mod common;

use common::*;

#[test]
fn static_strategy_from_the_environment() {
    let dir = test_dir("disc-static");
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], "");
    let seed = a.addr.to_string();
    let b = Agent::spawn_env(
        &dir,
        "b@127.0.0.1",
        loopback(free_port()),
        "",
        &[("GOSSAMER_DISCOVERY", "static"), ("GOSSAMER_STATIC_SEEDS", &seed)],
    );
    eventually("b finds a through GOSSAMER_STATIC_SEEDS", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hosts_file_strategy() {
    let dir = test_dir("disc-hosts");
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let hosts = dir.join("peers.txt");
    std::fs::write(&hosts, format!("# the cluster\na@127.0.0.1:{pa}\n127.0.0.1:{pb}\n127.0.0.1:{pc}\n")).unwrap();
    let extra = format!(
        "[discovery]\nstrategy = \"hosts\"\n[discovery.hosts]\npath = \"{}\"\npoll_interval_ms = 500\n",
        hosts.display()
    );
    let agents: Vec<Agent> = [("a", pa), ("b", pb), ("c", pc)]
        .iter()
        .map(|(n, p)| Agent::spawn(&dir, &format!("{n}@127.0.0.1"), loopback(*p), &[], &extra))
        .collect();
    let refs: Vec<&Agent> = agents.iter().collect();
    eventually("three agents find each other through a hosts file", &refs, || {
        agents.iter().all(|a| a.alive_count() == 3)
    });
    drop(agents);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mcast_strategy_of_the_discovery_table() {
    let dir = test_dir("disc-mcast");
    let extra = format!(
        "[discovery]\nstrategy = \"mcast\"\n[discovery.mcast]\niface = \"127.0.0.1\"\nport = {}\ninterval_ms = 300\n",
        free_port()
    );
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], &extra);
    let b = Agent::spawn(&dir, "b@127.0.0.1", loopback(free_port()), &[], &extra);
    eventually("two agents find each other by the mcast strategy", &[&a, &b], || {
        a.alive_count() == 2 && b.alive_count() == 2
    });
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
