//! Nodes coming and going (boot, crash, restart, graceful leave) and the
//! fault schedule that drives them and the network's cuts.

use gossamer_core::Member;
use gossamer_wire::Metadata;

use super::*;

impl<F: NodeFactory> Simulation<F> {
    pub(super) fn seeds_for(&self, node: u32) -> Vec<SocketAddr> {
        let mut seeds: Vec<SocketAddr> = (0..self.cfg.seeds.min(self.slots.len() as u32))
            .filter(|&s| s != node && self.slots[s as usize].state == State::Up)
            .map(node_addr)
            .collect();
        if seeds.is_empty() {
            // Every seed is down: join through the lowest live member instead.
            if let Some(s) =
                (0..self.slots.len() as u32).find(|&s| s != node && self.slots[s as usize].state == State::Up)
            {
                seeds.push(node_addr(s));
            }
        }
        seeds
    }

    pub(super) fn boot(&mut self, node: u32) {
        let slot = &self.slots[node as usize];
        if slot.node.is_some() {
            return;
        }
        let generation = slot.generation;
        let rng = node_rng(self.scenario.seed, node, generation);
        let id = self.identity(node);
        match self.factory.create(id, rng, self.now) {
            Ok(n) => {
                self.account_live_time();
                self.install(node, n);
                trace!(self, "boot {node} gen={generation}");
                let seeds = self.seeds_for(node);
                // A node boots only after every earlier event was handled,
                // so the seeds it picks are those up at this instant.
                if !seeds.is_empty() {
                    let now = self.now;
                    if let Some(n) = self.slots[node as usize].node.as_mut() {
                        n.join(now, &seeds);
                    }
                }
                self.drain(node);
                self.check_convergence();
            }
            Err(e) => self.creation_failed(node, &e),
        }
    }

    /// Puts a freshly created node in its slot, up from now on.
    fn install(&mut self, node: u32, n: F::Node) {
        let slot = &mut self.slots[node as usize];
        if slot.state == State::Down {
            slot.restarted_at = Some(self.now);
        }
        slot.node = Some(n);
        slot.state = State::Up;
        slot.up_since = self.now;
        slot.paused_until = Time::ZERO;
        slot.lag = Duration::ZERO;
        slot.leaving_since = None;
        self.views.set_live(node, true);
    }

    fn creation_failed(&mut self, node: u32, e: &dyn std::fmt::Display) {
        tracing::error!(target: "gossamer_sim", node, "node could not be created: {e}");
        self.errors.push(format!("node {node} could not be created: {e}"));
    }

    /// `start = "converged"`: nodes `0..n` are created at time zero, each
    /// knowing every other alive at incarnation 0 (`adopt_converged`), and
    /// the views say so; no join, no seed contacted. Each node's outputs
    /// (its timers) are drained in index order, after every view is set.
    pub(super) fn start_converged(&mut self, n: u32) {
        let members: Vec<Member> = (0..n)
            .map(|i| Member { id: node_id(i), incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() })
            .collect();
        self.account_live_time();
        let now = self.now;
        let mut started = Vec::with_capacity(n as usize);
        for i in 0..n {
            let rng = node_rng(self.scenario.seed, i, 0);
            let created = self.factory.create(node_id(i), rng, now).map_err(|e| e.to_string()).and_then(|mut node| {
                node.adopt_converged(now, &members)?;
                Ok(node)
            });
            match created {
                Ok(node) => {
                    self.install(i, node);
                    started.push(i);
                }
                Err(e) => self.creation_failed(i, &e),
            }
        }
        drop(members);
        self.views.all_alive(&started);
        trace!(self, "converged start: {} nodes", started.len());
        for i in started {
            self.drain(i);
        }
        self.check_convergence();
    }

    pub(super) fn stop(&mut self, node: u32, state: State) {
        let slot = &mut self.slots[node as usize];
        if slot.node.is_none() {
            return;
        }
        self.account_live_time();
        let slot = &mut self.slots[node as usize];
        if let Some(n) = slot.node.take() {
            self.stats.counters += n.counters();
        }
        slot.state = state;
        slot.down_at = Some(self.now);
        self.bcast.stopped(node, slot.generation, self.now);
        slot.generation += 1;
        slot.leaving_since = None;
        self.views.clear_observer(node);
        self.views.set_live(node, false);
        trace!(self, "stop {node} {state:?}");
        self.check_all_know();
        self.check_convergence();
    }

    pub(super) fn account_live_time(&mut self) {
        let dt = self.now - self.stats.last_live_change;
        self.stats.node_time += dt * self.views.live_count() as u32;
        self.stats.last_live_change = self.now;
    }

    pub(super) fn leave_check(&mut self, node: u32, generation: u32) {
        let slot = &self.slots[node as usize];
        if slot.generation != generation || slot.node.is_none() {
            return;
        }
        let Some(since) = slot.leaving_since else { return };
        let left = slot.node.as_ref().is_some_and(|n| n.has_left());
        if left || self.now >= since + self.cfg.leave_timeout {
            trace!(self, "left {node} announced={left}");
            self.stop(node, State::Left);
        } else {
            let next = self.now + self.cfg.period / 4;
            self.queue.push(next, Ev::LeaveCheck { node, generation });
        }
    }

    pub(super) fn apply_fault(&mut self, i: usize) {
        let action = self.scenario.faults[i].action.clone();
        let n = self.slots.len() as u32;
        let now = self.now;
        let resolve = |set: &crate::nodeset::NodeSet, picks: &mut ChaCha8Rng| set.resolve(n, picks);
        // Cuts also hold for nodes named in them that join later (a node
        // booting into one side of a partition must stay on that side).
        let total = self.scenario.total_nodes().max(n);
        let resolve_cut = |set: &crate::nodeset::NodeSet, picks: &mut ChaCha8Rng| {
            let mut v = set.resolve(n, picks);
            v.extend((n..total).filter(|&x| set.names(x)));
            v
        };
        let (subjects, description, window_end) = match &action {
            FaultAction::Crash { nodes } => {
                let v = resolve(nodes, &mut self.picks);
                for &x in &v {
                    self.stop(x, State::Down);
                }
                (v.clone(), format!("crash {}", list(&v)), Time::MAX)
            }
            FaultAction::Restart { nodes } => {
                let v = resolve(nodes, &mut self.picks);
                for &x in &v {
                    self.stop(x, State::Down);
                    self.boot(x);
                }
                (v.clone(), format!("restart {}", list(&v)), Time::MAX)
            }
            FaultAction::Pause { nodes, duration } => {
                let v = resolve(nodes, &mut self.picks);
                let until = now + duration.resolve(self.cfg.period);
                for &x in &v {
                    self.slots[x as usize].paused_until = until;
                }
                (v.clone(), format!("pause {} for {}", list(&v), duration), until)
            }
            FaultAction::Slow { nodes, lag, duration } => {
                let v = resolve(nodes, &mut self.picks);
                let until = duration.map_or(Time::MAX, |d| now + d.resolve(self.cfg.period));
                for &x in &v {
                    let s = &mut self.slots[x as usize];
                    s.lag = lag.resolve(self.cfg.period);
                    s.lag_until = until;
                }
                (v.clone(), format!("slow {} by {lag}", list(&v)), until)
            }
            FaultAction::Partition { groups } => {
                let gs: Vec<Vec<u32>> = groups.iter().map(|g| resolve_cut(g, &mut self.picks)).collect();
                self.net.partition(&gs, total);
                let sizes: Vec<String> = gs.iter().map(|g| g.len().to_string()).collect();
                ((0..n).collect(), format!("partition into groups of {} (+ the rest)", sizes.join(", ")), Time::MAX)
            }
            FaultAction::OneWay { from, to } => {
                let f = resolve_cut(from, &mut self.picks);
                let t = resolve_cut(to, &mut self.picks);
                self.net.cut_one_way(Members::from_indices(&f, total), Members::from_indices(&t, total));
                (f.clone(), format!("one-way cut: {} no longer heard by {}", list(&f), list(&t)), Time::MAX)
            }
            FaultAction::Flap { a, b, period, duration } => {
                let av = resolve_cut(a, &mut self.picks);
                let bv = resolve_cut(b, &mut self.picks);
                let until = now + duration.resolve(self.cfg.period);
                let half = period.resolve(self.cfg.period) / 2;
                self.net.flap(Members::from_indices(&av, total), Members::from_indices(&bv, total), now, half, until);
                (av.clone(), format!("flap {} <-> {} every {period} for {duration}", list(&av), list(&bv)), until)
            }
            FaultAction::Heal => {
                self.net.heal();
                (Vec::new(), "heal every cut".to_owned(), Time::MAX)
            }
            FaultAction::Join { count } => {
                let first = n;
                self.add_slots(*count);
                let v: Vec<u32> = (first..first + count).collect();
                for &x in &v {
                    self.boot(x);
                }
                (v.clone(), format!("join {} new nodes", count), Time::MAX)
            }
            FaultAction::Leave { nodes } => {
                let v = resolve(nodes, &mut self.picks);
                for &x in &v {
                    let s = &mut self.slots[x as usize];
                    if s.node.is_none() || s.leaving_since.is_some() {
                        continue;
                    }
                    s.leaving_since = Some(now);
                    let generation = s.generation;
                    if let Some(node) = s.node.as_mut() {
                        node.leave(now);
                    }
                    self.drain(x);
                    self.queue.push(now, Ev::LeaveCheck { node: x, generation });
                }
                (v.clone(), format!("leave {}", list(&v)), Time::MAX)
            }
            FaultAction::Forge { attack, target, to, rounds, every, .. } => {
                let subjects: Vec<u32> = target.iter().copied().collect();
                let whom = target.map_or(String::new(), |t| format!(" about node {t}"));
                let rounds = rounds.unwrap_or(1);
                let every = every.map_or("1 period".to_owned(), |e| e.to_string());
                let to = to.as_ref().map_or("every node".to_owned(), |t| format!("nodes {t}"));
                let description =
                    format!("hostile node forges {attack}{whom} to {to}, {rounds} round(s) every {every}");
                self.forge_round(i, 0);
                (subjects, description, Time::MAX)
            }
            FaultAction::Impostor { name_of } => {
                let node = self.start_impostor(*name_of);
                (vec![*name_of, node], format!("node {node} starts under node {name_of}'s name"), Time::MAX)
            }
            FaultAction::Broadcast { nodes, spread, payload, .. } => {
                let v = self.schedule_broadcasts(i, nodes, *spread);
                let over = spread.map_or(Time::ZERO, |s| s.resolve(self.cfg.period));
                let len = payload.unwrap_or(crate::scenario::DEFAULT_BROADCAST_PAYLOAD);
                let what = format!("{} broadcast {len} B each", list(&v));
                (v, format!("{what} within {}", spread.map_or("an instant".to_owned(), |s| s.to_string())), now + over)
            }
        };
        trace!(self, "fault {i} {description}");
        tracing::debug!(target: "gossamer_sim", at_ms = now.as_millis() as u64, fault = i, "{description}");
        let kind = action.kind();
        let total = self.slots.len() as u32;
        self.trackers[i] = Tracker {
            at: now,
            kind,
            description,
            subjects: Members::from_indices(&subjects, total),
            subject_list: subjects,
            window_end,
            detect: matches!(kind, "crash" | "leave"),
            converge: matches!(kind, "heal" | "join" | "restart"),
            split: kind == "partition",
            first_suspect: None,
            first_dead: None,
            all_suspect: None,
            all_know: None,
            split_at: None,
            converged_at: None,
            suspicions: 0,
            deaths: 0,
            applied: true,
        };
        self.check_all_know();
        self.check_convergence();
    }
}
