//! The per-node heal state machine: member records, detection episodes,
//! winner decision, probing of dead members, and the records of members
//! the core forgot (autoclean).

use std::collections::{BTreeMap, VecDeque};

use gossamer_wire::{Incarnation, MemberState, MemberStatus, NodeId, NodeName};
use tracing::{debug, info, warn};

use crate::config::{ConfigError, HealConfig, Quorum};
use crate::holddown::HoldDown;
use crate::output::{Claim, HealCommand, HealEvent, HealHandler, HealOutput};
use crate::record::{is_live, Death, MemberRecord};
use crate::view::{reveals_partition, Side, ViewSummary};
use crate::Time;

mod decide;

use decide::{Decision, Episode};

/// Counters for observability (a snapshot, see [`Heal::metrics`]).
/// Serialisable like the core's and the runtime's metrics; a field an older
/// build did not have reads as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HealMetrics {
    /// `PartitionDetected` events raised.
    pub detections: u64,
    /// Detections ignored because a hold-down was running.
    pub suppressed: u64,
    /// Episodes decided (`PartitionHealed` raised).
    pub heals: u64,
    /// `Rejoin` commands issued (this node was on a losing side).
    pub rejoins: u64,
    /// Episodes decided on who came back, with neither a report nor a
    /// claim from another side.
    pub inferred: u64,
    /// Members forgotten by the core (autoclean, or an explicit removal)
    /// and dropped here ([`Heal::observe_removed`]).
    pub removed: u64,
    /// `Probe` commands issued.
    pub probes: u64,
}

/// Partition detection, autoheal and autoclean for one node, as a pure
/// state machine: feed it what the SWIM core observed, with an explicit
/// `now`, call [`Heal::tick`] by [`Heal::next_deadline`], and drain
/// [`Heal::poll`] (or [`Heal::dispatch`]) after every input.
///
/// ```
/// use std::time::Duration;
/// use gossamer_heal::{Heal, HealCommand, HealConfig, HealEvent, HealOutput};
/// use gossamer_wire::{MemberState, MemberStatus, Metadata, NodeId};
///
/// let id = |n: &str, port: u16| NodeId::new(n.parse().unwrap(), ([127, 0, 0, 1], port).into());
/// let (a, b, c, d) = (id("a", 1), id("b", 2), id("c", 3), id("d", 4));
/// let mut heal = Heal::new(a.clone(), HealConfig::default(), Duration::ZERO).unwrap();
/// let t = Duration::from_secs(1);
/// // Our side {a, b}; c and d were declared dead when the link broke.
/// heal.observe_member(t, &b, MemberStatus::Alive, 0, &[]);
/// heal.observe_member(t, &c, MemberStatus::Dead, 0, &["b".parse().unwrap()]);
/// heal.observe_member(t, &d, MemberStatus::Dead, 0, &["a".parse().unwrap()]);
/// // The link is back: a push-pull with c shows {c, d} holding {a, b} dead.
/// let state = |node: &NodeId, status| MemberState { node: node.clone(), incarnation: 0, status, metadata: Metadata::new() };
/// let view = [state(&c, MemberStatus::Alive), state(&d, MemberStatus::Alive),
///             state(&a, MemberStatus::Dead), state(&b, MemberStatus::Dead)];
/// heal.observe_remote_view(t, &c, &view);
/// // Our side's claim goes out (for the cluster to weigh), and the
/// // application hears of the partition.
/// assert!(matches!(heal.poll(), Some(HealOutput::Command(HealCommand::Publish(claim))) if claim.size == 2));
/// assert!(matches!(heal.poll(), Some(HealOutput::Event(HealEvent::PartitionDetected { .. }))));
/// // After the settle time the decision falls: 2 against 2, the side
/// // holding the lowest name ("a") wins, so this node does not rejoin.
/// heal.tick(t + Duration::from_secs(10));
/// match heal.poll() {
///     Some(HealOutput::Event(HealEvent::PartitionHealed { winners, rejoined })) => {
///         assert!(winners.contains(&a.name) && rejoined.contains(&c.name));
///     }
///     other => panic!("{other:?}"),
/// }
/// assert!(heal.poll().is_none(), "no Rejoin for the winners");
/// ```
#[derive(Debug, Clone)]
pub struct Heal {
    local: NodeId,
    config: HealConfig,
    members: BTreeMap<NodeName, MemberRecord>,
    /// Addresses learnt from other sides' views during an episode, so the
    /// losing side can name the winners as rejoin seeds.
    learnt_ids: BTreeMap<NodeName, NodeId>,
    episode: Option<Episode>,
    hold: HoldDown,
    next_probe: Time,
    probe_cursor: Option<NodeName>,
    /// When the core last refuted a claim of this node's death.
    self_refuted_at: Option<Time>,
    /// Sequence number of the last claim this node published.
    claim_seq: u64,
    /// Last claim sequence number seen from each publisher.
    claims_seen: BTreeMap<NodeName, u64>,
    /// The last decision, while a claim may still correct it.
    last_decision: Option<Decision>,
    outputs: VecDeque<HealOutput>,
    metrics: HealMetrics,
}

impl Heal {
    /// The heal layer of node `local`, created at `now`.
    pub fn new(local: NodeId, config: HealConfig, now: Time) -> Result<Self, ConfigError> {
        config.validate()?;
        // Nodes started together must not probe in lockstep: the first
        // probe comes at a phase of the interval derived from the name.
        let phase = config.probe_interval.mul_f64(name_fraction(&local.name));
        let next_probe = now.saturating_add(phase);
        Ok(Self {
            local,
            config,
            members: BTreeMap::new(),
            learnt_ids: BTreeMap::new(),
            episode: None,
            hold: HoldDown::default(),
            next_probe,
            probe_cursor: None,
            self_refuted_at: None,
            claim_seq: 0,
            claims_seen: BTreeMap::new(),
            last_decision: None,
            outputs: VecDeque::new(),
            metrics: HealMetrics::default(),
        })
    }

    /// This node.
    pub fn local(&self) -> &NodeId {
        &self.local
    }

    /// The settings in force.
    pub fn config(&self) -> &HealConfig {
        &self.config
    }

    /// Every member record (this node is not recorded).
    pub fn members(&self) -> impl Iterator<Item = &MemberRecord> + '_ {
        self.members.values()
    }

    /// One member's record.
    pub fn member(&self, name: &NodeName) -> Option<&MemberRecord> {
        self.members.get(name)
    }

    /// Members alive or suspect in this node's view, itself included.
    pub fn live_members(&self) -> Side {
        self.summary().live
    }

    /// Counters snapshot.
    pub fn metrics(&self) -> HealMetrics {
        self.metrics.clone()
    }

    /// When the current hold-down ends, if one is running at `now`.
    pub fn hold_down_until(&self, now: Time) -> Option<Time> {
        self.hold.until().filter(|_| self.hold.active(now))
    }

    /// True while a detection episode awaits its decision.
    pub fn is_settling(&self) -> bool {
        self.episode.is_some()
    }

    /// The earliest time [`Heal::tick`] has something to do: the next
    /// probe or the end of a settle period.
    pub fn next_deadline(&self) -> Time {
        let mut next = self.next_probe;
        if let Some(episode) = &self.episode {
            next = next.min(episode.due(self.config.settle));
        }
        next
    }

    /// The next event or command, if any. Drain after every input.
    pub fn poll(&mut self) -> Option<HealOutput> {
        self.outputs.pop_front()
    }

    /// Drains all pending outputs: events go to `handler` in order,
    /// commands are returned for the driver to apply.
    pub fn dispatch(&mut self, handler: &mut (impl HealHandler + ?Sized)) -> Vec<HealCommand> {
        let mut commands = Vec::new();
        while let Some(output) = self.outputs.pop_front() {
            match output {
                HealOutput::Event(event) => event.deliver(&self.local.name, handler),
                HealOutput::Command(command) => commands.push(command),
            }
        }
        commands
    }

    /// The SWIM core reported `id` at `incarnation` with `status`;
    /// `declared_by` names who declared it dead (for `Dead`; ignored
    /// otherwise). A dead member coming back alive after being declared
    /// dead by at least `comeback_quorum` of our side is a partition
    /// signal: it is announced and probed so its side's own view arrives.
    pub fn observe_member(
        &mut self,
        now: Time,
        id: &NodeId,
        status: MemberStatus,
        incarnation: Incarnation,
        declared_by: &[NodeName],
    ) {
        if id.name == self.local.name {
            return;
        }
        let from_afar = !declared_by.is_empty() && declared_by.iter().all(|n| self.off_our_side(now, n));
        let Some(record) = self.members.get_mut(&id.name) else {
            let death = (status == MemberStatus::Dead).then(|| Death {
                at: now,
                by: declared_by.iter().cloned().collect(),
                incarnation,
                foreign: false,
            });
            debug!(member = %id.name, ?status, "heal: new member record");
            let record = MemberRecord {
                id: id.clone(),
                status,
                incarnation,
                first_seen: now,
                since: now,
                death,
                returned_at: None,
                unalive_since: (status != MemberStatus::Alive).then_some(now),
            };
            self.members.insert(id.name.clone(), record);
            return;
        };
        let was = record.status;
        record.id = id.clone();
        record.incarnation = incarnation;
        if was != status {
            record.status = status;
            record.since = now;
        }
        let unalive_since = record.unalive_since;
        match (was == MemberStatus::Alive, status == MemberStatus::Alive) {
            (true, false) => record.unalive_since = Some(now),
            (false, true) => record.unalive_since = None,
            _ => {}
        }
        // A suspect member cut off from us that refutes the suspicion once
        // the link is back never died here, yet it comes back as surely as
        // a dead one: it belongs to another side of the heal.
        let grace = self.config.verdict_grace;
        let lately_ours = was == MemberStatus::Alive || unalive_since.is_some_and(|t| now.saturating_sub(t) <= grace);
        if was == MemberStatus::Suspect
            && status == MemberStatus::Alive
            && unalive_since.is_some_and(|t| now.saturating_sub(t) > grace)
        {
            record.returned_at = Some(now);
            if let Some(episode) = self.episode.as_mut() {
                episode.returned.insert(id.name.clone());
            }
        }
        match (was, status) {
            (MemberStatus::Dead, MemberStatus::Dead) => {
                if let Some(death) = record.death.as_mut() {
                    if death.by.is_empty() {
                        // The first confirmers (the core reports them right
                        // after the death itself).
                        death.foreign = from_afar && unalive_since.is_some_and(|t| death.at.saturating_sub(t) <= grace);
                    } else if !declared_by.is_empty() {
                        death.foreign &= from_afar;
                    }
                    death.by.extend(declared_by.iter().cloned());
                    death.incarnation = death.incarnation.max(incarnation);
                }
            }
            (_, MemberStatus::Dead) => {
                let foreign = from_afar && lately_ours;
                if foreign {
                    debug!(member = %id.name, by = ?declared_by, "heal: a verdict from across the cut about one of ours");
                }
                record.death = Some(Death { at: now, by: declared_by.iter().cloned().collect(), incarnation, foreign });
            }
            (MemberStatus::Dead, after) if is_live(after) => {
                if record.death.as_ref().is_some_and(|d| d.foreign) {
                    // One of ours refuted the other side's verdict: it
                    // never left our side.
                    return;
                }
                record.returned_at = Some(now);
                if let Some(episode) = self.episode.as_mut() {
                    episode.returned.insert(id.name.clone());
                }
                self.on_comeback(now, &id.name);
            }
            // The last death stays on record after a comeback: it tells
            // which members died together.
            _ => {}
        }
    }

    /// The SWIM core forgot member `name` (autoclean: its
    /// `dead_retention` or `left_retention` ran out, see
    /// [`crate::HealConfig::autoclean`]; or an operator removed it). Its
    /// record goes, with [`HealEvent::MemberRemoved`]; if it comes back it
    /// starts a new record, i.e. it joins as new, with no death to come
    /// back from. Unknown names are ignored.
    pub fn observe_removed(&mut self, now: Time, name: &NodeName) {
        let _ = now;
        if self.members.remove(name).is_none() {
            return;
        }
        // A new incarnation of the member starts its claims from scratch.
        self.claims_seen.remove(name);
        self.learnt_ids.remove(name);
        self.metrics.removed += 1;
        info!(member = %name, "heal: member removed (autoclean)");
        self.outputs.push_back(HealOutput::Event(HealEvent::MemberRemoved(name.clone())));
    }

    /// The SWIM core refuted a claim that this node is dead.
    /// Both sides of a healed partition must refute the other side's death
    /// verdicts (only a member itself can raise its incarnation), whereas
    /// survivors of a crash never do: a member coming back within
    /// `correlation_window` of a refutation is a partition signal whatever
    /// the number of declarers.
    pub fn observe_self_refuted(&mut self, now: Time) {
        self.self_refuted_at = Some(now);
        let horizon = now.saturating_sub(self.config.correlation_window);
        let latest = self
            .members
            .iter()
            .filter(|(_, r)| r.is_live() && r.returned_at.is_some_and(|t| t >= horizon))
            .max_by_key(|(_, r)| r.returned_at)
            .map(|(name, _)| name.clone());
        if let Some(name) = latest {
            self.on_comeback(now, &name);
        }
    }

    /// Member `from` published `claim`, its side of a partition (read from
    /// its metadata under [`crate::CLAIM_KEY`]). A new claim joins the
    /// running episode; with none running, it opens one if members came
    /// back lately (this node saw no signal of its own, but the cluster is
    /// healing), so its application hears of the heal too. During the
    /// hold-down after a decision, a claim for a stronger side than the one
    /// chosen corrects it (see [`Claim`]). Old or repeated claims are
    /// ignored.
    pub fn observe_claim(&mut self, now: Time, from: &NodeName, claim: &Claim) {
        if *from == self.local.name {
            return;
        }
        if self.claims_seen.get(from).is_some_and(|&seq| seq >= claim.seq) {
            return;
        }
        self.claims_seen.insert(from.clone(), claim.seq);
        if let Some(episode) = self.episode.as_mut() {
            debug!(%from, coordinator = %claim.coordinator, size = claim.size, "heal: side claim received");
            episode.claims.insert(from.clone(), claim.clone());
            return;
        }
        if self.hold.active(now) {
            self.correct(claim);
            return;
        }
        let horizon = now.saturating_sub(self.config.settle.saturating_add(self.config.correlation_window));
        let returned: Side = self
            .members
            .iter()
            .filter(|(_, r)| r.is_live() && r.returned_at.is_some_and(|t| t >= horizon))
            .map(|(name, _)| name.clone())
            .collect();
        if returned.is_empty() {
            debug!(%from, coordinator = %claim.coordinator, "heal: side claim without a partition here, ignored");
            return;
        }
        self.open_episode(now, &Side::new()).claims.insert(from.clone(), claim.clone());
        self.announce(returned);
    }

    /// A peer's full view, from a push-pull in either direction (the
    /// response to our request, or the request a peer sent us). If it
    /// reveals a partition (see [`reveals_partition`]), it is recorded as
    /// that side's own report and, if new, announced.
    pub fn observe_remote_view(&mut self, now: Time, from: &NodeId, members: &[MemberState]) {
        if from.name == self.local.name {
            return;
        }
        // Nearly every view a node is handed reveals nothing: decide that
        // from lookups alone, and build the name sets only for a split.
        if !view_reveals_partition(&self.local.name, &self.members, &from.name, members) {
            return;
        }
        let mut theirs = ViewSummary::default();
        for state in members {
            match state.status {
                MemberStatus::Alive | MemberStatus::Suspect => theirs.live.insert(state.node.name.clone()),
                MemberStatus::Dead => theirs.dead.insert(state.node.name.clone()),
                MemberStatus::Left => false,
            };
        }
        // The reporter is answering, so it is live whatever it says.
        theirs.dead.remove(&from.name);
        theirs.live.insert(from.name.clone());
        let ours = self.summary();
        if !reveals_partition(&self.local.name, &ours, &from.name, &theirs) {
            return;
        }
        if self.suppressed(now, &from.name) {
            return;
        }
        for state in members.iter().filter(|s| theirs.live.contains(&s.node.name)) {
            self.learnt_ids.insert(state.node.name.clone(), state.node.clone());
        }
        self.learnt_ids.insert(from.name.clone(), from.clone());
        self.open_episode(now, &Side::new()).reports.insert(from.name.clone(), theirs.live.clone());
        self.announce(theirs.live);
    }

    /// Advances time: decides a settled episode, and probes the next dead
    /// member when due.
    pub fn tick(&mut self, now: Time) {
        if self.episode.as_ref().is_some_and(|e| now >= e.due(self.config.settle)) {
            self.decide(now);
        }
        if now >= self.next_probe {
            self.next_probe = now.saturating_add(self.config.probe_interval);
            if !self.hold.active(now) {
                self.probe_next();
            }
        }
    }

    /// The running episode, or a new one whose side is our live members
    /// but `exclude` and those that came back from the dead lately. A new
    /// episode publishes our side's claim.
    fn open_episode(&mut self, now: Time, exclude: &Side) -> &mut Episode {
        let episode = match self.episode.take() {
            Some(episode) => episode,
            None => {
                let horizon = now.saturating_sub(self.config.settle.saturating_add(self.config.correlation_window));
                let returned: Side = self
                    .members
                    .iter()
                    .filter(|(_, r)| r.is_live() && r.returned_at.is_some_and(|t| t >= horizon))
                    .map(|(name, _)| name.clone())
                    .collect();
                let mut ours = self.side_before_heal(now, horizon);
                ours.retain(|n| !exclude.contains(n) && !returned.contains(n));
                if let Some(claim) = Claim::of(self.claim_seq + 1, &ours).filter(|_| self.config.autoheal) {
                    self.claim_seq += 1;
                    self.push_command(HealCommand::Publish(claim));
                }
                Episode {
                    since: now,
                    ours,
                    reports: BTreeMap::new(),
                    announced: Vec::new(),
                    returned,
                    claims: BTreeMap::new(),
                }
            }
        };
        self.episode.insert(episode)
    }

    /// Our side as it stood before the heal began, which the view at
    /// `now` no longer shows: the first crossing messages carry the other
    /// side's verdicts about our members (a `Confirm` sent the moment that
    /// side declared its last peer dead, suspicions from its views merged
    /// by push-pull), and our members need a moment to refute them.
    ///
    /// The heal began, as far as this node can tell, at its first sign
    /// since `horizon`: a member coming back, a death declared only by
    /// members we hold dead (a verdict from across the cut, see
    /// [`Death::foreign`]), or `now`. Our side is this node, the members
    /// alive now, those suspect since no earlier than `verdict_grace`
    /// before that first sign, and those dead by a verdict from across
    /// the cut. A member suspect for longer was cut off from us, even if
    /// our side had not declared it dead yet: counting it would make our
    /// side look larger than it was, and name a coordinator it never had.
    fn side_before_heal(&self, now: Time, horizon: Time) -> Side {
        let foreign_deaths = self
            .members
            .values()
            .filter_map(|r| r.death.as_ref().filter(|d| d.foreign && d.at >= horizon).map(|d| d.at));
        let returns = self.members.values().filter_map(|r| r.returned_at.filter(|&t| t >= horizon && r.is_live()));
        let began = foreign_deaths.chain(returns).fold(now, Time::min);
        let cutoff = began.saturating_sub(self.config.verdict_grace);
        let mut side = Side::new();
        side.insert(self.local.name.clone());
        for (name, record) in &self.members {
            let ours = match record.status {
                MemberStatus::Alive => true,
                MemberStatus::Suspect => record.unalive_since.is_none_or(|t| t >= cutoff),
                MemberStatus::Dead => record.death.as_ref().is_some_and(|d| d.foreign && d.at >= horizon),
                MemberStatus::Left => false,
            };
            if ours {
                side.insert(name.clone());
            }
        }
        side
    }

    /// Whether member `name` was on another side of a cut as of `now`:
    /// held dead, or back from the dead lately. This node and members it
    /// never heard of are not.
    fn off_our_side(&self, now: Time, name: &NodeName) -> bool {
        let horizon = now.saturating_sub(self.config.settle.saturating_add(self.config.correlation_window));
        self.members.get(name).is_some_and(|r| !r.is_live() || r.returned_at.is_some_and(|t| t >= horizon))
    }

    fn summary(&self) -> ViewSummary {
        summarize(&self.local.name, &self.members)
    }

    /// True (and counted) if detections are ignored right now.
    fn suppressed(&mut self, now: Time, about: &NodeName) -> bool {
        if self.hold.active(now) {
            self.metrics.suppressed += 1;
            debug!(%about, until = ?self.hold.until(), "heal: detection ignored during hold-down");
            return true;
        }
        false
    }

    /// A dead member is live again. It is a partition signal if this node
    /// refuted its own death lately (see [`Heal::observe_self_refuted`]),
    /// or if the nodes that declared it and the members that died with it
    /// (within `correlation_window`) dead make up at least
    /// `comeback_quorum` of our side. The core reports every distinct
    /// confirmer of a death (up to 16), but SWIM stops confirming once the
    /// first `Confirm` has spread, so the deaths of a whole batch are
    /// pooled: one crash is confirmed by one or two nodes, a cut all over
    /// our side.
    fn on_comeback(&mut self, now: Time, name: &NodeName) {
        let Some((id, death)) = self.members.get(name).and_then(|r| Some((r.id.clone(), r.death.clone()?))) else {
            return;
        };
        if self.episode.as_ref().is_some_and(|e| e.announced.iter().any(|s| s.contains(name))) {
            return;
        }
        let window = self.config.correlation_window;
        // Presume the members that died with it are on its side.
        let mut theirs = Side::new();
        let mut declarers = death.by.clone();
        for (other, record) in &self.members {
            if let Some(d) = record.death.as_ref().filter(|d| !d.foreign && d.at.abs_diff(death.at) <= window) {
                if record.status == MemberStatus::Dead || record.returned_at.is_some_and(|t| t >= d.at) {
                    theirs.insert(other.clone());
                    declarers.extend(d.by.iter().cloned());
                }
            }
        }
        theirs.insert(name.clone());
        let refuted = self.self_refuted_at.is_some_and(|t| now.abs_diff(t) <= window);
        // Our side: live members but those that came back lately.
        let horizon = now.saturating_sub(window);
        let side = self.members.values().filter(|r| r.is_live() && r.returned_at.is_none_or(|t| t < horizon)).count();
        let needed = self.config.comeback_quorum * (side + 1) as f64;
        if !refuted && (declarers.len() as f64) < needed {
            debug!(member = %name, declarers = declarers.len(), "heal: comeback below quorum, not a partition signal");
            return;
        }
        if self.suppressed(now, name) {
            return;
        }
        info!(member = %name, declarers = declarers.len(), refuted, "heal: a member declared dead came back");
        self.open_episode(now, &theirs).returned.insert(name.clone());
        self.announce(theirs);
        // Its side's own view decides; fetch it now rather than at the
        // next probe.
        self.push_command(HealCommand::Probe { peer: id });
    }

    /// Raises `PartitionDetected` for a side not announced yet in this
    /// episode.
    fn announce(&mut self, theirs: Side) {
        let majority = self.majority();
        let Some(episode) = self.episode.as_mut() else { return };
        let theirs: Side = theirs.difference(&episode.ours).cloned().collect();
        if theirs.is_empty() || episode.announced.iter().any(|side| !side.is_disjoint(&theirs)) {
            return;
        }
        episode.announced.push(theirs.clone());
        let ours = episode.ours.clone();
        let majority = majority(ours.len());
        warn!(ours = ours.len(), theirs = theirs.len(), ?majority, "heal: partition detected");
        self.metrics.detections += 1;
        self.outputs.push_back(HealOutput::Event(HealEvent::PartitionDetected { ours, theirs, majority }));
    }

    /// `side_len -> Some(side holds more than half)` per [`Quorum`].
    fn majority(&self) -> impl Fn(usize) -> Option<bool> {
        let total = match self.config.quorum {
            Quorum::Off => None,
            Quorum::Expected(n) => Some(n),
            Quorum::LastKnown => Some(1 + self.members.values().filter(|r| r.status != MemberStatus::Left).count()),
        };
        move |side| total.map(|total| side * 2 > total)
    }

    /// Probes the next dead member after the last one probed, in name
    /// order, so that every dead member is tried in turn.
    fn probe_next(&mut self) {
        let dead = |r: &&MemberRecord| r.status == MemberStatus::Dead;
        let after = self.probe_cursor.as_ref().and_then(|cursor| {
            self.members
                .range::<NodeName, _>((std::ops::Bound::Excluded(cursor), std::ops::Bound::Unbounded))
                .map(|(_, r)| r)
                .find(dead)
        });
        let Some(target) = after.or_else(|| self.members.values().find(dead)).map(|r| r.id.clone()) else {
            return;
        };
        self.probe_cursor = Some(target.name.clone());
        self.metrics.probes += 1;
        self.push_command(HealCommand::Probe { peer: target });
    }

    fn push_command(&mut self, command: HealCommand) {
        self.outputs.push_back(HealOutput::Command(command));
    }
}

/// A fraction in [0, 1) that depends only on the name (FNV-1a), the same
/// on every platform and run.
fn name_fraction(name: &NodeName) -> f64 {
    let hash =
        name.as_str().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % 1_000_000) as f64 / 1_000_000.0
}

/// [`reveals_partition`] of this node's view (`local` and its `members`)
/// and the view `theirs` sent by `reporter`, computed with one lookup per
/// remote member instead of building both views' name sets: at 10,000
/// members the sets cost two B-trees of 10,000 cloned names for an answer
/// that is nearly always "no". The same answer, case by case (a test
/// compares the two on random views): the reporter counts as live in its
/// own view whatever it says of itself; `members` never holds `local`.
fn view_reveals_partition(
    local: &NodeName,
    members: &BTreeMap<NodeName, MemberRecord>,
    reporter: &NodeName,
    theirs: &[MemberState],
) -> bool {
    let ours_live = |name: &NodeName| name == local || members.get(name).is_some_and(MemberRecord::is_live);
    let ours_dead = |name: &NodeName| members.get(name).is_some_and(|r| r.status == MemberStatus::Dead);
    let reporter_dead_here = ours_dead(reporter);
    let (mut they_lost_ours, mut we_lost_theirs, mut they_lost_us) = (false, reporter_dead_here, false);
    // Their live set is the reporter plus these; `shared` if one is live here.
    let (mut other_live_there, mut shared) = (false, ours_live(reporter));
    for state in theirs.iter().filter(|s| &s.node.name != reporter) {
        let name = &state.node.name;
        if is_live(state.status) {
            other_live_there = true;
            if !shared && ours_live(name) {
                shared = true;
            }
            if !we_lost_theirs && ours_dead(name) {
                we_lost_theirs = true;
            }
        } else if state.status == MemberStatus::Dead {
            if name == local {
                they_lost_us = true;
            }
            if !they_lost_ours && ours_live(name) {
                they_lost_ours = true;
            }
        }
        if they_lost_ours && we_lost_theirs && (reporter_dead_here || they_lost_us) {
            // The mutual case is settled: a split, whatever else the view holds.
            return true;
        }
    }
    // The mutual case was checked after every entry (its flags only ever
    // turn true); what is left is the disjoint case.
    let ours_has_two = members.values().any(MemberRecord::is_live);
    ours_has_two && other_live_there && !shared
}

/// This node's view reduced to live and dead names, itself included.
fn summarize(local: &NodeName, members: &BTreeMap<NodeName, MemberRecord>) -> ViewSummary {
    let mut summary = ViewSummary::default();
    summary.live.insert(local.clone());
    for (name, record) in members {
        if record.is_live() {
            summary.live.insert(name.clone());
        } else if record.status == MemberStatus::Dead {
            summary.dead.insert(name.clone());
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use gossamer_wire::Metadata;
    use proptest::prelude::*;

    use super::*;

    fn name(i: u8) -> NodeName {
        format!("n{i}").parse().unwrap()
    }

    fn status(code: u8) -> MemberStatus {
        [MemberStatus::Alive, MemberStatus::Suspect, MemberStatus::Dead, MemberStatus::Left][code as usize % 4]
    }

    proptest! {
        /// The lookup-only test answers exactly as `reveals_partition` on
        /// the two views' name sets, for any views over a few names
        /// (repeated and self-contradicting entries included).
        #[test]
        fn lookup_test_agrees_with_the_name_sets(
            ours in proptest::collection::vec((1u8..8, 0u8..4), 0..8),
            theirs in proptest::collection::vec((0u8..8, 0u8..4), 0..10),
            reporter in 0u8..8,
        ) {
            let local = name(0);
            let mut heal = Heal::new(NodeId::new(local.clone(), ([127, 0, 0, 1], 7000).into()), HealConfig::default(), Time::ZERO).unwrap();
            for (i, code) in ours {
                let id = NodeId::new(name(i), ([127, 0, 0, 1], 7000 + u16::from(i)).into());
                heal.observe_member(Time::ZERO, &id, status(code), 1, &[]);
            }
            let reporter = name(reporter);
            let view: Vec<MemberState> = theirs
                .iter()
                .map(|&(i, code)| MemberState {
                    node: NodeId::new(name(i), ([127, 0, 0, 1], 7000 + u16::from(i)).into()),
                    incarnation: 1,
                    status: status(code),
                    metadata: Metadata::new(),
                })
                .collect();
            let mut summary = ViewSummary::default();
            for state in &view {
                match state.status {
                    MemberStatus::Alive | MemberStatus::Suspect => summary.live.insert(state.node.name.clone()),
                    MemberStatus::Dead => summary.dead.insert(state.node.name.clone()),
                    MemberStatus::Left => false,
                };
            }
            summary.dead.remove(&reporter);
            summary.live.insert(reporter.clone());
            let expected = reveals_partition(&local, &heal.summary(), &reporter, &summary);
            prop_assert_eq!(view_reveals_partition(&local, &heal.members, &reporter, &view), expected);
        }
    }
}
