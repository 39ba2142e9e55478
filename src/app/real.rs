//! The real backend: profiles in encrypted vaults under the data directory,
//! amnesic sessions in a private RAM-backed directory, and Arti.
//!
//! Everything slow (Argon2 when unlocking, Tor's bootstrap) runs off the
//! caller's thread. Arti's state and cache live beside the profile's vault
//! (or inside the amnesic directory); the onion keys reach Arti only
//! through its in-memory keystore (see `allium-onion`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use allium_onion::{CustomNetwork, Network, TorConfig, TorTransport};
use allium_vault::{AmnesicSession, Profile, ProfileName, UnlockedProfile, VaultError};
use futures::StreamExt;
use tokio::sync::watch;

use super::memory::{amnesic_profile, fresh_keys};
use super::{
    AppError, Backend, BoxFuture, NetworkInUse, Passphrase, ProfileControl, Running, TorState,
};
use crate::engine::{Engine, EngineConfig, NoStore, ProfileSaver, SaveError};

/// How long a dial may take on Tor (descriptor fetch, introduction,
/// rendezvous: tens of seconds on a slow network).
const DIAL_TIMEOUT: Duration = Duration::from_secs(90);

/// Options from the command line.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Where profiles live (`--data-dir`); `None` = the platform's data
    /// directory.
    pub data_dir: Option<PathBuf>,
    /// A custom Tor network file (`--network`); `None` = the profile's
    /// setting, else the public Tor network.
    pub network: Option<PathBuf>,
}

/// Profiles in vaults, on Tor.
pub struct RealBackend {
    store: allium_vault::ProfileStore,
    options: Options,
    config: EngineConfig,
}

impl RealBackend {
    /// A backend over `options.data_dir` (or the platform's data
    /// directory).
    pub fn new(options: Options) -> Result<Self, AppError> {
        let store = match &options.data_dir {
            Some(d) => allium_vault::ProfileStore::new(d),
            None => allium_vault::ProfileStore::open_default().map_err(storage)?,
        };
        Ok(RealBackend {
            store,
            options,
            config: EngineConfig::default(),
        })
    }

    fn network(&self, profile: &Profile) -> Result<(Network, NetworkInUse), AppError> {
        let forced = self.options.network.clone();
        let from_command_line = forced.is_some();
        let file = forced.or_else(|| profile.settings.custom_network.as_ref().map(PathBuf::from));
        match file {
            None => Ok((Network::PublicTor, NetworkInUse::public())),
            Some(path) => {
                let network = CustomNetwork::load(&path)
                    .map(Network::Custom)
                    .map_err(|e| AppError::Tor(e.to_string()))?;
                let how = if from_command_line {
                    "given with --network"
                } else {
                    "chosen in Settings"
                };
                let description = format!("the custom Tor network in {} ({how})", path.display());
                Ok((
                    network,
                    NetworkInUse {
                        description,
                        from_command_line,
                    },
                ))
            }
        }
    }
}

fn storage(e: VaultError) -> AppError {
    match e {
        VaultError::WrongPassphrase => AppError::WrongPassphrase,
        VaultError::InvalidProfileName => AppError::InvalidName(e.to_string()),
        other => AppError::Storage(other.to_string()),
    }
}

/// Runs slow work (Argon2, fsync) on a blocking thread.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Storage(e.to_string()))?
}

fn name(n: &str) -> Result<ProfileName, AppError> {
    ProfileName::new(n).map_err(|e| AppError::InvalidName(e.to_string()))
}

/// The engine's saves go to the vault; the last saved profile is kept for
/// a passphrase change (which rewrites the file under the new key).
struct VaultStore {
    inner: Arc<Mutex<VaultInner>>,
}

struct VaultInner {
    unlocked: UnlockedProfile,
    last: Profile,
}

impl ProfileSaver for VaultStore {
    fn save(&mut self, profile: &Profile) -> Result<(), SaveError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| SaveError::Other("the vault's lock is poisoned".into()))?;
        inner.unlocked.vault_mut().save(profile)?;
        inner.last = profile.clone();
        Ok(())
    }
}

struct Control {
    vault: Option<Arc<Mutex<VaultInner>>>,
    tor: TorTransport,
    state: watch::Sender<TorState>,
    /// Kept for the session's life; its directory goes when this does.
    _amnesic: Option<AmnesicSession>,
}

impl ProfileControl for Control {
    fn change_passphrase(
        &self,
        old: Passphrase,
        new: Passphrase,
    ) -> BoxFuture<Result<(), AppError>> {
        let vault = self.vault.clone();
        Box::pin(async move {
            let Some(vault) = vault else {
                return Err(AppError::Storage(
                    "an amnesic session has no passphrase: nothing of it is saved".into(),
                ));
            };
            off_thread(move || {
                let mut inner = vault
                    .lock()
                    .map_err(|_| AppError::Storage("the vault lock is poisoned".into()))?;
                let last = inner.last.clone();
                inner
                    .unlocked
                    .vault_mut()
                    .change_passphrase(&old, &new, &last)
                    .map_err(storage)
            })
            .await
        })
    }

    fn retry_tor(&self) {
        bootstrap(self.tor.clone(), self.state.clone());
    }
}

/// Connects Tor in the background, reporting progress in `state`.
fn bootstrap(tor: TorTransport, state: watch::Sender<TorState>) {
    let _ = state.send(TorState::Connecting {
        fraction: 0.0,
        phase: "starting".into(),
    });
    let progress_state = state.clone();
    let mut progress = tor.bootstrap_progress();
    let watcher = tokio::spawn(async move {
        while let Some(p) = progress.next().await {
            let next = if p.ready {
                TorState::Ready
            } else if let Some(stuck) = p.stuck {
                TorState::Stuck {
                    fraction: p.fraction,
                    advice: stuck.advice().to_owned(),
                }
            } else {
                TorState::Connecting {
                    fraction: p.fraction,
                    phase: p.phase,
                }
            };
            let _ = progress_state.send(next);
        }
    });
    tokio::spawn(async move {
        match tor.bootstrap().await {
            Ok(()) => {
                let _ = state.send(TorState::Ready);
            }
            Err(e) => {
                watcher.abort();
                let _ = state.send(TorState::Failed {
                    message: e.to_string(),
                });
            }
        }
    });
}

impl RealBackend {
    fn start(
        &self,
        profile: Profile,
        store: Box<dyn ProfileSaver>,
        dirs: (PathBuf, PathBuf),
        vault: Option<Arc<Mutex<VaultInner>>>,
        amnesic: Option<AmnesicSession>,
        name: Option<String>,
    ) -> Result<Running, AppError> {
        let (network, in_use) = self.network(&profile)?;
        let tor = TorTransport::create(&TorConfig {
            network,
            state_dir: dirs.0,
            cache_dir: dirs.1,
            dial_timeout: DIAL_TIMEOUT,
        })
        .map_err(|e| AppError::Tor(e.to_string()))?;
        let (state, rx) = watch::channel(TorState::Connecting {
            fraction: 0.0,
            phase: "starting".into(),
        });
        bootstrap(tor.clone(), state.clone());
        let engine = Engine::start(tor.clone(), profile, store, self.config.clone(), None);
        Ok(Running {
            engine,
            tor: rx,
            name,
            control: Box::new(Control {
                vault,
                tor,
                state,
                _amnesic: amnesic,
            }),
            network: in_use,
        })
    }

    fn open(&self, unlocked: UnlockedProfile, profile: Profile) -> Result<Running, AppError> {
        let paths = unlocked.paths().clone();
        let name = unlocked.name().as_str().to_owned();
        let inner = Arc::new(Mutex::new(VaultInner {
            unlocked,
            last: profile.clone(),
        }));
        let store = VaultStore {
            inner: inner.clone(),
        };
        self.start(
            profile,
            Box::new(store),
            (paths.tor_state, paths.tor_cache),
            Some(inner),
            None,
            Some(name),
        )
    }
}

impl Backend for Arc<RealBackend> {
    fn names_hidden(&self) -> bool {
        self.store.names_hidden()
    }

    fn hide_names(&self, hidden: bool) -> Result<(), AppError> {
        self.store.set_names_hidden(hidden).map_err(storage)
    }

    fn delete(&self, profile_name: String) -> BoxFuture<Result<(), AppError>> {
        let store = self.store.clone();
        Box::pin(async move {
            let n = name(&profile_name)?;
            // The profile was just locked: its engine lets go of the lock
            // file a moment after it says it stopped.
            for _ in 0..50 {
                let (s, n) = (store.clone(), n.clone());
                match off_thread(move || Ok(s.delete(&n))).await? {
                    Err(VaultError::ProfileInUse) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(VaultError::ProfileNotFound) => {
                        return Err(AppError::NoSuchProfile(profile_name));
                    }
                    other => return other.map_err(storage),
                }
            }
            Err(AppError::Storage(
                "the profile is still open (in another Allium?); close it and try again".into(),
            ))
        })
    }

    fn profiles(&self) -> Result<Vec<String>, AppError> {
        Ok(self
            .store
            .list()
            .map_err(storage)?
            .into_iter()
            .map(|n| n.as_str().to_owned())
            .collect())
    }

    fn create(
        &self,
        profile_name: String,
        passphrase: Passphrase,
    ) -> BoxFuture<Result<Running, AppError>> {
        let this = self.clone();
        Box::pin(async move {
            let n = name(&profile_name)?;
            let store = this.store.clone();
            let (unlocked, profile) = off_thread(move || {
                let profile = Profile::new(fresh_keys());
                store
                    .create(&n, &passphrase, &profile)
                    .map(|u| (u, profile))
                    .map_err(|e| match e {
                        VaultError::ProfileExists => AppError::ProfileExists(profile_name),
                        e => storage(e),
                    })
            })
            .await?;
            this.open(unlocked, profile)
        })
    }

    fn unlock(
        &self,
        profile_name: String,
        passphrase: Passphrase,
    ) -> BoxFuture<Result<Running, AppError>> {
        let this = self.clone();
        Box::pin(async move {
            let n = name(&profile_name)?;
            let store = this.store.clone();
            let (unlocked, profile) = off_thread(move || {
                store.unlock(&n, &passphrase).map_err(|e| match e {
                    VaultError::ProfileNotFound => AppError::NoSuchProfile(profile_name),
                    e => storage(e),
                })
            })
            .await?;
            this.open(unlocked, profile)
        })
    }

    fn amnesic(&self) -> BoxFuture<Result<Running, AppError>> {
        let this = self.clone();
        Box::pin(async move {
            let session = AmnesicSession::start().map_err(storage)?;
            let dirs = (
                session.tor_state_dir().to_path_buf(),
                session.tor_cache_dir().to_path_buf(),
            );
            this.start(
                amnesic_profile(),
                Box::new(NoStore),
                dirs,
                None,
                Some(session),
                None,
            )
        })
    }
}
