//! Two network namespaces joined by a veth pair, made by the test itself
//! with `ip netns`: addresses inside them exist nowhere else, multicast
//! crosses the pair like a real link (loopback here has no IPv6 multicast
//! route), and taking one end down cuts the link for real, with no firewall
//! rule. Both namespaces (and so the pair) are deleted on drop, also when
//! the test fails. Creating them needs root (CAP_NET_ADMIN) and iproute2:
//! [`VethPair::create`] returns the reason when it cannot, and the caller
//! prints it and skips.

use std::process::Command;

/// Runs `ip ARGS`; the error carries its stderr.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Namespaces `a` (side 0) and `b` (side 1) and the veth pair between them.
pub struct VethPair {
    names: [String; 2],
    links: [String; 2],
}

impl VethPair {
    /// Creates both namespaces and the pair, gives side `i` the addresses
    /// `addrs[i]` (with prefix length, IPv4 or IPv6: `"10.203.77.1/24"`,
    /// `"fd77::1/64"`) and brings the link and loopback up. `tag` (at most 3
    /// characters) keeps the names of tests running at the same time apart;
    /// the process id keeps concurrent test binaries apart.
    pub fn create(tag: &str, addrs: [&[&str]; 2]) -> Result<Self, String> {
        assert!(tag.len() <= 3, "interface names are limited to 15 bytes: tag {tag:?} too long");
        let pid = std::process::id() % 100_000;
        let pair = VethPair {
            names: [format!("gs{tag}a{pid}"), format!("gs{tag}b{pid}")],
            links: [format!("vg{tag}{pid}a"), format!("vg{tag}{pid}b")],
        };
        // One by one, so that Drop removes whatever exists if a step fails.
        for n in &pair.names {
            ip(&["netns", "add", n])?;
        }
        let [va, vb] = &pair.links;
        ip(&["link", "add", va, "type", "veth", "peer", "name", vb])?;
        for ((n, dev), side_addrs) in pair.names.iter().zip(&pair.links).zip(addrs) {
            ip(&["link", "set", dev, "netns", n])?;
            for addr in side_addrs {
                if addr.contains(':') {
                    // nodad: usable at once, without waiting for duplicate address detection.
                    ip(&["-n", n, "addr", "add", addr, "dev", dev, "nodad"])?;
                } else {
                    ip(&["-n", n, "addr", "add", addr, "dev", dev])?;
                }
            }
            ip(&["-n", n, "link", "set", dev, "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    /// The namespace of `side` (0 or 1).
    pub fn namespace(&self, side: usize) -> &str {
        &self.names[side]
    }

    /// The veth end inside `side`'s namespace.
    pub fn link(&self, side: usize) -> &str {
        &self.links[side]
    }

    /// The command prefix that runs a program inside `side`'s namespace.
    pub fn exec_prefix(&self, side: usize) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.names[side].clone()]
    }

    /// Takes `side`'s end of the link down or up. Down, nothing crosses; the
    /// addresses stay, so processes on each side still reach one another.
    pub fn set_link(&self, side: usize, up: bool) -> Result<(), String> {
        ip(&["-n", &self.names[side], "link", "set", &self.links[side], if up { "up" } else { "down" }])
    }

    /// Moves the calling thread (only it) into `side`'s namespace: every
    /// socket it creates afterwards lives there.
    pub fn enter(&self, side: usize) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(format!("/var/run/netns/{}", self.names[side]))?;
        // SAFETY: a valid namespace file descriptor; CLONE_NEWNET changes
        // only the calling thread's network namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for n in &self.names {
            // Deleting a namespace also deletes the veth end inside it.
            let _ = ip(&["netns", "del", n]);
        }
    }
}
