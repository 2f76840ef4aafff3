//! Rebuilding the server config when its key or trust store file changes on disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rustls::ServerConfig;

use crate::{server_config, TlsError, TlsSettings};

/// What we compare to notice a changed file: cheap to get (one stat), and a replaced file
/// (rename over) changes the inode even when size and mtime happen to match.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp { modified: m.modified().ok(), len: m.len(), inode })
}

struct State {
    config: Arc<ServerConfig>,
    stamps: Vec<Option<Stamp>>,
}

/// Watches the files of a [`TlsSettings`] and rebuilds the server config when one changes.
pub struct ReloadingServerConfig {
    settings: TlsSettings,
    state: Mutex<State>,
}

impl std::fmt::Debug for ReloadingServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingServerConfig").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl ReloadingServerConfig {
    pub fn new(settings: TlsSettings) -> Result<Self, TlsError> {
        // Stamp before reading so a change racing with the first load is picked up next time.
        let stamps = stamps(&settings);
        let config = server_config(&settings)?;
        Ok(ReloadingServerConfig { settings, state: Mutex::new(State { config, stamps }) })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves a consistent State; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.lock().config.clone()
    }

    /// Cheap when nothing changed (a stat per file); on a change, re-reads and rebuilds. On an
    /// error the old config stays and the error is returned — and the change is retried on the
    /// next call, so a file caught half-written is picked up once complete. Ok(true) when a new
    /// config was installed.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamps(&self.settings);
        if now == self.lock().stamps {
            return Ok(false);
        }
        let config = server_config(&self.settings)?;
        let mut st = self.lock();
        st.config = config;
        st.stamps = now;
        Ok(true)
    }
}

fn stamps(settings: &TlsSettings) -> Vec<Option<Stamp>> {
    let mut paths: Vec<&PathBuf> = vec![&settings.key_store.location];
    if let Some(t) = &settings.trust_store {
        paths.push(&t.location);
    }
    paths.into_iter().map(|p| stamp(p)).collect()
}
