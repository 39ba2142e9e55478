//! Choosing free TCP ports on 127.0.0.1.
//!
//! The kernel picks each port (bind to port 0); all listeners are held until
//! every port is chosen, so the ports are distinct, then released for tor to
//! bind. Another process can still take one in between: callers detect that
//! from tor's log and start again with new ports. Nothing here binds
//! anything but loopback.

use std::net::{Ipv4Addr, TcpListener};

use crate::Error;

/// `count` distinct ports that were free on 127.0.0.1 a moment ago.
pub(crate) fn free_ports(count: usize) -> Result<Vec<u16>, Error> {
    let context = "choosing a free port on 127.0.0.1";
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::io(context))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::io(context))
}

/// One port that was free on 127.0.0.1 a moment ago.
pub(crate) fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(Error::io("choosing a free port on 127.0.0.1"))
}

/// The log line tor writes when another process holds one of its ports.
pub(crate) const PORT_TAKEN_LOG: &str = "Address already in use";

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn ports_are_distinct_and_bindable() -> TestResult {
        let mut ports = free_ports(20)?;
        for &port in &ports {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        }
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 20);
        Ok(())
    }
}
