//! Push-pull exchanges as reliable request/response streams: latency and
//! serialisation time each way, failure when the path is cut, the server is
//! down, refuses, or the response comes after the stream timeout.

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
        let response = self.slots[server as usize]
            .node
            .as_mut()
            .and_then(|n| n.handle_push_pull_request(now, node_addr(client), &request));
        self.drain(server);
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

    pub(super) fn stream_failed(&mut self, client: u32, peer: SocketAddr) {
        self.stats.traffic.stream_failures += 1;
        trace!(self, "stream-failed {client}->{peer}");
        let now = self.now;
        if let Some(n) = self.slots[client as usize].node.as_mut() {
            n.push_pull_failed(now, peer);
        }
        self.drain(client);
    }
}
