//! Which Tor network to use: the public one (the product's default), or a
//! custom one described by a file (a local test network, or an expert's
//! private network).
//!
//! Only a custom network gets the relaxed path rules a network of relays on
//! a single IP address needs; the public network always uses Arti's defaults.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The network a profile connects to.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Network {
    /// The public Tor network with Arti's built-in authorities and fallbacks.
    #[default]
    PublicTor,
    /// A network described by a [`CustomNetwork`] file.
    Custom(CustomNetwork),
}

/// A custom Tor network: its directory authorities and fallback caches.
///
/// Stored as JSON, for example as written by the `allium-testnet` tool:
/// `{"authorities":[{"name":"auth0","v3ident":"<40 hex>"}],
///   "fallbacks":[{"rsa_identity":"<40 hex>","ed_identity":"<base64>","orports":["127.0.0.1:5000"]}]}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomNetwork {
    /// Directory authorities (their v3 signing identities).
    pub authorities: Vec<Authority>,
    /// Relays from which to fetch the first consensus.
    pub fallbacks: Vec<Fallback>,
}

/// A directory authority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authority {
    /// A name, for error messages.
    pub name: String,
    /// Hex RSA identity of the authority's v3 signing key (the `fingerprint`
    /// line of its certificate).
    pub v3ident: String,
}

/// A fallback directory cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    /// Hex RSA identity (40 characters).
    pub rsa_identity: String,
    /// Base64 Ed25519 identity.
    pub ed_identity: String,
    /// `IP:PORT` of its ORPorts.
    pub orports: Vec<String>,
}

/// Why a custom network file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkFileError {
    /// The file could not be read.
    #[error("cannot read the network file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("the network file {path} is not a valid network description: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A field holds a value that cannot be used.
    #[error("the network file is invalid: {0}")]
    Invalid(String),
}

impl CustomNetwork {
    /// Reads and checks a network file.
    pub fn load(path: &Path) -> Result<Self, NetworkFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| NetworkFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let net: CustomNetwork =
            serde_json::from_str(&text).map_err(|source| NetworkFileError::Parse {
                path: path.display().to_string(),
                source,
            })?;
        net.check()?;
        Ok(net)
    }

    /// Checks every identity and address without building anything.
    pub fn check(&self) -> Result<(), NetworkFileError> {
        if self.authorities.is_empty() {
            return Err(NetworkFileError::Invalid("no authorities".into()));
        }
        if self.fallbacks.is_empty() {
            return Err(NetworkFileError::Invalid("no fallback caches".into()));
        }
        for a in &self.authorities {
            rsa_identity(&a.v3ident)?;
        }
        for f in &self.fallbacks {
            rsa_identity(&f.rsa_identity)?;
            ed_identity(&f.ed_identity)?;
            if f.orports.is_empty() {
                return Err(NetworkFileError::Invalid(format!(
                    "fallback {} has no ORPort",
                    f.rsa_identity
                )));
            }
            for p in &f.orports {
                socket_addr(p)?;
            }
        }
        Ok(())
    }
}

pub(crate) fn rsa_identity(
    hex: &str,
) -> Result<tor_llcrypto::pk::rsa::RsaIdentity, NetworkFileError> {
    tor_llcrypto::pk::rsa::RsaIdentity::from_hex(hex)
        .ok_or_else(|| NetworkFileError::Invalid(format!("not an RSA identity: {hex:?}")))
}

pub(crate) fn ed_identity(
    b64: &str,
) -> Result<tor_llcrypto::pk::ed25519::Ed25519Identity, NetworkFileError> {
    tor_llcrypto::pk::ed25519::Ed25519Identity::from_base64(b64)
        .ok_or_else(|| NetworkFileError::Invalid(format!("not an Ed25519 identity: {b64:?}")))
}

pub(crate) fn socket_addr(s: &str) -> Result<std::net::SocketAddr, NetworkFileError> {
    s.parse()
        .map_err(|_| NetworkFileError::Invalid(format!("not an IP:PORT address: {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CustomNetwork {
        CustomNetwork {
            authorities: vec![Authority {
                name: "auth0".into(),
                v3ident: "AB".repeat(20),
            }],
            fallbacks: vec![Fallback {
                rsa_identity: "CD".repeat(20),
                ed_identity: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
                orports: vec!["127.0.0.1:5000".into()],
            }],
        }
    }

    #[test]
    fn checks_every_field() {
        assert!(sample().check().is_ok());
        let mut n = sample();
        n.authorities[0].v3ident = "xyz".into();
        assert!(matches!(n.check(), Err(NetworkFileError::Invalid(m)) if m.contains("RSA")));
        let mut n = sample();
        n.fallbacks[0].orports = vec!["localhost".into()];
        assert!(matches!(n.check(), Err(NetworkFileError::Invalid(m)) if m.contains("IP:PORT")));
        let mut n = sample();
        n.fallbacks.clear();
        assert!(n.check().is_err());
    }

    #[test]
    fn load_reports_the_path() {
        let err = CustomNetwork::load(Path::new("/nonexistent/network.json")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/network.json"));
    }
}
