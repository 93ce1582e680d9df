//! Agents as separate OS processes of the built `gossamer` binary, driven
//! through the admin commands over their control sockets.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous bound on every condition.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The cluster secret of test agents whose `extra` names none (the agent refuses to start without
/// a secret unless told `insecure = true`).
pub const TEST_SECRET: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gossamer")
}

/// A fresh directory for one test.
pub fn test_dir(test: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::env::temp_dir().join(format!("gossamer-{test}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port free on 127.0.0.1 for both UDP and TCP right now, below the
/// kernel's ephemeral range: a port from that range (what binding port 0
/// hands out) can be taken by any outgoing connection of another test
/// between this check and the agent's bind (a CI run once failed on
/// "Address already in use"), one below it only by an explicit bind.
/// Each call starts from another place (process id, a counter), so
/// parallel tests rarely try the same ports.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    const LOWEST: u32 = 10_000;
    let free = |port: u16| {
        std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    };
    if ephemeral_low > LOWEST + 1_000 {
        let span = ephemeral_low - LOWEST;
        let start = std::process::id().wrapping_mul(7_919).wrapping_add(CALLS.fetch_add(1, Ordering::Relaxed) * 131);
        for i in 0..span {
            let port = (LOWEST + (start.wrapping_add(i) % span)) as u16;
            if free(port) {
                return port;
            }
        }
    }
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One agent process and its files.
pub struct Agent {
    pub name: String,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub child: Option<Child>,
    /// Command prefix (e.g. `ip netns exec NS`), empty on the host.
    pub prefix: Vec<String>,
    /// Extra environment of the agent process.
    pub env: Vec<(String, String)>,
}

impl Agent {
    /// Writes `name.toml` in `dir` and starts the agent.
    pub fn spawn(dir: &Path, name: &str, addr: SocketAddr, seeds: &[SocketAddr], extra: &str) -> Agent {
        Self::spawn_in(dir, name, addr, seeds, "cli-test", extra, Vec::new())
    }

    /// As [`Agent::spawn`], with a cluster label and a command prefix.
    pub fn spawn_in(
        dir: &Path,
        name: &str,
        addr: SocketAddr,
        seeds: &[SocketAddr],
        cluster: &str,
        extra: &str,
        prefix: Vec<String>,
    ) -> Agent {
        let agent_dir = dir.join(name.replace('@', "_"));
        std::fs::create_dir_all(&agent_dir).unwrap();
        let config = agent_dir.join("node.toml");
        let seeds: Vec<String> = seeds.iter().map(|s| format!("\"{s}\"")).collect();
        // Secure by default: agents get the shared test secret unless `extra` chooses (a secret, or
        // `insecure`).
        let sealing = if extra.contains("secret") || extra.contains("insecure") {
            String::new()
        } else {
            format!("secret = \"{TEST_SECRET}\"\n")
        };
        let text = format!(
            "name = \"{name}\"\nbind = \"{addr}\"\ncluster = \"{cluster}\"\npreset = \"local\"\nseeds = [{}]\nlog = \"warn\"\n{sealing}{extra}\n",
            seeds.join(", ")
        );
        std::fs::write(&config, text).unwrap();
        let mut agent = Agent { name: name.into(), addr, dir: agent_dir, config, child: None, prefix, env: Vec::new() };
        agent.start();
        agent
    }

    /// As [`Agent::spawn`], with extra environment variables for the agent.
    pub fn spawn_env(dir: &Path, name: &str, addr: SocketAddr, extra: &str, env: &[(&str, &str)]) -> Agent {
        let mut agent = Self::spawn_in(dir, name, addr, &[], "cli-test", extra, Vec::new());
        agent.kill();
        agent.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        agent.start();
        agent
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = if self.prefix.is_empty() {
            Command::new(bin())
        } else {
            let mut c = Command::new(&self.prefix[0]);
            c.args(&self.prefix[1..]).arg(bin());
            c
        };
        cmd.args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GOSSAMER_")) {
            cmd.env_remove(k);
        }
        cmd
    }

    /// (Re)starts the process with the same config.
    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("agent.log")).unwrap();
        let child = self
            .command(&["agent", "--config", self.config.to_str().unwrap()])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn agent");
        self.child = Some(child);
    }

    /// SIGKILL: no leave, no cleanup.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The control file is stale now; the restarted agent rewrites it.
        let _ = std::fs::remove_file(self.control_file());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn control_file(&self) -> PathBuf {
        let safe: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        self.dir.join(format!("{safe}.control"))
    }

    /// Runs an admin command against this agent.
    pub fn admin(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let control = self.control_file();
        all.extend(["--control", control.to_str().unwrap()]);
        self.command(&all).output().expect("run admin command")
    }

    /// `members --json`, or `None` while the agent is not answering.
    pub fn members(&self) -> Option<Vec<Value>> {
        let out = self.admin(&["members", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice::<Value>(&out.stdout).ok()?.as_array().cloned()
    }

    /// `(status, incarnation)` of `name` as this agent sees it.
    pub fn sees(&self, name: &str) -> Option<(String, u64)> {
        self.members()?
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| (m["status"].as_str().unwrap_or("?").to_owned(), m["incarnation"].as_u64().unwrap_or(0)))
    }

    pub fn metrics(&self) -> Option<Value> {
        let out = self.admin(&["metrics", "--json"]);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }

    pub fn alive_count(&self) -> usize {
        self.members().map_or(0, |ms| ms.iter().filter(|m| m["status"] == "alive").count())
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` until it holds; panics with `what` (and the agents' logs) after [`DEADLINE`].
pub fn eventually(what: &str, agents: &[&Agent], mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        if Instant::now() > deadline {
            for a in agents {
                eprintln!("--- log of {} ---\n{}", a.name, a.log());
            }
            panic!("timed out waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Resident memory of a process in KiB (Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}
