//! The network file: what a Tor client needs to know to join a local
//! network (authorities and fallback caches), as plain JSON strings.
//!
//! This module only describes and (de)serialises; it never starts or
//! inspects a process.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The environment variable through which `scripts/test.sh` hands the path
/// of a running network's file to `cargo test`.
pub const NETWORK_FILE_ENV: &str = "ALLIUM_TEST_NETWORK";

/// A local Tor network, as a client sees it. The JSON schema is in the
/// crate's README.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFile {
    /// The directory authorities.
    pub authorities: Vec<AuthorityEntry>,
    /// Every relay and authority with an ORPort, usable as a fallback
    /// directory cache.
    pub fallbacks: Vec<FallbackEntry>,
}

/// One directory authority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorityEntry {
    /// Its nickname (`auth0`, …).
    pub name: String,
    /// Its v3 identity: 40 upper-case hex digits, the `fingerprint` line of
    /// its authority certificate. This is what Arti's
    /// `authorities().v3idents()` takes.
    pub v3ident: String,
    /// Its relay RSA identity: 40 upper-case hex digits (needed, with the
    /// ports below, for a C tor `DirAuthority` line).
    pub rsa_identity: String,
    /// Its ORPort, `127.0.0.1:PORT`.
    pub orport: String,
    /// Its DirPort, `127.0.0.1:PORT`.
    pub dirport: String,
}

/// One fallback directory cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackEntry {
    /// Its nickname (`auth0`, `relay0`, …), for humans.
    pub name: String,
    /// Its RSA identity: 40 upper-case hex digits.
    pub rsa_identity: String,
    /// Its ed25519 identity: unpadded base64 (43 characters), as tor writes
    /// it in `fingerprint-ed25519`.
    pub ed_identity: String,
    /// Its ORPorts, each `127.0.0.1:PORT`.
    pub orports: Vec<String>,
}

impl NetworkFile {
    /// Reads a network file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = fs::read_to_string(path).map_err(Error::io(format!(
            "reading network file {}",
            path.display()
        )))?;
        serde_json::from_str(&text).map_err(|source| Error::NetworkFile {
            path: path.to_owned(),
            source,
        })
    }

    /// The network named by the `ALLIUM_TEST_NETWORK` environment variable,
    /// if it is set (as `scripts/test.sh` does around `cargo test`).
    pub fn from_env() -> Option<Result<Self, Error>> {
        let path = PathBuf::from(std::env::var_os(NETWORK_FILE_ENV)?);
        Some(Self::load(&path))
    }

    /// Writes the file atomically (temporary file, fsync, rename), so a
    /// reader never sees half of it.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let json = serde_json::to_string_pretty(self).map_err(|source| Error::NetworkFile {
            path: path.to_owned(),
            source,
        })?;
        let tmp = path.with_extension("json.tmp");
        let context = || format!("writing network file {}", path.display());
        let mut file = fs::File::create(&tmp).map_err(Error::io(context()))?;
        file.write_all(json.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(Error::io(context()))?;
        fs::rename(&tmp, path).map_err(Error::io(context()))
    }

    /// The `DirAuthority` torrc lines for this network (C tor's way of
    /// naming the authorities).
    pub fn dir_authority_lines(&self) -> Vec<String> {
        self.authorities
            .iter()
            .map(|a| {
                format!(
                    "DirAuthority {} orport={} no-v2 v3ident={} {} {}",
                    a.name,
                    port_of(&a.orport),
                    a.v3ident,
                    a.dirport,
                    a.rsa_identity
                )
            })
            .collect()
    }
}

/// The port of an `ADDRESS:PORT` string (everything after the last colon).
fn port_of(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(_, port)| port)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn sample() -> NetworkFile {
        NetworkFile {
            authorities: vec![AuthorityEntry {
                name: "auth0".into(),
                v3ident: "4152B4A00ADDADC790B9DBA64882B5BF14F63EA9".into(),
                rsa_identity: "02525F81D0EE3B04C73A4AAA50FAF9772BCE572B".into(),
                orport: "127.0.0.1:5000".into(),
                dirport: "127.0.0.1:5001".into(),
            }],
            fallbacks: vec![FallbackEntry {
                name: "auth0".into(),
                rsa_identity: "02525F81D0EE3B04C73A4AAA50FAF9772BCE572B".into(),
                ed_identity: "CNIPyD7zXzgZoSWJGXKu/hZ0Hu0XolIjSopi+No07iY".into(),
                orports: vec!["127.0.0.1:5000".into()],
            }],
        }
    }

    #[test]
    fn round_trips_through_a_file() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("network.json");
        sample().save(&path)?;
        assert_eq!(NetworkFile::load(&path)?, sample());
        assert!(!path.with_extension("json.tmp").exists());
        Ok(())
    }

    #[test]
    fn field_names_are_the_documented_ones() -> TestResult {
        let value = serde_json::to_value(sample())?;
        assert_eq!(
            value["authorities"][0]["v3ident"],
            sample().authorities[0].v3ident
        );
        assert_eq!(
            value["fallbacks"][0]["ed_identity"],
            sample().fallbacks[0].ed_identity
        );
        assert_eq!(value["fallbacks"][0]["orports"][0], "127.0.0.1:5000");
        Ok(())
    }

    #[test]
    fn dir_authority_line_is_in_tor_syntax() -> TestResult {
        assert_eq!(
            sample().dir_authority_lines(),
            [
                "DirAuthority auth0 orport=5000 no-v2 v3ident=4152B4A00ADDADC790B9DBA64882B5BF14F63EA9 \
              127.0.0.1:5001 02525F81D0EE3B04C73A4AAA50FAF9772BCE572B"
            ]
        );
        Ok(())
    }
}
