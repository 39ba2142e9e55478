//! Profiles in memory on an in-process network: the window's and the
//! JSON-RPC interface's tests run the real engine through this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use allium_onion::MemoryNetwork;
use allium_vault::{Profile, ProfileKeys, Secret32};
use rand_core::{OsRng, RngCore};
use tokio::sync::watch;

use super::{
    AppError, Backend, BoxFuture, NetworkInUse, Passphrase, ProfileControl, Running, TorState,
};
use crate::engine::{Engine, EngineConfig, MemoryStore, NoStore, ProfileSaver};

/// Profiles kept in memory, all on one [`MemoryNetwork`].
#[derive(Clone)]
pub struct MemoryBackend {
    net: MemoryNetwork,
    config: EngineConfig,
    profiles: Arc<Mutex<HashMap<String, (String, MemoryStore)>>>,
    names_hidden: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryBackend {
    /// Profiles on `net`, with engines using `config`.
    pub fn new(net: MemoryNetwork, config: EngineConfig) -> Self {
        MemoryBackend {
            net,
            config,
            profiles: Arc::default(),
            names_hidden: Arc::default(),
        }
    }

    /// The network the profiles are on (to add other peers in tests).
    pub fn network(&self) -> &MemoryNetwork {
        &self.net
    }

    fn run(&self, name: Option<String>, profile: Profile, store: Box<dyn ProfileSaver>) -> Running {
        let engine = Engine::start(self.net.node(), profile, store, self.config.clone(), None);
        let (_tx, tor) = watch::channel(TorState::Ready);
        Running {
            engine,
            tor,
            name: name.clone(),
            control: Box::new(MemoryControl {
                name,
                profiles: self.profiles.clone(),
            }),
            network: NetworkInUse {
                description: "an in-memory test network".into(),
                from_command_line: false,
            },
        }
    }
}

/// Fresh random keys for a new profile.
/// A new amnesic session's profile. Its intake is off: a source writing
/// to a journalist needs no public address, and one that is published
/// tells anyone holding it when the session is running.
pub(crate) fn amnesic_profile() -> Profile {
    let mut p = Profile::new(fresh_keys());
    p.settings.intake_enabled = false;
    p
}

pub(crate) fn fresh_keys() -> ProfileKeys {
    let k = || {
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut b);
        let s = Secret32(b);
        b.fill(0);
        s
    };
    ProfileKeys {
        intake_seed: k(),
        endpoint_seed: k(),
        static_secret: k(),
    }
}

impl Backend for MemoryBackend {
    fn names_hidden(&self) -> bool {
        self.names_hidden.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn hide_names(&self, hidden: bool) -> Result<(), AppError> {
        self.names_hidden
            .store(hidden, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn delete(&self, name: String) -> BoxFuture<Result<(), AppError>> {
        let profiles = self.profiles.clone();
        Box::pin(async move {
            profiles
                .lock()
                .map_err(|_| AppError::Storage("lock poisoned".into()))?
                .remove(&name)
                .map(drop)
                .ok_or(AppError::NoSuchProfile(name))
        })
    }

    fn profiles(&self) -> Result<Vec<String>, AppError> {
        let p = self
            .profiles
            .lock()
            .map_err(|_| AppError::Storage("lock poisoned".into()))?;
        let mut names: Vec<String> = p.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    fn create(&self, name: String, passphrase: Passphrase) -> BoxFuture<Result<Running, AppError>> {
        let this = self.clone();
        Box::pin(async move {
            let profile = Profile::new(fresh_keys());
            let store = MemoryStore::with(profile.clone());
            {
                let mut p = this
                    .profiles
                    .lock()
                    .map_err(|_| AppError::Storage("lock poisoned".into()))?;
                if p.contains_key(&name) {
                    return Err(AppError::ProfileExists(name));
                }
                p.insert(name.clone(), (passphrase.to_string(), store.clone()));
            }
            Ok(this.run(Some(name), profile, Box::new(store)))
        })
    }

    fn unlock(&self, name: String, passphrase: Passphrase) -> BoxFuture<Result<Running, AppError>> {
        let this = self.clone();
        Box::pin(async move {
            let (stored, store) = this
                .profiles
                .lock()
                .map_err(|_| AppError::Storage("lock poisoned".into()))?
                .get(&name)
                .cloned()
                .ok_or_else(|| AppError::NoSuchProfile(name.clone()))?;
            if stored != *passphrase {
                return Err(AppError::WrongPassphrase);
            }
            let profile = store
                .saved()
                .ok_or_else(|| AppError::Storage("nothing saved".into()))?;
            Ok(this.run(Some(name), profile, Box::new(store)))
        })
    }

    fn amnesic(&self) -> BoxFuture<Result<Running, AppError>> {
        let this = self.clone();
        Box::pin(async move { Ok(this.run(None, amnesic_profile(), Box::new(NoStore))) })
    }
}

struct MemoryControl {
    name: Option<String>,
    profiles: Arc<Mutex<HashMap<String, (String, MemoryStore)>>>,
}

impl ProfileControl for MemoryControl {
    fn change_passphrase(
        &self,
        old: Passphrase,
        new: Passphrase,
    ) -> BoxFuture<Result<(), AppError>> {
        let name = self.name.clone();
        let profiles = self.profiles.clone();
        Box::pin(async move {
            let Some(name) = name else {
                return Err(AppError::Storage(
                    "an amnesic session has no passphrase".into(),
                ));
            };
            let mut p = profiles
                .lock()
                .map_err(|_| AppError::Storage("lock poisoned".into()))?;
            let entry = p
                .get_mut(&name)
                .ok_or_else(|| AppError::NoSuchProfile(name.clone()))?;
            if entry.0 != *old {
                return Err(AppError::WrongPassphrase);
            }
            entry.0 = new.to_string();
            Ok(())
        })
    }

    fn retry_tor(&self) {}
}
