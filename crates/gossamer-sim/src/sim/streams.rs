//! Push-pull exchanges as reliable request/response streams: latency and
//! serialisation time each way, failure when the path is cut, the server is
//! down, refuses, or the response comes after the stream timeout.
//!
//! Fallback pings (`NodeOutput::StreamPing`) are streams too: not subject
//! to datagram loss, only to cuts, crashes and pauses. They pay the TCP
//! handshake (one round trip) before the request, and fail at their
//! deadline (the end of the probe's period) if the path is cut or the
//! answer is later; a down server refuses the connection at once.

use super::*;

impl<F: NodeFactory> Simulation<F> {
    pub(super) fn start_stream(&mut self, client: u32, to: SocketAddr, request: Bytes) {
        self.stats.traffic.streams += 1;
        self.stats.traffic.stream_bytes += request.len() as u64;
        let generation = self.slots[client as usize].generation;
        let started = self.now;
        let server = node_index(to).filter(|&d| (d as usize) < self.slots.len());
        let leg = server.and_then(|s| self.net.stream_leg(client, s, request.len(), self.now));
        match (server, leg) {
            (Some(server), Some(at)) => {
                trace!(self, "stream-request {client}->{server} len={} crc={:08x}", request.len(), crc(&request));
                self.queue.push(at, Ev::StreamRequest { client, generation, server, request, started, lagged: false });
            }
            _ => {
                trace!(self, "stream-request {client}->{to} unreachable");
                let at = started + self.cfg.stream_timeout;
                self.queue.push(at, Ev::StreamFailed { client, generation, peer: to });
            }
        }
    }

    pub(super) fn serve_stream(&mut self, client: u32, generation: u32, server: u32, request: Bytes, started: Time) {
        let now = self.now;
        let timeout_at = (started + self.cfg.stream_timeout).max(now);
        if !self.net.reachable(client, server, now) {
            self.queue.push(timeout_at, Ev::StreamFailed { client, generation, peer: node_addr(server) });
            return;
        }
        let response = self.answer_stream(client, server, &request);
        let Some(response) = response else {
            trace!(self, "stream-rejected {client}->{server}");
            let back = now + (now - started);
            self.queue.push(back, Ev::StreamFailed { client, generation, peer: node_addr(server) });
            return;
        };
        self.stats.traffic.stream_bytes += response.len() as u64;
        match self.net.stream_leg(server, client, response.len(), now) {
            Some(at) => {
                trace!(self, "stream-serve {server}->{client} len={} crc={:08x}", response.len(), crc(&response));
                self.queue
                    .push(at, Ev::StreamResponse { client, generation, server, response, started, lagged: false });
            }
            None => self.queue.push(timeout_at, Ev::StreamFailed { client, generation, peer: node_addr(server) }),
        }
    }

    /// The server's core answers one stream request (a push-pull or a
    /// fallback ping) from `client`; what it queued meanwhile is drained.
    /// `None`: it refused, or the server is down.
    fn answer_stream(&mut self, client: u32, server: u32, request: &Bytes) -> Option<Bytes> {
        let now = self.now;
        let response = self.slots[server as usize]
            .node
            .as_mut()
            .and_then(|n| n.handle_push_pull_request(now, node_addr(client), request));
        self.drain(server);
        response
    }

    pub(super) fn stream_failed(&mut self, client: u32, peer: SocketAddr) {
        self.stats.traffic.stream_failures += 1;
        trace!(self, "stream-failed {client}->{peer}");
        let now = self.now;
        if let Some(n) = self.slots[client as usize].node.as_mut() {
            n.push_pull_failed(now, peer);
        }
        self.drain(client);
    }

    pub(super) fn start_ping(&mut self, client: u32, to: SocketAddr, request: Bytes, deadline: Time) {
        self.stats.traffic.stream_pings += 1;
        self.stats.traffic.stream_ping_bytes += request.len() as u64;
        let generation = self.slots[client as usize].generation;
        let now = self.now;
        let server = node_index(to).filter(|&d| (d as usize) < self.slots.len());
        // Handshake (there and back), then the request.
        let leg = server.and_then(|s| {
            let syn_ack = self.net.ping_leg(client, s, 0, now)?;
            let ack = self.net.ping_leg(s, client, 0, syn_ack)?;
            self.net.ping_leg(client, s, request.len(), ack)
        });
        match (server, leg) {
            (Some(server), Some(at)) if at <= deadline => {
                trace!(self, "ping-request {client}->{server} len={}", request.len());
                self.queue.push(at, Ev::PingRequest { client, generation, server, request, deadline, lagged: false });
            }
            _ => {
                trace!(self, "ping-request {client}->{to} unreachable");
                self.queue.push(deadline.max(now), Ev::PingFailed { client, generation, peer: to });
            }
        }
    }

    pub(super) fn serve_ping(&mut self, client: u32, generation: u32, server: u32, request: Bytes, deadline: Time) {
        let now = self.now;
        let fail_at = deadline.max(now);
        if !self.net.reachable(client, server, now) {
            self.queue.push(fail_at, Ev::PingFailed { client, generation, peer: node_addr(server) });
            return;
        }
        let response = self.answer_stream(client, server, &request);
        let Some(response) = response else {
            trace!(self, "ping-rejected {client}->{server}");
            self.queue.push(now, Ev::PingFailed { client, generation, peer: node_addr(server) });
            return;
        };
        self.stats.traffic.stream_ping_bytes += response.len() as u64;
        match self.net.ping_leg(server, client, response.len(), now) {
            Some(at) => {
                trace!(self, "ping-serve {server}->{client} len={}", response.len());
                self.queue.push(at, Ev::PingResponse { client, generation, server, response, deadline, lagged: false });
            }
            None => self.queue.push(fail_at, Ev::PingFailed { client, generation, peer: node_addr(server) }),
        }
    }

    pub(super) fn ping_answered(&mut self, client: u32, server: u32, response: Bytes, deadline: Time) {
        let now = self.now;
        if now > deadline {
            let generation = self.slots[client as usize].generation;
            self.ping_failed(client, generation, node_addr(server));
            return;
        }
        trace!(self, "ping-response {server}->{client} len={}", response.len());
        if let Some(n) = self.slots[client as usize].node.as_mut() {
            n.handle_stream_ping_response(now, node_addr(server), &response);
        }
        self.drain(client);
    }

    pub(super) fn ping_failed(&mut self, client: u32, generation: u32, peer: SocketAddr) {
        let slot = &self.slots[client as usize];
        if slot.generation != generation || slot.node.is_none() {
            return;
        }
        self.stats.traffic.stream_ping_failures += 1;
        trace!(self, "ping-failed {client}->{peer}");
        let now = self.now;
        if let Some(n) = self.slots[client as usize].node.as_mut() {
            n.stream_ping_failed(now, peer);
        }
        self.drain(client);
    }
}
