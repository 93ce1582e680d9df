// The memberlist side of the loopback comparison (scripts/versus_memberlist.sh;
// the gossamer side is crates/gossamer/examples/loopback_cluster.rs and runs
// the same phases): N memberlist nodes (DefaultLANConfig) on 127.0.0.1 in one
// process, all joining one seed; once every node sees N members, a warm-up,
// then an idle window in which the network namespace's own counters
// (/proc/net/snmp, /proc/net/dev) give UDP datagrams, TCP segments and IP
// bytes per node per second; then one node shuts down without leaving and the
// time until the first and until every other node holds it dead is measured
// from NotifyLeave events (memberlist's signal for dead and left). Members
// other than the crashed one declared dead are counted. memberlist has no
// suspicion event, so false_suspect is reported as "na".
//
// Build (Debian: golang-go, golang-github-hashicorp-memberlist-dev):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o versus_memberlist .
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

type seen struct {
	observer int
	subject  string
	at       time.Time
}

type events struct {
	observer int
	ch       chan<- seen
}

func (e *events) NotifyJoin(*memberlist.Node)   {}
func (e *events) NotifyUpdate(*memberlist.Node) {}
func (e *events) NotifyLeave(n *memberlist.Node) {
	e.ch <- seen{e.observer, n.Name, time.Now()}
}

type counters struct{ udpOut, tcpOut, ipBytes uint64 }

func field(snmp []string, proto, name string) uint64 {
	var head, values []string
	for _, l := range snmp {
		if strings.HasPrefix(l, proto+": ") {
			if head == nil {
				head = strings.Fields(l)
			} else {
				values = strings.Fields(l)
				break
			}
		}
	}
	for i, h := range head {
		if h == name && i < len(values) {
			v, _ := strconv.ParseUint(values[i], 10, 64)
			return v
		}
	}
	return 0
}

func read() counters {
	snmp, _ := os.ReadFile("/proc/net/snmp")
	lines := strings.Split(string(snmp), "\n")
	dev, _ := os.ReadFile("/proc/net/dev")
	var ip uint64
	for _, l := range strings.Split(string(dev), "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "lo:") {
			f := strings.Fields(strings.TrimPrefix(t, "lo:"))
			if len(f) > 8 {
				ip, _ = strconv.ParseUint(f[8], 10, 64)
			}
		}
	}
	return counters{field(lines, "Udp", "OutDatagrams"), field(lines, "Tcp", "OutSegs"), ip}
}

func main() {
	n := flag.Int("nodes", 128, "nodes")
	warmup := flag.Int("warmup", 10, "seconds after convergence before measuring")
	idle := flag.Int("idle", 30, "seconds of idle traffic measured")
	detectDeadline := flag.Int("detect-deadline", 60, "seconds to wait for every node to hold the crashed one dead")
	base := flag.Int("base-port", 20000, "first port")
	flag.Parse()

	ch := make(chan seen, 1<<16)
	nodes := make([]*memberlist.Memberlist, *n)
	for i := 0; i < *n; i++ {
		c := memberlist.DefaultLANConfig()
		c.Name = fmt.Sprintf("n%d", i)
		c.BindAddr = "127.0.0.1"
		c.BindPort = *base + i
		c.AdvertisePort = c.BindPort
		c.LogOutput = io.Discard
		c.Events = &events{i, ch}
		m, err := memberlist.Create(c)
		if err != nil {
			log.Fatalf("node %d: %v", i, err)
		}
		nodes[i] = m
	}
	seed := fmt.Sprintf("127.0.0.1:%d", *base)
	t0 := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	retries, failed := 0, 0
	for i := 1; i < *n; i++ {
		wg.Add(1)
		go func(m *memberlist.Memberlist) {
			defer wg.Done()
			for try := 0; try < 20; try++ {
				if _, err := m.Join([]string{seed}); err == nil {
					return
				}
				mu.Lock()
				retries++
				mu.Unlock()
				time.Sleep(time.Second)
			}
			mu.Lock()
			failed++
			mu.Unlock()
		}(nodes[i])
	}
	wg.Wait()
	if retries > 0 {
		log.Printf("joins: %d retried, %d never joined", retries, failed)
	}
	lastReport := time.Now()
	for {
		short, fewest := 0, *n
		for _, m := range nodes {
			if k := m.NumMembers(); k < *n {
				short++
				if k < fewest {
					fewest = k
				}
			}
		}
		if short == 0 {
			break
		}
		if os.Getenv("VERBOSE") != "" && time.Since(lastReport) > 5*time.Second {
			lastReport = time.Now()
			log.Printf("%.0f s: %d nodes short, fewest members seen %d", time.Since(t0).Seconds(), short, fewest)
		}
		if time.Since(t0) > 120*time.Second {
			log.Fatalf("not converged in 120 s: %d nodes short, fewest members seen %d", short, fewest)
		}
		time.Sleep(50 * time.Millisecond)
	}
	converge := time.Since(t0).Seconds()
	time.Sleep(time.Duration(*warmup) * time.Second)
	for len(ch) > 0 {
		<-ch
	}
	c0, i0 := read(), time.Now()
	time.Sleep(time.Duration(*idle) * time.Second)
	c1, idleS := read(), time.Since(i0).Seconds()

	victim := *n - 1
	victimName := fmt.Sprintf("n%d", victim)
	crash := time.Now()
	nodes[victim].Shutdown()
	knows := map[int]bool{}
	first, all := -1.0, -1.0
	falseDead := 0
	deadline := time.After(time.Duration(*detectDeadline) * time.Second)
loop:
	for all < 0 {
		select {
		case s := <-ch:
			if s.subject != victimName {
				falseDead++
				continue
			}
			if s.observer != victim && !knows[s.observer] {
				knows[s.observer] = true
				t := s.at.Sub(crash).Seconds()
				if first < 0 {
					first = t
				}
				if len(knows) == *n-1 {
					all = t
				}
			}
		case <-deadline:
			break loop
		}
	}
	for len(ch) > 0 {
		if s := <-ch; s.subject != victimName {
			falseDead++
		}
	}
	per := func(d uint64) float64 { return float64(d) / float64(*n) / idleS }
	f := func(t float64) string {
		if t < 0 {
			return "none"
		}
		return fmt.Sprintf("%.2f", t)
	}
	fmt.Printf("RESULT system=memberlist nodes=%d converge_s=%.2f udp_pkts_per_node_s=%.2f tcp_segs_per_node_s=%.2f "+
		"ip_bytes_per_node_s=%.0f first_detect_s=%s all_detect_s=%s knew_dead=%d false_dead=%d false_suspect=na\n",
		*n, converge, per(c1.udpOut-c0.udpOut), per(c1.tcpOut-c0.tcpOut), per(c1.ipBytes-c0.ipBytes),
		f(first), f(all), len(knows), falseDead)
}
