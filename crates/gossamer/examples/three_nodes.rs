//! Three nodes on 127.0.0.1 form a cluster, one leaves gracefully, the
//! others see it as left. Run with `cargo run -p gossamer --example three_nodes`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gossamer::{Hooks, Member, MemberStatus, Node, NodeConfig, Preset};

struct Print(&'static str);

impl Hooks for Print {
    fn on_connect(&self, member: &Member) {
        println!("[{}] connect    {}", self.0, member.id);
    }
    fn on_disconnect(&self, member: &Member) {
        println!("[{}] disconnect {}", self.0, member.id);
    }
}

async fn start(name: &'static str, seeds: Vec<std::net::SocketAddr>) -> Result<Node, gossamer::StartError> {
    let mut config = NodeConfig::new(name, "127.0.0.1:0".parse().expect("address"), Preset::Local)?;
    config.cluster = "example".into();
    config.seeds = seeds;
    config.hooks.push(Arc::new(Print(name)));
    Node::start(config).await
}

async fn wait_for(nodes: &[&Node], what: &str, check: impl Fn(&[Member]) -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = true;
        for node in nodes {
            let members = node.members().await.map_err(|e| e.to_string())?;
            all &= check(&members);
        }
        if all {
            println!("-- {what}");
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting until {what}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let a = start("a@127.0.0.1", vec![]).await?;
    let b = start("b@127.0.0.1", vec![a.addr()]).await?;
    let c = start("c@127.0.0.1", vec![a.addr()]).await?;
    let alive = |ms: &[Member]| ms.iter().filter(|m| m.status == MemberStatus::Alive).count();

    wait_for(&[&a, &b, &c], "all three see three alive members", |ms| alive(ms) == 3).await?;

    println!("c leaves: {}", if c.leave().await? { "confirmed" } else { "not confirmed in time" });
    c.shutdown().await;
    let c_left =
        |ms: &[Member]| ms.iter().any(|m| m.id.name.as_str() == "c@127.0.0.1" && m.status == MemberStatus::Left);
    wait_for(&[&a, &b], "a and b see c as left", c_left).await?;

    for node in [&a, &b] {
        let m = node.metrics().await?;
        println!(
            "{}: {} alive, {} messages in, {} out",
            node.id().name,
            m.core.alive,
            m.core.messages_in,
            m.core.messages_out
        );
        node.shutdown().await;
    }
    Ok(())
}
