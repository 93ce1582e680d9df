//! One frame each way over TCP: the push-pull exchange, and the admission
//! of inbound streams, which anyone who can reach the port may open.
//!
//! The header is read first and checked (magic, version, label, length cap)
//! before a single byte of body is buffered, so an oversized or foreign
//! frame costs nothing.
//!
//! # Admission of inbound streams
//!
//! Nothing on a stream is authenticated before its whole frame is: a sealed
//! frame is one XChaCha20-Poly1305 seal over the whole body (see
//! `gossamer_wire::frame`), so a body cannot be authenticated in chunks
//! without a wire change, and the header (magic, version, label, length) is
//! public knowledge. So an attacker who can reach the port can open
//! connections and claim large frames, with or without the key. The
//! `Admission` table keeps that from starving legitimate peers or the
//! node's memory:
//!
//! - **Deadlines.** A stream gets `header_timeout` (2 s by default) for its
//!   first bytes, its whole header *and* its share of the byte budget, and
//!   `stream_timeout` (10 s) from acceptance for the whole frame.
//! - **Slots.** At most `max_inbound_streams` streams at once, and at most
//!   `max_inbound_streams_per_ip` from one source address. When either limit
//!   is reached, the newcomer is *not* refused: the node evicts the
//!   connection that has proved the least, in this order: one that has sent
//!   nothing for `SILENT_GRACE` (250 ms) since it was accepted, then one
//!   that has sent nothing yet, then one whose frame is not all in (header,
//!   budget wait or unauthenticated body) by the frame length its header
//!   claims, largest first (unknown counts as largest), then one writing
//!   its response to a slow reader (its request is merged already); the
//!   oldest first among equals. The waiting bytes are peeked at acceptance,
//!   before the stream's task has run (a legitimate peer's request is
//!   usually in the socket by then), so a join claiming a few kilobytes is
//!   admitted ahead of idle connections and of any connection claiming
//!   more. A stream whose whole frame is with the core, or whose peer passed
//!   mutual TLS, has proved itself and is never evicted; only when every
//!   slot holds such a stream is the newcomer refused (`streams_busy`).
//!   Re-opening idle connections only makes them evict each other.
//! - **Waiting instead of churning.** A stream that has sent bytes, claims
//!   no more than the newcomer and was accepted less than [`STALL_GRACE`]
//!   (1 s) ago is spared: evicting it would trade a request about to be
//!   served for one no better, which is what a burst of joins did (1,000
//!   nodes joining one seed: 4,000+ evictions, every one a failed join
//!   retried). If only such streams could make room, the newcomer is held
//!   by the driver ([`Busy::Wait`], `streams_deferred`) and admitted when a
//!   slot frees or the grace of one is over; at most `max_inbound_streams`
//!   connections are held, each at most `header_timeout` (then closed,
//!   `streams_busy`), and while that many wait the listener is not polled.
//!   A stream that stalls or trickles is evicted once its grace is over,
//!   exactly as before.
//! - **A whole request is never the one to go.** A stream whose entire
//!   request frame (up to [`WHOLE_PEEK_LEN`], a join's) was seen waiting
//!   in its socket is spared past the grace, until its task has read it:
//!   its peer has done all it had to, and any wait is this node's. On one
//!   saturated tokio worker, 2,000 nodes joining one seed, the seed's
//!   tasks ran seconds late, and the grace evicted 800–1,700 such joins a
//!   run, each one retried (issue #16); with the rule, 170–450. Once read,
//!   it is like any stream again (a reader too slow for its response goes).
//!   A request already whole when its stream is admitted is read and
//!   answered by the driver at once ([`read_waiting_request`]); its task
//!   only writes the response, and until it starts, the stream is spared
//!   the same way.
//! - **Bounded buffering.** Before it reads a body, a stream reserves the
//!   body's length from a byte budget shared by every inbound stream
//!   (`stream_buffer_budget`, 64 MiB by default, at least the frame cap);
//!   the reservation ends when the core is done with the frame. If the budget
//!   is short, streams reading bodies that claim *more* than the newcomer
//!   are evicted, largest claim first (so a small join always gets in past
//!   big claims), and otherwise the newcomer waits, within its header
//!   deadline. An evicted stream's bytes stay reserved until its task has
//!   ended and dropped its buffer, so the budget bounds the buffers alive,
//!   not only those still wanted. The body buffer grows only as bytes
//!   arrive. So 40 connections claiming 32 MiB each hold at most the
//!   budget, not 1.3 GB; each is bounded by the frame cap
//!   (`max_stream_frame`, 32 MiB, the core's own cap) whether or not a key
//!   is set, and the budget bounds them all.
//!
//! Every eviction, refusal and timeout is counted in [`crate::NetMetrics`]
//! and logged at `warn`, rate-limited, by the driver.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BufMut;
use gossamer_wire::{header_len, FrameCodec, HEADER_PREFIX_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::error::StreamError;
use crate::metrics::{bump, NetCounters};

/// The limits of inbound stream admission (from [`crate::NodeConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdmissionLimits {
    /// Most inbound streams open at once.
    pub max_streams: usize,
    /// Most inbound streams open at once from one source IP address.
    pub max_per_ip: usize,
    /// Bytes of unauthenticated frame bodies all inbound streams may hold.
    pub byte_budget: usize,
    /// How long a stream that has sent its request's first bytes, claiming
    /// no more than a newcomer, is spared by that newcomer: the newcomer
    /// waits for a slot instead ([`Busy::Wait`]). [`STALL_GRACE`] in a node.
    pub stall_grace: Duration,
}

/// How long an inbound stream that is sending a frame no larger than a
/// newcomer's is spared by it (see [`Busy::Wait`]): a peer's request is
/// read within milliseconds once its task runs, so only a stalled or
/// trickling stream (or a runtime so busy it could not have served the
/// newcomer either) gets that old unfinished.
pub(crate) const STALL_GRACE: Duration = Duration::from_secs(1);

/// How far a stream has come: the less, the sooner it is evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Accepted; not a byte read yet.
    Silent,
    /// Reading its header, or waiting for its share of the byte budget.
    Header,
    /// Reading an unauthenticated body (holds a budget reservation).
    Body,
    /// Writing the response: the request was merged, only the peer's own
    /// benefit is left, so a slow reader is evicted, but last.
    Answering,
    /// Its whole frame arrived (the core authenticates and merges it):
    /// never evicted.
    Proven,
    /// Its peer passed mutual TLS: never evicted, whatever it does.
    Trusted,
}

/// How long a just-accepted stream that has sent nothing yet is spared
/// before older silent ones: its peer may be writing its request right
/// now. Past it, a silent stream is the first to go.
pub(crate) const SILENT_GRACE: Duration = Duration::from_millis(250);

#[derive(Debug)]
struct Conn {
    ip: IpAddr,
    accepted: Instant,
    stage: Stage,
    /// Length of the frame its header claims (`usize::MAX` until known).
    claim: usize,
    /// Its whole request frame was seen waiting in the socket (see
    /// [`Peeked::whole`]): all that is left is this node's own work.
    whole: bool,
    /// A duplicate of the socket until the stream's task runs (or its
    /// request is seen whole, or too large to be), to peek at what it has
    /// sent when an eviction is due (its task may not have run yet on a
    /// busy runtime).
    probe: Option<socket2::Socket>,
    reserved: usize,
    abort: Option<AbortHandle>,
}

impl Conn {
    /// A silent stream that has sent bytes since moves on (see [`peek`]).
    /// One whose whole request has arrived is past every stall; the probe
    /// is kept until then (while the frame could still be seen whole), or
    /// until its task runs.
    fn look(&mut self, codec: &FrameCodec) {
        let Some(probe) = &self.probe else { return };
        let peeked = peek(probe, codec);
        if peeked.sent {
            self.stage = self.stage.max(Stage::Header);
            self.claim = peeked.claim.unwrap_or(usize::MAX);
            self.whole = peeked.whole;
            if peeked.whole || peeked.claim.is_some_and(|claim| claim > WHOLE_PEEK_LEN) {
                self.probe = None;
            }
        }
    }
}

/// The source a per-address limit counts: an IPv4 address (IPv4-mapped
/// IPv6 included), or an IPv6 address's /64, the smallest block a host is
/// usually given (one host can pick any address in it).
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// What an accepted stream has already sent, seen without consuming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peeked {
    /// Anything at all.
    pub sent: bool,
    /// The frame length its header claims, if the whole header is there
    /// and acceptable to the codec.
    pub claim: Option<usize>,
    /// The whole frame is there (it is at most [`WHOLE_PEEK_LEN`] bytes):
    /// the peer has done all it had to, and any wait from here on is this
    /// node's.
    pub whole: bool,
}

/// The longest request [`peek`] can see whole: a join's (a new node's own
/// entry, a few hundred bytes) fits with room to spare; a push-pull of a
/// whole table is read by its task as before.
pub(crate) const WHOLE_PEEK_LEN: usize = 4096;

/// Peeks at what `socket` (non-blocking) has received: a peer writes its
/// request as soon as it is connected, so bytes already waiting set it
/// apart from an idle connection, and its header says how much it claims.
pub(crate) fn peek(socket: &socket2::Socket, codec: &FrameCodec) -> Peeked {
    // The longest header (prefix, a 255-byte label, the length) fits, and
    // a small request whole.
    let mut buf = [std::mem::MaybeUninit::<u8>::new(0); WHOLE_PEEK_LEN];
    let n = match socket.peek(&mut buf) {
        Ok(n) if n > 0 => n.min(buf.len()),
        _ => return Peeked { sent: false, claim: None, whole: false },
    };
    // SAFETY: every element was initialised (to zero) above, and `peek`
    // only ever writes initialised bytes into it; `MaybeUninit<u8>` has
    // the layout of `u8`.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
    let claim = match header_len(bytes) {
        Some(header) if header <= n => codec.frame_len(&bytes[..header]).ok().flatten(),
        _ => None,
    };
    Peeked { sent: true, claim, whole: claim.is_some_and(|claim| claim <= n) }
}

/// The request of a stream just admitted, taken off its socket at once:
/// the peek at its admission saw the whole frame waiting there, `len`
/// bytes ([`Ticket::waiting_request`]; at most [`WHOLE_PEEK_LEN`], a
/// join's or a fallback ping's, within the codec's cap). Saves the stream
/// a task hop and the driver a message: on a saturated runtime each costs
/// a turn of every task (issue #16). `None` (nothing read) if the socket
/// cannot be read now; its task reads it then, as any other.
pub(crate) fn read_waiting_request(stream: &tokio::net::TcpStream, len: usize) -> Option<Vec<u8>> {
    let mut frame = vec![0u8; len];
    // All `len` bytes are in the socket's queue: one read takes them. Were
    // it short, the core refuses the truncated frame like any bad one.
    let n = stream.try_read(&mut frame).ok()?;
    frame.truncate(n);
    Some(frame)
}

#[derive(Debug, Default)]
struct Table {
    /// Ids grow with acceptance: iteration is oldest first.
    next: u64,
    conns: BTreeMap<u64, Conn>,
    per_ip: HashMap<IpAddr, usize>,
    reserved: usize,
    /// Evicted streams' reservations, by id, still counted in `reserved`
    /// until their tasks drop their tickets: an evicted task's buffer lives
    /// until then, so giving its bytes to another stream at eviction would
    /// let memory reach the budget plus one body.
    orphaned: HashMap<u64, usize>,
}

impl Table {
    /// The connection to evict among those `eligible`: silent ones first
    /// (past [`SILENT_GRACE`], then younger), then unauthenticated ones by
    /// the frame length they claim, largest (or unknown) first; the oldest
    /// among equals. A stream that has sent bytes, claims no more than the
    /// newcomer (`claim`) and is younger than `grace` is spared: then
    /// `Err(true)` if such a stream exists (the newcomer should wait for
    /// it), `Err(false)` if every stream has proved itself.
    fn victim(
        &mut self,
        now: Instant,
        codec: &FrameCodec,
        claim: usize,
        grace: Duration,
        eligible: impl Fn(&Conn) -> bool,
    ) -> Result<u64, bool> {
        // Those whose tasks have not run yet (they still have a probe):
        // silent ones may have sent since, partial requests may be whole.
        for conn in self.conns.values_mut().filter(|c| c.probe.is_some()) {
            conn.look(codec);
        }
        let rank = |c: &Conn| match c.stage {
            Stage::Silent if now.saturating_duration_since(c.accepted) >= SILENT_GRACE => 0,
            Stage::Silent => 1,
            Stage::Answering => 3,
            _ => 2,
        };
        // A whole request waiting for its task is spared however long
        // that takes: on a saturated runtime every task runs late, and
        // evicting one only trades a request ready to serve for another
        // (a join evicted is a join retried).
        let spared = |c: &Conn| {
            (c.whole && c.stage <= Stage::Body)
                || (c.stage > Stage::Silent && c.claim <= claim && now.saturating_duration_since(c.accepted) < grace)
        };
        let mut waiting = false;
        self.conns
            .iter()
            .filter(|(_, c)| c.stage < Stage::Proven && eligible(c))
            .filter(|(_, c)| {
                let spare = spared(c);
                waiting |= spare;
                !spare
            })
            .min_by_key(|(id, c)| (rank(c), std::cmp::Reverse(c.claim), **id))
            .map(|(id, _)| *id)
            .ok_or(waiting)
    }

    /// Removes a connection whose task is done (its ticket dropped),
    /// giving back its slot and its reservation, or the reservation it
    /// kept when it was evicted. Returns the bytes given back.
    fn remove(&mut self, id: u64) -> usize {
        let bytes = match self.detach(id) {
            Some(conn) => conn.reserved,
            None => self.orphaned.remove(&id).unwrap_or(0),
        };
        self.reserved = self.reserved.saturating_sub(bytes);
        bytes
    }

    /// Evicts a connection: its slot is free at once, its reservation
    /// only when its task drops its ticket (see `orphaned`).
    fn evict(&mut self, id: u64) -> Option<Conn> {
        let conn = self.detach(id)?;
        if conn.reserved > 0 {
            self.orphaned.insert(id, conn.reserved);
        }
        Some(conn)
    }

    /// Bytes that evicted streams will give back once their tasks end.
    fn orphaned_bytes(&self) -> usize {
        self.orphaned.values().sum()
    }

    /// Takes a connection out of the table and its address's count.
    fn detach(&mut self, id: u64) -> Option<Conn> {
        let conn = self.conns.remove(&id)?;
        if let Some(n) = self.per_ip.get_mut(&conn.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&conn.ip);
            }
        }
        Some(conn)
    }
}

/// Why [`Admission::admit`] refused a newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    /// Every slot holds a stream that has proved itself.
    Full,
    /// Every stream of this source address has proved itself.
    PerAddress,
    /// The only streams the newcomer could evict are sending frames no
    /// larger than its own and were accepted less than
    /// [`AdmissionLimits::stall_grace`] ago: evicting one would trade a
    /// request about to be served for one no better (a burst of joins
    /// evicting each other). The caller holds the connection and asks
    /// again once a slot frees or the grace is over ([`Admission::slot_freed`]).
    Wait,
}

/// The table of inbound streams: slots, per-address counts, the byte
/// budget, and who gets evicted (see the module docs). Shared by the
/// driver, which admits, and the stream tasks, which advance and reserve.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: AdmissionLimits,
    /// To read the claims of peeked headers.
    codec: FrameCodec,
    table: Mutex<Table>,
    /// Signalled whenever budget is given back.
    released: Notify,
    /// Signalled (one permit) whenever a slot is given back.
    slots: Notify,
    counters: Arc<NetCounters>,
}

impl Admission {
    pub(crate) fn new(limits: AdmissionLimits, codec: FrameCodec, counters: Arc<NetCounters>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            codec,
            table: Mutex::default(),
            released: Notify::new(),
            slots: Notify::new(),
            counters,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // No code path panics while holding the lock; a poisoned table is
        // still consistent (every update is a few plain assignments).
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a stream from `ip`, evicting the least proved connection (of
    /// this address, then of all) if a limit is reached. Returns the
    /// newcomer's ticket and how many were evicted, or why it was refused.
    /// `probe` is a duplicate of the stream's socket (see [`peek`]), kept
    /// while the stream is silent: bytes already waiting put it past every
    /// silent connection before its task has even run, and its waiting
    /// header says how much it claims.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, probe: Option<socket2::Socket>) -> Result<(Ticket, usize), Busy> {
        let ip = source(ip);
        let mut evicted = Vec::new();
        let now = Instant::now();
        let mut conn = Conn {
            ip,
            accepted: now,
            stage: Stage::Silent,
            claim: usize::MAX,
            whole: false,
            probe,
            reserved: 0,
            abort: None,
        };
        conn.look(&self.codec);
        let waiting_request = conn.whole.then_some(conn.claim);
        let id = {
            let mut t = self.lock();
            let (claim, grace) = (conn.claim, self.limits.stall_grace);
            let wait = |waiting: bool, busy: Busy| if waiting { Busy::Wait } else { busy };
            if t.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_per_ip {
                let id = t
                    .victim(now, &self.codec, claim, grace, |c| c.ip == ip)
                    .map_err(|waiting| wait(waiting, Busy::PerAddress))?;
                evicted.extend(t.evict(id));
            }
            if t.conns.len() >= self.limits.max_streams {
                let victim = t.victim(now, &self.codec, claim, grace, |_| true).map_err(|w| wait(w, Busy::Full));
                match victim {
                    Ok(id) => evicted.extend(t.evict(id)),
                    Err(busy) => {
                        // Not admitted after all: a stream of this address
                        // evicted above for it stays evicted (counted), and
                        // its slot is free for whoever waits.
                        drop(t);
                        if !evicted.is_empty() {
                            self.slots.notify_one();
                        }
                        self.finish_evictions(evicted);
                        return Err(busy);
                    }
                }
            }
            let id = t.next;
            t.next += 1;
            t.conns.insert(id, conn);
            *t.per_ip.entry(ip).or_insert(0) += 1;
            id
        };
        let count = evicted.len();
        self.finish_evictions(evicted);
        Ok((Ticket { admission: self.clone(), id, waiting_request }, count))
    }

    /// Aborts evicted connections' tasks (outside the lock). Their
    /// reservations come back when the tasks drop their tickets, which
    /// wakes the budget's waiters then (`Table::orphaned`).
    fn finish_evictions(&self, evicted: Vec<Conn>) {
        for conn in evicted {
            bump(&self.counters.streams_evicted);
            if let Some(abort) = conn.abort {
                abort.abort();
            }
        }
    }

    /// Reserves `bytes` of the budget for the body of the inbound stream
    /// `own`, or of a response to this node's own push-pull (`None`):
    /// evicts inbound bodies that claim more when the budget is short, else
    /// waits for room (the caller bounds the wait). `Budget` if `bytes` can
    /// never fit, `Evicted` if `own` was.
    async fn reserve_bytes(&self, own: Option<u64>, bytes: usize) -> Result<(), StreamError> {
        let budget = self.limits.byte_budget;
        if bytes > budget {
            return Err(StreamError::Budget { wanted: bytes, budget });
        }
        let mut waited = false;
        loop {
            let notified = self.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut evicted = Vec::new();
            let done = {
                let mut t = self.lock();
                if own.is_some_and(|id| !t.conns.contains_key(&id)) {
                    return Err(StreamError::Evicted);
                }
                // Evicted bodies give their bytes back once their tasks
                // end: evict only what that will not cover, then wait.
                let mut leaving = t.orphaned_bytes();
                while t.reserved.saturating_sub(leaving).saturating_add(bytes) > budget {
                    // The largest claim first, the oldest among equals.
                    let victim = t
                        .conns
                        .iter()
                        .filter(|(_, c)| c.stage == Stage::Body && c.reserved > bytes)
                        .max_by_key(|(id, c)| (c.reserved, std::cmp::Reverse(**id)))
                        .map(|(id, _)| *id);
                    match victim.and_then(|id| t.evict(id)) {
                        Some(conn) => {
                            leaving += conn.reserved;
                            evicted.push(conn);
                        }
                        None => break,
                    }
                }
                let fits = t.reserved.saturating_add(bytes) <= budget;
                if fits {
                    t.reserved += bytes;
                    if let Some(conn) = own.and_then(|id| t.conns.get_mut(&id)) {
                        conn.reserved += bytes;
                        conn.stage = conn.stage.max(Stage::Body);
                        conn.claim = bytes;
                    }
                }
                fits
            };
            self.finish_evictions(evicted);
            if done {
                return Ok(());
            }
            if !waited {
                waited = true;
                bump(&self.counters.stream_budget_waits);
            }
            notified.await;
        }
    }

    /// Reserves `bytes` for the response to one of this node's own
    /// push-pulls: its peer is not authenticated before the whole frame is
    /// either (a forged member's address may lead anywhere).
    pub async fn reserve_response(self: &Arc<Self>, bytes: usize) -> Result<Reservation, StreamError> {
        self.reserve_bytes(None, bytes).await?;
        Ok(Reservation { admission: self.clone(), bytes })
    }

    /// Lets an eviction abort the task serving stream `id` (at once if it
    /// was already evicted).
    pub fn set_abort(&self, id: u64, abort: AbortHandle) {
        let mut t = self.lock();
        match t.conns.get_mut(&id) {
            Some(conn) => conn.abort = Some(abort),
            None => {
                drop(t);
                abort.abort();
            }
        }
    }

    /// Resolves once a slot was given back since the last call (a stream
    /// ended or was evicted), for a newcomer told to [`Busy::Wait`].
    pub async fn slot_freed(&self) {
        self.slots.notified().await;
    }

    /// Most inbound streams open at once (also the most connections the
    /// driver holds waiting for a slot).
    pub fn max_streams(&self) -> usize {
        self.limits.max_streams
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }

    /// Budget bytes reserved now.
    pub fn reserved(&self) -> usize {
        self.lock().reserved
    }
}

/// One admitted inbound stream's place in the [`Admission`] table; dropping
/// it gives the slot and any reservation back.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    /// The length of the request frame seen whole in the socket at
    /// admission, if it was (see [`read_waiting_request`]).
    waiting_request: Option<usize>,
}

impl Ticket {
    /// The length of this stream's request frame, if the peek at its
    /// admission saw all of it waiting in the socket.
    pub fn waiting_request(&self) -> Option<usize> {
        self.waiting_request
    }

    /// This stream's id in the table (see [`Admission::set_abort`]).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Moves the stream to `stage` (never back); `Evicted` if it was.
    pub fn advance(&self, stage: Stage) -> Result<(), StreamError> {
        let mut t = self.admission.lock();
        let conn = t.conns.get_mut(&self.id).ok_or(StreamError::Evicted)?;
        conn.stage = conn.stage.max(stage);
        if conn.stage > Stage::Silent {
            conn.probe = None;
        }
        Ok(())
    }

    /// Reserves `bytes` of the byte budget for a body, evicting bodies that
    /// claim more when the budget is short, else waiting for it (the caller
    /// bounds the wait). `Budget` if `bytes` can never fit.
    pub async fn reserve(&self, bytes: usize) -> Result<(), StreamError> {
        self.admission.reserve_bytes(Some(self.id), bytes).await
    }

    /// The core has merged the request: the stream only writes the
    /// response now (see [`Stage::Answering`]); a TLS-trusted one stays so.
    pub fn answering(&self) {
        let mut t = self.admission.lock();
        if let Some(conn) = t.conns.get_mut(&self.id) {
            if conn.stage == Stage::Proven {
                conn.stage = Stage::Answering;
            }
        }
    }

    /// Gives this stream's reservation back (its frame was consumed).
    pub fn release(&self) {
        let mut t = self.admission.lock();
        let Some(conn) = t.conns.get_mut(&self.id) else { return };
        let bytes = std::mem::take(&mut conn.reserved);
        t.reserved = t.reserved.saturating_sub(bytes);
        drop(t);
        if bytes > 0 {
            self.admission.released.notify_waiters();
        }
    }
}

/// Budget held for a response frame ([`Admission::reserve_response`]),
/// given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    admission: Arc<Admission>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        {
            let mut t = self.admission.lock();
            t.reserved = t.reserved.saturating_sub(self.bytes);
        }
        self.admission.released.notify_waiters();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let (held_slot, bytes) = {
            let mut t = self.admission.lock();
            let held_slot = t.conns.contains_key(&self.id);
            (held_slot, t.remove(self.id))
        };
        if held_slot {
            self.admission.slots.notify_one();
        }
        if bytes > 0 {
            self.admission.released.notify_waiters();
        }
    }
}

/// Reads the request frame of an admitted inbound stream: first bytes,
/// header and budget within `header_timeout`, the whole frame within
/// `timeout` of `accepted`. The frame's budget stays reserved until the
/// ticket releases it or is dropped.
pub(crate) async fn read_inbound<S: AsyncRead + Unpin>(
    stream: &mut S,
    codec: &FrameCodec,
    ticket: &Ticket,
    accepted: Instant,
    header_timeout: Duration,
    timeout: Duration,
) -> Result<Vec<u8>, StreamError> {
    // What the body waits for in the budget, if it came that far.
    let awaiting = AtomicUsize::new(0);
    let header = async {
        let mut buf = vec![0u8; HEADER_PREFIX_LEN];
        // The first bytes lift the stream out of the first-evicted stage.
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(StreamError::Closed);
        }
        ticket.advance(Stage::Header)?;
        read_exact(stream, &mut buf[n..]).await?;
        let total = complete_header(stream, codec, &mut buf).await?;
        check_total(total, buf.len(), codec)?;
        let body = total - buf.len();
        awaiting.store(body, Ordering::Relaxed);
        ticket.reserve(body).await?;
        Ok((buf, total))
    };
    let (buf, total) = match tokio::time::timeout(header_timeout, header).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(match awaiting.load(Ordering::Relaxed) {
                0 => StreamError::HeaderTimeout,
                wanted => StreamError::Budget { wanted, budget: ticket.admission.limits.byte_budget },
            })
        }
    };
    let body_deadline = accepted + timeout;
    let frame = tokio::time::timeout_at(body_deadline, read_body(stream, buf, total))
        .await
        .map_err(|_| StreamError::Timeout)??;
    ticket.advance(Stage::Proven)?;
    Ok(frame)
}

/// Reads the response to one of this node's push-pulls within `timeout`,
/// its body under a reservation of the shared byte budget (held until the
/// returned [`Reservation`] is dropped, once the core has read the frame).
pub(crate) async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    codec: &FrameCodec,
    admission: &Arc<Admission>,
    timeout: Duration,
) -> Result<(Vec<u8>, Reservation), StreamError> {
    let read = async {
        let (buf, total) = read_header(stream, codec).await?;
        let reservation = admission.reserve_response(total - buf.len()).await?;
        Ok((read_body(stream, buf, total).await?, reservation))
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| StreamError::Timeout)?
}

/// Given at least the header prefix in `buf`, reads the rest of the header
/// if the prefix alone does not give the frame length, and returns it.
async fn complete_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    codec: &FrameCodec,
    buf: &mut Vec<u8>,
) -> Result<usize, StreamError> {
    if let Some(total) = codec.frame_len(buf)? {
        return Ok(total);
    }
    let header = header_len(buf).ok_or(StreamError::Closed)?;
    buf.resize(header, 0);
    read_exact(stream, &mut buf[HEADER_PREFIX_LEN..]).await?;
    codec.frame_len(buf)?.ok_or(StreamError::Closed)
}

/// Reads and checks a frame header: the bytes so far and the frame length.
async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    codec: &FrameCodec,
) -> Result<(Vec<u8>, usize), StreamError> {
    let mut buf = vec![0u8; HEADER_PREFIX_LEN];
    read_exact(stream, &mut buf).await?;
    // The prefix alone is enough to refuse another protocol or version.
    let total = complete_header(stream, codec, &mut buf).await?;
    check_total(total, buf.len(), codec)?;
    Ok((buf, total))
}

/// Reads exactly one frame from `stream`, refusing it by its header when
/// `codec` would (the codec's `max_frame_len` is the size cap). The whole
/// read is bounded by `timeout`. The node's own streams use
/// `read_inbound` and `read_response`, which also take budget.
pub async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    codec: &FrameCodec,
    timeout: Duration,
) -> Result<Vec<u8>, StreamError> {
    tokio::time::timeout(timeout, read_frame_inner(stream, codec)).await.map_err(|_| StreamError::Timeout)?
}

async fn read_frame_inner<S: AsyncRead + Unpin>(stream: &mut S, codec: &FrameCodec) -> Result<Vec<u8>, StreamError> {
    let (buf, total) = read_header(stream, codec).await?;
    read_body(stream, buf, total).await
}

fn check_total(total: usize, have: usize, codec: &FrameCodec) -> Result<(), StreamError> {
    if total > codec.max_frame_len() || total < have {
        return Err(StreamError::Refused(gossamer_wire::DecodeError::TooLarge {
            len: total as u64,
            max: u32::try_from(codec.max_frame_len()).unwrap_or(u32::MAX),
        }));
    }
    Ok(())
}

/// Most bytes the body buffer grows by before they have arrived.
const GROW_STEP: usize = 64 * 1024;

/// Reads the rest of a `total`-byte frame after `buf`. The buffer grows
/// only as bytes arrive (doubling from 64 KiB, capped at the frame): a
/// header claiming a huge (but allowed) frame does not make this node
/// allocate it up front.
async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut buf: Vec<u8>,
    total: usize,
) -> Result<Vec<u8>, StreamError> {
    while buf.len() < total {
        let have = buf.len();
        if have == buf.capacity() {
            // Doubling, but never past the frame (which the byte budget
            // covers): reserve_exact, since `reserve` may round up.
            buf.reserve_exact(have.max(GROW_STEP).min(total - have));
        }
        // Into the spare capacity, never past the frame's end.
        let n = stream.read_buf(&mut (&mut buf).limit(total - have)).await?;
        if n == 0 {
            return Err(StreamError::Closed);
        }
    }
    Ok(buf)
}

async fn read_exact<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> Result<(), StreamError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(StreamError::Closed),
        Err(e) => Err(StreamError::Io(e)),
    }
}

/// Writes one frame and flushes, bounded by `timeout`.
pub async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    frame: &[u8],
    timeout: Duration,
) -> Result<(), StreamError> {
    let write = async {
        stream.write_all(frame).await?;
        stream.flush().await?;
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(timeout, write).await.map_err(|_| StreamError::Timeout)?.map_err(StreamError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use gossamer_wire::{Ack, ClusterLabel, Message, Packet};

    fn codec(label: &str) -> FrameCodec {
        FrameCodec::new(ClusterLabel::new(label).unwrap())
    }

    fn frame(codec: &FrameCodec) -> Vec<u8> {
        let mut out = BytesMut::new();
        let packet = Packet::new(Message::Ack(Ack { seq: 9, from: "a@h".parse().unwrap() }));
        codec.encode(&packet, &mut out).unwrap();
        out.to_vec()
    }

    #[tokio::test]
    async fn reads_exactly_one_frame() {
        let c = codec("prod");
        let f = frame(&c);
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &f, Duration::from_secs(5)).await.unwrap();
        let got = read_frame(&mut b, &c, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got, f);
        assert!(c.decode(&got).is_ok());
    }

    #[tokio::test]
    async fn foreign_label_is_refused_by_its_header() {
        let f = frame(&codec("other"));
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &f, Duration::from_secs(5)).await.unwrap();
        let err = read_frame(&mut b, &codec("prod"), Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, StreamError::Refused(gossamer_wire::DecodeError::LabelMismatch { .. })), "{err}");
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_its_body() {
        let c = codec("prod");
        let mut f = frame(&c);
        // Claim a 1 GiB payload: the cap refuses it without reading further.
        let len_at = gossamer_wire::header_len(&f).unwrap() - 4;
        f[len_at..len_at + 4].copy_from_slice(&(1u32 << 30).to_le_bytes());
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &f, Duration::from_secs(5)).await.unwrap();
        let capped = c.clone().with_max_frame_len(1 << 20).unwrap();
        let err = read_frame(&mut b, &capped, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, StreamError::Refused(gossamer_wire::DecodeError::TooLarge { .. })), "{err}");
    }

    #[tokio::test]
    async fn garbage_and_early_close_are_errors() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, b"HTTP/1.1 200 OK\r\n", Duration::from_secs(5)).await.unwrap();
        let err = read_frame(&mut b, &codec("prod"), Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, StreamError::Refused(gossamer_wire::DecodeError::BadMagic { .. })), "{err}");

        let c = codec("prod");
        let f = frame(&c);
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &f[..f.len() - 3], Duration::from_secs(5)).await.unwrap();
        drop(a);
        let err = read_frame(&mut b, &c, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, StreamError::Closed), "{err}");
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        let (_a, mut b) = tokio::io::duplex(1 << 16);
        let err = read_frame(&mut b, &codec("prod"), Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(err, StreamError::Timeout), "{err}");
    }

    fn admission(max_streams: usize, max_per_ip: usize, byte_budget: usize) -> Arc<Admission> {
        let limits = AdmissionLimits { max_streams, max_per_ip, byte_budget, stall_grace: Duration::ZERO };
        Admission::new(limits, codec("prod"), Arc::default())
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, last))
    }

    fn evicted(ticket: &Ticket) -> bool {
        matches!(ticket.advance(Stage::Silent), Err(StreamError::Evicted))
    }

    #[tokio::test]
    async fn the_least_proved_stream_makes_room_and_proven_ones_never_do() {
        let adm = admission(3, 8, 1 << 20);
        let (silent, _) = adm.admit(ip(1), None).unwrap();
        let (header, _) = adm.admit(ip(2), None).unwrap();
        header.advance(Stage::Header).unwrap();
        let (proven, _) = adm.admit(ip(3), None).unwrap();
        proven.advance(Stage::Proven).unwrap();
        // Full: the silent one goes, not the newcomer.
        let (newer, n) = adm.admit(ip(4), None).unwrap();
        assert_eq!(n, 1);
        assert!(evicted(&silent) && !evicted(&header) && !evicted(&proven));
        // A silent stream past its grace goes before one reading its header.
        tokio::time::sleep(SILENT_GRACE + Duration::from_millis(50)).await;
        let (_newest, _) = adm.admit(ip(5), None).unwrap();
        assert!(evicted(&newer) && !evicted(&header));
        assert_eq!(adm.open(), 3);
        assert_eq!(adm.counters.streams_evicted.load(Ordering::Relaxed), 2);
        // A stream writing its response to a slow reader goes last.
        let slow = admission(2, 8, 1 << 20);
        let (answering, _) = slow.admit(ip(1), None).unwrap();
        answering.advance(Stage::Proven).unwrap();
        answering.answering();
        let (reading, _) = slow.admit(ip(2), None).unwrap();
        reading.advance(Stage::Header).unwrap();
        let (new, _) = slow.admit(ip(3), None).unwrap();
        assert!(evicted(&reading) && !evicted(&answering));
        new.advance(Stage::Proven).unwrap();
        let (_newer, _) = slow.admit(ip(4), None).unwrap();
        assert!(evicted(&answering), "then it goes too");
        // A TLS-trusted stream stays trusted while it answers.
        let tls = admission(1, 8, 1 << 20);
        let (trusted, _) = tls.admit(ip(1), None).unwrap();
        trusted.advance(Stage::Trusted).unwrap();
        trusted.answering();
        assert_eq!(tls.admit(ip(2), None).unwrap_err(), Busy::Full);
        // Only proven streams left: the newcomer is refused.
        let all_proven = admission(1, 8, 1 << 20);
        let (p, _) = all_proven.admit(ip(1), None).unwrap();
        p.advance(Stage::Proven).unwrap();
        assert_eq!(all_proven.admit(ip(2), None).unwrap_err(), Busy::Full);
        drop(p);
        assert!(all_proven.admit(ip(2), None).is_ok(), "a dropped ticket gives its slot back");
    }

    #[tokio::test]
    async fn a_newcomer_waits_for_a_young_stream_no_larger_than_itself() {
        let limits = AdmissionLimits { max_streams: 1, max_per_ip: 8, byte_budget: 1 << 20, stall_grace: SILENT_GRACE };
        let adm = Admission::new(limits, codec("prod"), Arc::default());
        // A request under way, claiming 100 bytes.
        let (sending, _) = adm.admit(ip(1), None).unwrap();
        sending.advance(Stage::Header).unwrap();
        sending.reserve(100).await.unwrap();
        // A newcomer whose claim is unknown (so no smaller): told to wait.
        assert_eq!(adm.admit(ip(2), None).unwrap_err(), Busy::Wait);
        assert!(!evicted(&sending));
        // Past the grace, the stalled stream goes as before.
        tokio::time::sleep(SILENT_GRACE + Duration::from_millis(50)).await;
        let (newcomer, n) = adm.admit(ip(2), None).unwrap();
        assert_eq!(n, 1);
        assert!(evicted(&sending));
        // A silent stream is never spared, however young.
        newcomer.advance(Stage::Silent).unwrap();
        let (younger, n) = adm.admit(ip(3), None).unwrap();
        assert_eq!(n, 1);
        assert!(evicted(&newcomer));
        younger.advance(Stage::Header).unwrap();
        assert_eq!(adm.admit(ip(4), None).unwrap_err(), Busy::Wait);
        // A slot given back wakes a waiter.
        drop(younger);
        tokio::time::timeout(Duration::from_secs(10), adm.slot_freed()).await.expect("a freed slot is signalled");
        assert!(adm.admit(ip(4), None).is_ok());
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        let v6 = |s: &str| IpAddr::V6(s.parse().unwrap());
        assert_eq!(source(v6("2001:db8:1:2:aaaa::1")), source(v6("2001:db8:1:2:bbbb::9")));
        assert_ne!(source(v6("2001:db8:1:2::1")), source(v6("2001:db8:1:3::1")));
        assert_eq!(source(v6("::ffff:10.0.0.1")), ip(1), "IPv4-mapped counts as IPv4");
        assert_eq!(source(ip(7)), ip(7));
    }

    #[tokio::test]
    async fn one_address_evicts_only_its_own_streams() {
        let adm = admission(32, 2, 1 << 20);
        let (other, _) = adm.admit(ip(9), None).unwrap();
        let (a1, _) = adm.admit(ip(1), None).unwrap();
        let (a2, _) = adm.admit(ip(1), None).unwrap();
        let (_a3, n) = adm.admit(ip(1), None).unwrap();
        assert_eq!(n, 1);
        assert!(evicted(&a1) && !evicted(&a2) && !evicted(&other), "the address's oldest went");
        a2.advance(Stage::Proven).unwrap();
        _a3.advance(Stage::Proven).unwrap();
        assert_eq!(adm.admit(ip(1), None).unwrap_err(), Busy::PerAddress);
        assert!(adm.admit(ip(2), None).is_ok(), "other addresses are not limited by it");
    }

    #[tokio::test]
    async fn the_byte_budget_evicts_larger_claims_and_otherwise_waits() {
        let adm = admission(32, 32, 100);
        let (big, _) = adm.admit(ip(1), None).unwrap();
        big.reserve(80).await.unwrap();
        let (small, _) = adm.admit(ip(2), None).unwrap();
        let asked = tokio::spawn(async move { small.reserve(30).await.map(|()| small) });
        tokio::time::timeout(Duration::from_secs(10), async {
            while !evicted(&big) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("a smaller claim evicts a larger one");
        // The evicted stream's task still holds its buffer: its bytes stay
        // reserved, and the newcomer waits until the task drops its ticket.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(adm.reserved(), 80);
        assert!(!asked.is_finished(), "no reservation while the evicted buffer lives");
        drop(big);
        let small = tokio::time::timeout(Duration::from_secs(10), asked).await.unwrap().unwrap().unwrap();
        assert_eq!(adm.reserved(), 30);
        let (large, _) = adm.admit(ip(3), None).unwrap();
        // 30 + 90 > 100 and the holder claims less: wait.
        let wait = tokio::time::timeout(Duration::from_millis(50), large.reserve(90)).await;
        assert!(wait.is_err(), "a larger claim waits for room");
        assert!(!evicted(&small));
        let waiter = tokio::spawn(async move { large.reserve(90).await.map(|()| large) });
        small.release();
        let large = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap().unwrap();
        assert_eq!(adm.reserved(), 90);
        assert!(adm.counters.stream_budget_waits.load(Ordering::Relaxed) >= 1);
        assert!(matches!(large.reserve(200).await, Err(StreamError::Budget { wanted: 200, budget: 100 })));
        // Responses to this node's own push-pulls draw from the same budget.
        let response = adm.reserve_response(10).await.unwrap();
        assert_eq!(adm.reserved(), 100);
        drop(response);
        drop(large);
        assert_eq!(adm.reserved(), 0, "everything given back");
    }

    #[tokio::test]
    async fn an_admitted_stream_is_read_within_its_deadlines() {
        let c = codec("prod");
        let f = frame(&c);
        let adm = admission(4, 4, 1 << 20);
        let (ticket, _) = adm.admit(ip(1), None).unwrap();
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &f, Duration::from_secs(5)).await.unwrap();
        let now = Instant::now();
        let got = read_inbound(&mut b, &c, &ticket, now, Duration::from_secs(5), Duration::from_secs(5)).await;
        assert_eq!(got.unwrap(), f);
        assert_eq!(adm.reserved(), f.len() - gossamer_wire::header_len(&f).unwrap(), "held until released");
        ticket.release();
        assert_eq!(adm.reserved(), 0);

        // Silent: the header deadline, not the whole-frame one.
        let (ticket, _) = adm.admit(ip(1), None).unwrap();
        let (_a, mut b) = tokio::io::duplex(1 << 16);
        let now = Instant::now();
        let err = read_inbound(&mut b, &c, &ticket, now, Duration::from_millis(50), Duration::from_secs(60)).await;
        assert!(matches!(err, Err(StreamError::HeaderTimeout)), "{err:?}");
    }

    #[tokio::test]
    async fn a_waiting_request_is_seen_before_its_task_runs() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = codec("prod");
        let f = frame(&c);
        let mut idle = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (idle_in, _) = listener.accept().await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        client.write_all(&f).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let dup = |s: &tokio::net::TcpStream| socket2::SockRef::from(s).try_clone().unwrap();
        assert_eq!(peek(&dup(&idle_in), &c), Peeked { sent: false, claim: None, whole: false });
        // The request may still be in flight on loopback: poll for it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let seen = loop {
            let seen = peek(&dup(&server), &c);
            if seen.sent || Instant::now() > deadline {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(seen, Peeked { sent: true, claim: Some(f.len()), whole: true });
        // Peeking consumed nothing.
        let mut first = [0u8; 2];
        let mut server = server;
        server.read_exact(&mut first).await.unwrap();
        assert_eq!(first, *b"GS");

        // With the limit reached, the idle stream goes, not the one whose
        // request waits (admitted first, so the older of the two).
        let adm = admission(2, 8, 1 << 20);
        let (with_request, _) = adm.admit(ip(1), Some(dup(&server))).unwrap();
        let (silent, _) = adm.admit(ip(2), Some(dup(&idle_in))).unwrap();
        let (_newcomer, n) = adm.admit(ip(3), None).unwrap();
        assert_eq!(n, 1);
        assert!(evicted(&silent) && !evicted(&with_request));
        idle.shutdown().await.unwrap();
    }

    /// Waits (within 10 s) until `len` bytes are waiting in `server`.
    async fn until_waiting(server: &tokio::net::TcpStream, len: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = vec![0u8; len + 1];
        while server.peek(&mut buf).await.unwrap() < len && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Accepts a connection from a client that wrote `bytes`, once they
    /// are all waiting in the accepted socket; returns both ends.
    async fn accepted_with(
        listener: &tokio::net::TcpListener,
        bytes: &[u8],
    ) -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        client.write_all(bytes).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        until_waiting(&server, bytes.len()).await;
        (server, client)
    }

    #[tokio::test]
    async fn a_whole_waiting_request_is_taken_at_once_and_a_partial_one_left() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = codec("prod");
        let f = frame(&c);
        let dup = |s: &tokio::net::TcpStream| socket2::SockRef::from(s).try_clone().unwrap();
        let adm = admission(8, 8, 1 << 20);
        let (whole, _c1) = accepted_with(&listener, &f).await;
        let (ticket, _) = adm.admit(ip(1), Some(dup(&whole))).unwrap();
        assert_eq!(ticket.waiting_request(), Some(f.len()));
        assert_eq!(read_waiting_request(&whole, f.len()), Some(f.clone()));
        let (part, mut part_client) = accepted_with(&listener, &f[..f.len() - 1]).await;
        let (ticket, _) = adm.admit(ip(2), Some(dup(&part))).unwrap();
        assert_eq!(ticket.waiting_request(), None);
        // Nothing was consumed: once the rest is in, the whole frame is read.
        part_client.write_all(&f[f.len() - 1..]).await.unwrap();
        let mut part = part;
        let read = read_frame(&mut part, &c, Duration::from_secs(10)).await.unwrap();
        assert_eq!(read, f);
        // A foreign frame is not taken: its task refuses it as before.
        let (foreign, _c3) = accepted_with(&listener, &frame(&codec("other"))).await;
        let (ticket, _) = adm.admit(ip(3), Some(dup(&foreign))).unwrap();
        assert_eq!(ticket.waiting_request(), None);
    }

    #[tokio::test]
    async fn a_whole_request_waiting_for_its_task_is_never_evicted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = codec("prod");
        let f = frame(&c);
        let dup = |s: &tokio::net::TcpStream| socket2::SockRef::from(s).try_clone().unwrap();
        let (whole, _whole_client) = accepted_with(&listener, &f).await;
        assert_eq!(peek(&dup(&whole), &c), Peeked { sent: true, claim: Some(f.len()), whole: true });
        let (part, _part_client) = accepted_with(&listener, &f[..f.len() - 1]).await;
        assert_eq!(peek(&dup(&part), &c), Peeked { sent: true, claim: Some(f.len()), whole: false });

        // No stall grace at all (the test's admission): a stream that has
        // not sent its whole frame goes as soon as a newcomer needs its
        // slot...
        let adm = admission(1, 8, 1 << 20);
        let (partial, _) = adm.admit(ip(1), Some(dup(&part))).unwrap();
        let (waiting, n) = adm.admit(ip(2), Some(dup(&whole))).unwrap();
        assert!(n == 1 && evicted(&partial));
        // ...but one whose whole request waits for its task (on a busy
        // runtime, however long) is not: the newcomer waits for the slot.
        assert_eq!(adm.admit(ip(3), None).unwrap_err(), Busy::Wait);
        assert!(!evicted(&waiting));
        // Once its task has read the request, it is spared no more than
        // any stream: writing its response to a reader that does not read,
        // it makes room.
        waiting.advance(Stage::Proven).unwrap();
        waiting.answering();
        let (_newcomer, n) = adm.admit(ip(3), None).unwrap();
        assert!(n == 1 && evicted(&waiting));

        // A request seen partial at acceptance is looked at again when an
        // eviction is due: whole by then, it is spared too.
        let (part, mut part_client) = accepted_with(&listener, &f[..f.len() - 1]).await;
        let adm = admission(1, 8, 1 << 20);
        let (completed, _) = adm.admit(ip(1), Some(dup(&part))).unwrap();
        part_client.write_all(&f[f.len() - 1..]).await.unwrap();
        until_waiting(&part, f.len()).await;
        assert_eq!(adm.admit(ip(2), None).unwrap_err(), Busy::Wait);
        assert!(!evicted(&completed));
    }
}
