//! Criterion benchmarks live in `benches/benches/`. This library holds what
//! several of them share.

pub mod counting;
pub mod wire_fixtures;
