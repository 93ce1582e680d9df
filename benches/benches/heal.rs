//! Heal layer costs: merging a peer's full view (`Heal::observe_remote_view`,
//! what every push-pull that disagrees with ours feeds the heal layer) at
//! 1,000 and 10,000 members, and the periodic `tick`.
//!
//! - `view_merge/agreeing`: the peer's view is ours (the steady state). The
//!   core forwards a view only when it disagrees with its own
//!   (`Swim::set_signals`), so in a healthy cluster this is an upper bound
//!   of what a push-pull costs the heal layer.
//! - `view_merge/partitioned`: the first view from the other side of a
//!   split: half the members live in ours are dead in theirs and the other
//!   way round, so the view is recorded as that side's report, an episode
//!   opens and the side's claim is published. Each iteration starts from a
//!   clone of the same heal state (cloned outside the timed section).
//! - `tick`: the heal layer's timer with nothing to decide or probe.
//!
//! `cargo bench -p gossamer-benches --bench heal -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use gossamer_heal::{Heal, HealConfig};
use gossamer_wire::{MemberState, MemberStatus, Metadata, NodeId, NodeName};

const SIZES: [usize; 2] = [1_000, 10_000];

fn id(i: usize) -> NodeId {
    let ip = format!("10.{}.{}.{}", i / 62_500, (i / 250) % 250, i % 250 + 1);
    NodeId::new(format!("node-{i}@{ip}").parse().unwrap(), format!("{ip}:7946").parse().unwrap())
}

fn state(i: usize, status: MemberStatus) -> MemberState {
    MemberState { node: id(i), incarnation: 1, status, metadata: Metadata::new() }
}

/// Node 0's heal layer, knowing members `0..n`: all alive, or with the upper
/// half dead (declared by three members of the lower half) when `split`.
fn heal_with(n: usize, split: bool) -> Heal {
    let start = Duration::ZERO;
    let mut heal = Heal::new(id(0), HealConfig::default(), start).unwrap();
    for i in 1..n {
        heal.observe_member(start, &id(i), MemberStatus::Alive, 1, &[]);
    }
    if split {
        let declarers: Vec<NodeName> = (0..3).map(|i| id(i).name).collect();
        for i in n / 2..n {
            heal.observe_member(Duration::from_secs(5), &id(i), MemberStatus::Dead, 1, &declarers);
        }
    }
    while heal.poll().is_some() {}
    heal
}

/// The view of the member `n / 2` (first in its list, as in push-pull):
/// everyone alive, or its side alive and ours dead when `split`.
fn remote_view(n: usize, split: bool) -> Vec<MemberState> {
    let reporter = n / 2;
    std::iter::once(reporter)
        .chain((0..n).filter(|&i| i != reporter))
        .map(|i| {
            let dead = split && i < n / 2;
            state(i, if dead { MemberStatus::Dead } else { MemberStatus::Alive })
        })
        .collect()
}

fn bench_view_merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("heal/view_merge");
    group.sample_size(20);
    let now = Duration::from_secs(60);
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        let reporter = id(n / 2);

        let mut agreeing = heal_with(n, false);
        let view = remote_view(n, false);
        agreeing.observe_remote_view(now, &reporter, &view);
        assert!(agreeing.poll().is_none(), "an agreeing view reveals nothing");
        group.bench_function(BenchmarkId::new("agreeing", n), |b| {
            b.iter(|| agreeing.observe_remote_view(now, black_box(&reporter), black_box(&view)))
        });

        let split = heal_with(n, true);
        let view = remote_view(n, true);
        let mut probe = split.clone();
        probe.observe_remote_view(now, &reporter, &view);
        assert!(probe.poll().is_some(), "the other side's view reveals the split");
        group.bench_function(BenchmarkId::new("partitioned", n), |b| {
            b.iter_batched_ref(
                || split.clone(),
                |heal| heal.observe_remote_view(now, black_box(&reporter), black_box(&view)),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("heal/tick");
    for n in SIZES {
        let mut heal = heal_with(n, false);
        let mut now = Duration::from_secs(60);
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                now += Duration::from_millis(1);
                heal.tick(black_box(now));
                while heal.poll().is_some() {}
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_view_merge);
criterion_main!(benches);
