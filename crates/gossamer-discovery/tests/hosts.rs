//! Hosts-file strategy: a real temp file changed between polls, and an unreadable file.

use std::time::{Duration, Instant};

use gossamer_discovery::strategy::HostsDiscovery;
use gossamer_discovery::{Backoff, Discovery, DiscoveryError, DiscoveryRunner, Peer};

const DEADLINE: Duration = Duration::from_secs(20);

fn peer(name: Option<&str>, addr: &str) -> Peer {
    Peer { name: name.map(str::to_string), addr: addr.parse().unwrap() }
}

#[tokio::test]
async fn file_changes_are_picked_up_on_the_next_poll() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers");
    std::fs::write(&path, "# cluster peers\n127.0.0.1:7001\n\n  gossamer@127.0.0.2   # second\n").unwrap();
    let d = HostsDiscovery::new(&path, 7946, Duration::from_millis(100));
    assert_eq!(
        d.discover().await.unwrap(),
        vec![peer(None, "127.0.0.1:7001"), peer(Some("gossamer@127.0.0.2"), "127.0.0.2:7946")]
    );
    // Unchanged file: same answer (served from the cache keyed on mtime and length).
    assert_eq!(d.discover().await.unwrap().len(), 2);

    std::fs::write(&path, "127.0.0.1:7001\n127.0.0.3:7003\n127.0.0.4:7004\n").unwrap();
    assert_eq!(
        d.discover().await.unwrap(),
        vec![peer(None, "127.0.0.1:7001"), peer(None, "127.0.0.3:7003"), peer(None, "127.0.0.4:7004")]
    );

    // A bad line is an error naming the entry and its line.
    std::fs::write(&path, "127.0.0.1:7001\n127.0.0.1:http\n").unwrap();
    let e = d.discover().await.unwrap_err().to_string();
    assert!(e.contains("127.0.0.1:http") && e.contains("line 2"), "{e}");

    // Empty file: nobody, successfully.
    std::fs::write(&path, "# nobody yet\n").unwrap();
    assert_eq!(d.discover().await.unwrap(), vec![]);
}

#[tokio::test]
async fn unreadable_file_is_a_clear_error_and_the_runner_keeps_the_last_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers");
    std::fs::write(&path, "127.0.0.1:7001\n").unwrap();
    let strategy = HostsDiscovery::new(&path, 7946, Duration::from_millis(50));
    let backoff = Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(100) };
    let (runner, mut updates) = DiscoveryRunner::new(vec![Box::new(strategy)]).with_backoff(backoff).spawn();

    let first = tokio::time::timeout(DEADLINE, updates.recv()).await.unwrap().unwrap();
    assert_eq!(first.peers, vec![peer(None, "127.0.0.1:7001")]);

    // Make the path unreadable as a file (a directory: works even as root, which ignores modes).
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let start = Instant::now();
    let status = loop {
        let s = runner.status().remove(0);
        if s.consecutive_failures >= 2 {
            break s;
        }
        assert!(start.elapsed() < DEADLINE, "strategy never failed: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let err = status.last_error.unwrap();
    assert!(err.contains(&path.display().to_string()), "{err}");
    // The previous answer is kept and no (empty) update was sent.
    assert_eq!(runner.current_peers(), vec![peer(None, "127.0.0.1:7001")]);
    assert!(updates.try_recv().is_err());

    // Readable again with new content: the next update carries it.
    std::fs::remove_dir(&path).unwrap();
    std::fs::write(&path, "127.0.0.1:7001\n127.0.0.1:7002\n").unwrap();
    let next = tokio::time::timeout(DEADLINE, updates.recv()).await.unwrap().unwrap();
    assert_eq!(next.added, vec![peer(None, "127.0.0.1:7002")]);
    runner.shutdown().await;
}

#[tokio::test]
async fn missing_file_error_names_the_path() {
    let d = HostsDiscovery::new("/nonexistent/gossamer/peers", 7946, Duration::from_secs(1));
    match d.discover().await {
        Err(e @ DiscoveryError::File { .. }) => assert!(e.to_string().contains("/nonexistent/gossamer/peers")),
        other => panic!("expected a file error, got {other:?}"),
    }
}
