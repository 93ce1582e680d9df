//! `gossamer demo`: the README's story in one process. N real nodes on
//! 127.0.0.1 join one seed; one is killed (no leave), suspected, declared
//! dead; it is restarted on its old address and rejoins with a higher
//! incarnation. A live table shows every node's view of every member.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gossamer::{Event, Member, MemberStatus, Node, NodeConfig, Preset};

/// How often the table is refreshed and conditions checked.
const TICK: Duration = Duration::from_millis(200);
/// Generous bound on each step, far above what the local preset needs.
const STEP_DEADLINE: Duration = Duration::from_secs(60);

/// One node's view: `(member name, status, incarnation)`, per observer.
type View = Vec<Vec<(String, MemberStatus, u64)>>;

struct Cluster {
    nodes: Vec<Option<Node>>,
    addrs: Vec<SocketAddr>,
    names: Vec<String>,
}

/// A node of the demo cluster, sealed with `secret` (drawn fresh for each run, as an operator would
/// with `gossamer keygen`).
fn config(name: &str, bind: SocketAddr, seeds: Vec<SocketAddr>, secret: &str) -> Result<NodeConfig, String> {
    let mut c = NodeConfig::new(name, bind, Preset::Local).map_err(|e| e.to_string())?;
    c.cluster = "demo".into();
    c.set_secret_hex(secret).map_err(|e| e.to_string())?;
    c.seeds = seeds;
    Ok(c)
}

impl Cluster {
    async fn view(&self) -> View {
        let mut out = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let members = match node {
                Some(n) => n.members().await.unwrap_or_default(),
                None => Vec::new(),
            };
            out.push(members.iter().map(|m: &Member| (m.id.name.to_string(), m.status, m.incarnation)).collect());
        }
        out
    }
}

fn cell(view: &[(String, MemberStatus, u64)], name: &str) -> Option<(MemberStatus, u64)> {
    view.iter().find(|(n, _, _)| n == name).map(|(_, s, i)| (*s, *i))
}

fn status_word(s: MemberStatus) -> &'static str {
    match s {
        MemberStatus::Alive => "alive",
        MemberStatus::Suspect => "SUSPECT",
        MemberStatus::Dead => "DEAD",
        MemberStatus::Left => "left",
    }
}

fn render_table(cluster: &Cluster, view: &View, step: &str, elapsed: Duration) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "gossamer demo  t+{:>5.1}s  step: {step}", elapsed.as_secs_f64());
    let _ = writeln!(s);
    let _ = write!(s, "{:<18}", "member \\ seen by");
    for (i, node) in cluster.nodes.iter().enumerate() {
        let label = if node.is_some() { format!("node{i}") } else { format!("node{i}(down)") };
        let _ = write!(s, "{label:<14}");
    }
    let _ = writeln!(s);
    for name in &cluster.names {
        let _ = write!(s, "{name:<18}");
        for (i, node) in cluster.nodes.iter().enumerate() {
            let text = match (node, cell(&view[i], name)) {
                (None, _) => "-".to_string(),
                (Some(_), None) => "unknown".to_string(),
                (Some(_), Some((st, inc))) => format!("{} #{inc}", status_word(st)),
            };
            let _ = write!(s, "{text:<14}");
        }
        let _ = writeln!(s);
    }
    s
}

/// Prints the view: a redrawn table on a terminal, changed cells as
/// timestamped lines otherwise.
struct Screen {
    tty: bool,
    start: Instant,
    last: Option<View>,
}

impl Screen {
    fn line(&self, msg: &str) {
        if !self.tty {
            println!("[t+{:>5.1}s] {msg}", self.start.elapsed().as_secs_f64());
        }
    }

    fn show(&mut self, cluster: &Cluster, view: &View, step: &str, log: &[String]) {
        if self.tty {
            let mut out = String::from("\x1b[H\x1b[2J");
            out.push_str(&render_table(cluster, view, step, self.start.elapsed()));
            out.push('\n');
            for l in log.iter().rev().take(8).rev() {
                out.push_str(l);
                out.push('\n');
            }
            print!("{out}");
            let _ = std::io::stdout().flush();
        } else {
            for (i, observer) in view.iter().enumerate() {
                for (name, status, inc) in observer {
                    let before = self.last.as_ref().and_then(|l| l.get(i)).and_then(|o| cell(o, name));
                    if before != Some((*status, *inc)) && &cluster.names[i] != name {
                        self.line(&format!("node{i} sees {name}: {} #{inc}", status_word(*status)));
                    }
                }
            }
        }
        self.last = Some(view.clone());
    }
}

struct Story {
    screen: Screen,
    log: Vec<String>,
    deadline: Instant,
    /// How long each completed step stays on screen before the next begins.
    pause: Duration,
}

impl Story {
    fn say(&mut self, msg: String) {
        let stamped = format!("[t+{:>5.1}s] {msg}", self.screen.start.elapsed().as_secs_f64());
        if self.screen.tty {
            self.log.push(stamped);
        } else {
            println!("{stamped}");
        }
    }

    /// Keeps the table live for `pause` so a watcher can read the outcome.
    async fn hold(&mut self, cluster: &Cluster, step: &str) {
        let until = Instant::now() + self.pause;
        while Instant::now() < until {
            tokio::time::sleep(TICK.min(self.pause)).await;
            let view = cluster.view().await;
            self.screen.show(cluster, &view, step, &self.log);
        }
    }

    /// Refreshes the screen until `done(view)` holds, or fails after the
    /// step's deadline (or the whole demo's).
    async fn until(
        &mut self,
        cluster: &Cluster,
        step: &str,
        mut done: impl FnMut(&View) -> bool,
    ) -> Result<(), String> {
        let limit = (Instant::now() + STEP_DEADLINE).min(self.deadline);
        loop {
            let view = cluster.view().await;
            self.screen.show(cluster, &view, step, &self.log);
            if done(&view) {
                return Ok(());
            }
            if Instant::now() > limit {
                return Err(format!("step `{step}` did not complete in time"));
            }
            tokio::time::sleep(TICK).await;
        }
    }
}

/// Runs the demo; exit code 0 when every step happened in time.
pub fn run(nodes: usize, duration: Duration, pause: Duration) -> ExitCode {
    if !(3..=32).contains(&nodes) {
        eprintln!("gossamer: --nodes must be between 3 and 32");
        return ExitCode::from(2);
    }
    // The story is told by the table; protocol logs only on request.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into());
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "warn".into());
    crate::logging::init(filter, crate::logging::LogFormat::Text);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gossamer: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(story(nodes, duration, pause)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gossamer demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn story(n: usize, duration: Duration, pause: Duration) -> Result<(), String> {
    let tty = std::io::stdout().is_terminal();
    let start = Instant::now();
    let mut story =
        Story { screen: Screen { tty, start, last: None }, log: Vec::new(), deadline: start + duration, pause };
    let mut cluster = Cluster { nodes: Vec::new(), addrs: Vec::new(), names: Vec::new() };
    let secret = zeroize::Zeroizing::new(
        crate::settings::new_secret_hex().map_err(|e| format!("cannot draw a cluster secret: {e}"))?,
    );
    story.say("sealing every frame with a fresh random cluster secret".into());

    // 1. Start N nodes; every node but the first joins the first.
    for i in 0..n {
        let name = format!("node{i}@127.0.0.1");
        let seeds = cluster.addrs.first().copied().into_iter().collect();
        let node = Node::start(config(&name, "127.0.0.1:0".parse().expect("literal"), seeds, &secret)?)
            .await
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        story.say(format!("started {name} on {}", node.addr()));
        cluster.addrs.push(node.addr());
        cluster.names.push(name);
        cluster.nodes.push(Some(node));
    }
    let names = cluster.names.clone();
    let all_alive = |view: &View, names: &[String]| {
        view.iter().all(|o| names.iter().all(|m| matches!(cell(o, m), Some((MemberStatus::Alive, _)))))
    };
    story.until(&cluster, "all nodes join", |v| all_alive(v, &names)).await?;
    story.say(format!("all {n} nodes see each other alive"));
    story.hold(&cluster, "all nodes joined").await;

    // 2. Kill one node abruptly: no leave, its sockets just close.
    let victim = n / 2;
    let vname = cluster.names[victim].clone();
    let before = cluster.view().await;
    let old_inc = cell(&before[0], &vname).map_or(0, |(_, i)| i);
    let mut watchers: Vec<_> =
        cluster.nodes.iter().enumerate().filter(|(i, _)| *i != victim).flatten_node().map(|n| n.subscribe()).collect();
    if let Some(node) = cluster.nodes[victim].take() {
        node.shutdown().await;
    }
    story.say(format!("killed {vname} (no leave)"));

    // 3. Someone suspects it (seen in the table or in the event stream).
    let mut suspected = false;
    story
        .until(&cluster, &format!("{vname} suspected"), |v| {
            for w in watchers.iter_mut() {
                while let Some(e) = w.try_recv() {
                    if matches!(&e, Event::MemberSuspected(m) if m.id.name.as_str() == vname) {
                        suspected = true;
                    }
                }
            }
            suspected
                || v.iter().any(|o| matches!(cell(o, &vname), Some((MemberStatus::Suspect | MemberStatus::Dead, _))))
        })
        .await?;
    story.say(format!("{vname} is suspected"));
    story.hold(&cluster, "suspected").await;

    // 4. Every survivor declares it dead.
    let survivors: Vec<usize> = (0..n).filter(|i| *i != victim).collect();
    story
        .until(&cluster, &format!("{vname} declared dead"), |v| {
            survivors.iter().all(|&i| matches!(cell(&v[i], &vname), Some((MemberStatus::Dead, _))))
        })
        .await?;
    story.say(format!("every survivor declares {vname} dead"));
    story.hold(&cluster, "declared dead").await;

    // 5. Restart it on its old address; it rejoins and refutes its death.
    let addr = cluster.addrs[victim];
    let seed = cluster.addrs[0];
    let restart_deadline = Instant::now() + Duration::from_secs(10);
    let node = loop {
        match Node::start(config(&vname, addr, vec![seed], &secret)?).await {
            Ok(node) => break node,
            Err(e) if Instant::now() < restart_deadline => {
                story.say(format!("restart of {vname} on {addr} not yet possible ({e}); retrying"));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(format!("cannot restart {vname} on {addr}: {e}")),
        }
    };
    cluster.nodes[victim] = Some(node);
    story.say(format!("restarted {vname} on {addr}"));
    let mut new_inc = 0;
    story
        .until(&cluster, &format!("{vname} rejoins"), |v| {
            let ok = v.iter().all(|o| matches!(cell(o, &vname), Some((MemberStatus::Alive, i)) if i > old_inc))
                && all_alive(v, &names);
            if ok {
                new_inc = cell(&v[0], &vname).map_or(0, |(_, i)| i);
            }
            ok
        })
        .await?;
    story.say(format!("{vname} is back: alive everywhere with incarnation {new_inc} (was {old_inc})"));
    story.hold(&cluster, "rejoined").await;

    let elapsed = start.elapsed();
    for node in cluster.nodes.iter().flatten() {
        node.shutdown().await;
    }
    println!("demo complete in {:.1}s: join, failure detection, recovery", elapsed.as_secs_f64());
    Ok(())
}

/// `filter` helper: the nodes of `(index, &Option<Node>)` pairs that run.
trait FlattenNode<'a> {
    fn flatten_node(self) -> impl Iterator<Item = &'a Node>;
}

impl<'a, I: Iterator<Item = (usize, &'a Option<Node>)>> FlattenNode<'a> for I {
    fn flatten_node(self) -> impl Iterator<Item = &'a Node> {
        self.filter_map(|(_, n)| n.as_ref())
    }
}
