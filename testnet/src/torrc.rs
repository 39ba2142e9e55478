//! Writing torrc files for the three kinds of node: authority, relay, and
//! client (optionally hosting an onion service).
//!
//! All addresses are 127.0.0.1; no node resolves names or touches DNS.
//! The voting schedule is the one that lets Arti and C tor onion services
//! reach each other (see the README): 75-second votes (20 s before the
//! first consensus), `hsdir_interval=30`, and a fixed circuit-build timeout
//! (`cbtdisabled=1`, see [`consensus_params`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::network_file::NetworkFile;
use crate::process::NodeLayout;

/// Seconds between votes once the network runs. With 24 votes per
/// shared-random run, C tor's onion-service time period is 24 × 75 s =
/// 30 min, which matches `hsdir_interval=30` for Arti.
pub(crate) const VOTING_INTERVAL_SECS: u32 = 75;
/// Arti's onion-service time period, in minutes (consensus parameter).
pub(crate) const HSDIR_INTERVAL_MINS: u32 = 30;

/// The consensus parameters the authorities vote for, `name=value` each.
///
/// `cbtdisabled=1` keeps every client (Arti and C tor) on the fixed 60 s
/// circuit-build timeout instead of learning one. On loopback a circuit
/// builds in milliseconds, so after its first 100 circuits a client learns
/// a timeout of tens of milliseconds, and the first busy moment of a small
/// machine then fails every circuit it builds, for minutes: a test run saw a
/// client's descriptor fetches all "time out" 50 ms apart for 3.5 minutes.
/// On the public network, latencies make the learned timeout meaningful;
/// here it only made tests fail at random.
pub(crate) fn consensus_params() -> [String; 2] {
    [
        "cbtdisabled=1".to_owned(),
        format!("hsdir_interval={HSDIR_INTERVAL_MINS}"),
    ]
}

/// What a node is.
pub(crate) enum Role<'a> {
    /// A directory authority with this DirPort.
    Authority { or_port: u16, dir_port: u16 },
    /// A relay (guard, HSDir, not an exit).
    Relay { or_port: u16 },
    /// A client with a SOCKS port, optionally hosting one onion service.
    Client {
        socks_port: u16,
        onion_service: Option<ClientService<'a>>,
    },
}

/// The onion service a client node hosts.
pub(crate) struct ClientService<'a> {
    pub(crate) dir: &'a Path,
    /// Where tor logs the `rend` domain at info level, which says when a
    /// descriptor was uploaded (nothing at notice level does).
    pub(crate) log: PathBuf,
    pub(crate) virtual_port: u16,
    pub(crate) target_port: u16,
}

/// The torrc of one node. `network` supplies the authorities; `owner` is
/// the pid that tor watches and exits after.
pub(crate) fn torrc(
    nickname: &str,
    role: &Role<'_>,
    layout: &NodeLayout,
    network: &NetworkFile,
    owner: u32,
) -> String {
    let mut t = Torrc::default();
    t.set("TestingTorNetwork", 1);
    t.set("DataDirectory", layout.data().display());
    t.set("Nickname", nickname);
    t.set("RunAsDaemon", 0);
    t.set("__OwningControllerProcess", owner);
    t.set("PidFile", layout.pid_file().display());
    t.set(
        "Log",
        format_args!("notice file {}", layout.log().display()),
    );
    // Only in these test logs: addresses in the clear help debugging.
    t.set("SafeLogging", 0);
    t.set("ShutdownWaitLength", 0);
    t.set("PathsNeededToBuildCircuits", 0.67);
    t.set("TestingDirAuthVoteGuard", "*");
    t.set("TestingDirAuthVoteHSDir", "*");
    t.set("V3AuthNIntervalsValid", 2);
    t.set("TestingMinExitFlagThreshold", 0);
    // No DNS, ever.
    t.set("ServerDNSDetectHijacking", 0);
    t.set("ServerDNSTestAddresses", "");
    t.set("ServerDNSResolvConfFile", "/dev/null");
    t.set("ContactInfo", "allium-testnet (local test network)");
    for authority in network.dir_authority_lines() {
        t.raw(&authority);
    }
    match role {
        Role::Authority { or_port, dir_port } => {
            t.relay(*or_port);
            t.set("DirPort", format_args!("127.0.0.1:{dir_port}"));
            t.set("AuthoritativeDirectory", 1);
            t.set("V3AuthoritativeDirectory", 1);
            t.set("TestingV3AuthInitialVotingInterval", 20);
            t.set("TestingV3AuthInitialVoteDelay", 4);
            t.set("TestingV3AuthInitialDistDelay", 4);
            t.set("V3AuthVotingInterval", VOTING_INTERVAL_SECS);
            t.set("V3AuthVoteDelay", 4);
            t.set("V3AuthDistDelay", 4);
            // Every running relay Stable. By default an authority votes Stable
            // only for relays whose uptime is above the median, so a fresh
            // network has 3 to 5 Stable relays of 8, changing from one
            // consensus to the next; onion-service circuits (vanguards,
            // introduction and rendezvous points) use only Stable relays, and
            // with 3 of them a service could not build its circuits at all.
            t.set("AuthDirVoteStableGuaranteeMinUptime", 0);
            t.set("AuthDirVoteStableGuaranteeMTBF", 0);
            t.set("ConsensusParams", consensus_params().join(" "));
        }
        Role::Relay { or_port } => t.relay(*or_port),
        Role::Client {
            socks_port,
            onion_service,
        } => {
            t.set("SocksPort", format_args!("127.0.0.1:{socks_port}"));
            if let Some(service) = onion_service {
                t.set("HiddenServiceDir", service.dir.display());
                t.set(
                    "Log",
                    format_args!("[rend]info file {}", service.log.display()),
                );
                t.set(
                    "HiddenServicePort",
                    format_args!("{} 127.0.0.1:{}", service.virtual_port, service.target_port),
                );
            }
        }
    }
    t.text
}

/// A torrc being written, one `Key value` line at a time.
#[derive(Default)]
struct Torrc {
    text: String,
}

impl Torrc {
    fn set(&mut self, key: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.text, "{key} {value}");
    }

    fn raw(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// What authorities and relays share: an ORPort on 127.0.0.1, reachable
    /// without testing, no exit, no SOCKS.
    fn relay(&mut self, or_port: u16) {
        self.set("SocksPort", 0);
        self.set("Address", "127.0.0.1");
        self.set("ORPort", format_args!("127.0.0.1:{or_port}"));
        self.set("AssumeReachable", 1);
        self.set("ExitRelay", 0);
        self.set("ExitPolicy", "reject *:*");
    }
}

/// Whether a path can be written into a torrc as it is: tor's `Log` option
/// splits its value on spaces, and we do not quote.
pub(crate) fn path_is_plain(path: &Path) -> bool {
    path.to_str().is_some_and(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '\\')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network_file::AuthorityEntry;

    fn network() -> NetworkFile {
        NetworkFile {
            authorities: vec![AuthorityEntry {
                name: "auth0".into(),
                v3ident: "V3".into(),
                rsa_identity: "FP".into(),
                orport: "127.0.0.1:5000".into(),
                dirport: "127.0.0.1:5001".into(),
            }],
            fallbacks: vec![],
        }
    }

    fn layout() -> NodeLayout {
        NodeLayout::new("/n".into())
    }

    #[test]
    fn authority_votes_every_75_seconds_with_30_minute_hsdir_periods() {
        let role = Role::Authority {
            or_port: 5000,
            dir_port: 5001,
        };
        let t = torrc("auth0", &role, &layout(), &network(), 42);
        for expected in [
            "V3AuthVotingInterval 75\n",
            "TestingV3AuthInitialVotingInterval 20\n",
            "ConsensusParams cbtdisabled=1 hsdir_interval=30\n",
            "AuthDirVoteStableGuaranteeMinUptime 0\n",
            "AuthDirVoteStableGuaranteeMTBF 0\n",
            "DirPort 127.0.0.1:5001\n",
            "ORPort 127.0.0.1:5000\n",
            "__OwningControllerProcess 42\n",
            "RunAsDaemon 0\n",
            "ServerDNSResolvConfFile /dev/null\n",
            "ServerDNSTestAddresses \n",
            "Log notice file /n/notice.log\n",
            "DirAuthority auth0 orport=5000 no-v2 v3ident=V3 127.0.0.1:5001 FP\n",
        ] {
            assert!(t.contains(expected), "missing {expected:?} in\n{t}");
        }
    }

    #[test]
    fn client_has_socks_and_service_but_no_orport() {
        let role = Role::Client {
            socks_port: 9000,
            onion_service: Some(ClientService {
                dir: Path::new("/n/hs"),
                log: "/n/service.log".into(),
                virtual_port: 80,
                target_port: 8080,
            }),
        };
        let t = torrc("client0", &role, &layout(), &network(), 42);
        assert!(t.contains("SocksPort 127.0.0.1:9000\n"));
        assert!(t.contains("HiddenServiceDir /n/hs\n"));
        assert!(t.contains("Log [rend]info file /n/service.log\n"));
        assert!(t.contains("HiddenServicePort 80 127.0.0.1:8080\n"));
        assert!(!t.contains("ORPort"));
        assert!(!t.contains("AuthoritativeDirectory"));
    }

    #[test]
    fn paths_with_spaces_are_refused() {
        assert!(path_is_plain(Path::new("/tmp/allium-testnet.x1/net")));
        assert!(!path_is_plain(Path::new("/tmp/my net")));
        assert!(!path_is_plain(Path::new("/tmp/a\"b")));
    }
}
