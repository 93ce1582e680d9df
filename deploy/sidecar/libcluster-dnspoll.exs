# Elixir (libcluster): discover the BEAM nodes of an app from the gossamer agent beside each of them.
#
# Each host runs `gossamer agent` with a `[dns]` table (deploy/sidecar/node.toml) and the Elixir release
# named `myapp@<the IP gossamer advertises>` (RELEASE_DISTRIBUTION=name, RELEASE_NODE=myapp@10.0.0.5).
# libcluster's DNSPoll strategy asks for A records and connects to `<node_basename>@<ip>` for each one;
# gossamer answers only with members it sees ALIVE, so a crashed host drops out of the answer within the
# failure-detection time (plus the 5 s TTL), and DNSPoll's prune removes it.
#
# Which name to poll (see the README's "Run it as a sidecar"):
#   "members.gossamer"          every alive member
#   "elixir.app.tag.gossamer"   only the members whose gossamer tag `app` is `elixir`
#                               ([metadata] app = "elixir" in their node.toml)
#
# The agent answers on 127.0.0.1:8600, not port 53, so the lookup is told where to ask (no change to
# /etc/resolv.conf needed). Alternatively point the whole VM's resolver there with an inetrc file
# ({nameserver, {127,0,0,1}, 8600}.) passed as `-kernel inetrc '"/path/inetrc"'`.

import Config

gossamer_dns = [{{127, 0, 0, 1}, 8600}]

config :libcluster,
  topologies: [
    gossamer: [
      strategy: Cluster.Strategy.DNSPoll,
      config: [
        polling_interval: 5_000,
        query: "elixir.app.tag.gossamer",
        node_basename: "myapp",
        # DNSPoll calls this with the query and expects a list of IP tuples.
        resolver: fn query ->
          :inet_res.lookup(String.to_charlist(query), :in, :a, nameservers: gossamer_dns, timeout: 2_000)
        end
      ]
    ]
  ]
