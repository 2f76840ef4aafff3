//! The layered store of raw settings that [`Config::load`](super::Config::load) resolves.
//!
//! Layers are applied from the lowest precedence to the highest; a key set by a later layer replaces
//! the earlier value together with its origin. Values stay text until the end, so only the value that
//! wins is parsed, and a bad value is reported with the place it came from.
//!
//! The `server.N` lines form one setting: the highest layer that has any server lines supplies the
//! whole list (a zoo.cfg ensemble is not merged with `ZOO_SERVERS`).

use std::collections::HashMap;

use super::error::{ConfigError, ConfigWarning, Origin, ValueProblem};
use super::keys::{classify, IndexedKey, Key, KeyClass};
use super::servers::ServerSpec;
use super::values;

/// One `key=value` from any source, before interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

impl RawEntry {
    pub fn new(key: impl Into<String>, value: impl Into<String>, origin: Origin) -> RawEntry {
        RawEntry { key: key.into(), value: value.into(), origin }
    }
}

/// A resolved value with the origin that supplied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

/// The ensemble list and the origin of the layer that supplied it.
#[derive(Debug, Clone, Default)]
pub struct ServerList {
    pub specs: Vec<ServerSpec>,
    /// Origin of each spec, parallel to `specs`.
    pub origins: Vec<Origin>,
}

#[derive(Debug, Default)]
pub struct Settings {
    values: HashMap<Key, RawEntry>,
    /// `authProvider.N`, `superUser.X`: by family and suffix; a later layer replaces the same suffix.
    indexed: std::collections::BTreeMap<(IndexedKey, String), RawEntry>,
    servers: ServerList,
    pub warnings: Vec<ConfigWarning>,
}

impl Settings {
    /// Applies one layer on top of the current state.
    pub fn apply_layer(&mut self, entries: Vec<RawEntry>) -> Result<(), ConfigError> {
        let mut layer_servers = ServerList::default();
        for entry in entries {
            match classify(&entry.key) {
                KeyClass::Known(key) => {
                    self.values.insert(key, entry);
                }
                KeyClass::Indexed(family, suffix) => {
                    self.indexed.insert((family, suffix), entry);
                }
                KeyClass::Server(id) => add_server(&mut layer_servers, &id, entry)?,
                KeyClass::Unsupported => self.warn(ConfigWarning::Unsupported { key: entry.key, origin: entry.origin }),
                KeyClass::JvmOnly => {
                    tracing::debug!("{}: JVM-only property {:?} ignored", entry.origin, entry.key)
                }
                KeyClass::Unknown => self.warn(ConfigWarning::UnknownKey { key: entry.key, origin: entry.origin }),
            }
        }
        if !layer_servers.specs.is_empty() {
            self.servers = layer_servers;
        }
        Ok(())
    }

    fn warn(&mut self, warning: ConfigWarning) {
        warning.emit();
        self.warnings.push(warning);
    }

    /// The ensemble list (empty when no layer had server lines).
    pub fn servers(&self) -> &ServerList {
        &self.servers
    }

    /// The values of one family of indexed keys, ordered by suffix.
    pub fn indexed(&self, family: IndexedKey) -> impl Iterator<Item = &RawEntry> {
        self.indexed.iter().filter(move |((f, _), _)| *f == family).map(|(_, entry)| entry)
    }

    /// Parses the value of `key` if any layer set it.
    pub fn get<T>(
        &self,
        key: Key,
        parse: impl Fn(&str) -> Result<T, ValueProblem>,
    ) -> Result<Option<Sourced<T>>, ConfigError> {
        let Some(entry) = self.values.get(&key) else {
            return Ok(None);
        };
        match parse(&entry.value) {
            Ok(value) => Ok(Some(Sourced { value, origin: entry.origin.clone() })),
            Err(problem) => Err(ConfigError::BadValue {
                origin: entry.origin.clone(),
                key: entry.key.clone(),
                value: entry.value.clone(),
                problem,
            }),
        }
    }

    /// Like [`get`](Self::get), falling back to `default` with [`Origin::Default`].
    pub fn get_or<T>(
        &self,
        key: Key,
        default: T,
        parse: impl Fn(&str) -> Result<T, ValueProblem>,
    ) -> Result<Sourced<T>, ConfigError> {
        Ok(self.get(key, parse)?.unwrap_or(Sourced { value: default, origin: Origin::Default }))
    }
}

/// Parses a `server.N` entry into the layer's list; a repeated id within one layer is an error.
fn add_server(list: &mut ServerList, id_text: &str, entry: RawEntry) -> Result<(), ConfigError> {
    let bad = |value: &str, problem| ConfigError::BadValue {
        origin: entry.origin.clone(),
        key: entry.key.clone(),
        value: value.to_string(),
        problem,
    };
    // A bad id is reported with the id as the value: `server.0: "0" is not a valid server id`.
    let id = values::server_id(id_text).map_err(|p| bad(id_text, p))?;
    let spec = ServerSpec::parse(id, &entry.value).map_err(|p| bad(&entry.value, ValueProblem::BadServerSpec(p)))?;
    if let Some(index) = list.specs.iter().position(|s| s.id == id) {
        return Err(ConfigError::DuplicateServer {
            id,
            origin: entry.origin.clone(),
            first: list.origins[index].clone(),
        });
    }
    list.specs.push(spec);
    list.origins.push(entry.origin);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(line: usize) -> Origin {
        Origin::File { path: PathBuf::from("zoo.cfg"), line }
    }

    #[test]
    fn later_layers_replace_values_and_origins() {
        let mut s = Settings::default();
        s.apply_layer(vec![RawEntry::new("tickTime", "3000", Origin::DockerEnv("ZOO_TICK_TIME"))]).unwrap();
        s.apply_layer(vec![RawEntry::new("tickTime", "2500", file(1))]).unwrap();
        let tick = s.get(Key::TickTime, values::u32_positive).unwrap().unwrap();
        assert_eq!(tick, Sourced { value: 2500, origin: file(1) });
    }

    #[test]
    fn server_lists_are_replaced_as_a_whole() {
        let mut s = Settings::default();
        let docker = Origin::DockerEnv("ZOO_SERVERS");
        s.apply_layer(vec![
            RawEntry::new("server.1", "a:1:2", docker.clone()),
            RawEntry::new("server.2", "b:1:2", docker),
        ])
        .unwrap();
        s.apply_layer(vec![RawEntry::new("server.3", "c:1:2", file(4))]).unwrap();
        let ids: Vec<u64> = s.servers().specs.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![3]);
    }

    #[test]
    fn duplicate_server_in_one_layer_names_both_lines() {
        let mut s = Settings::default();
        let err = s
            .apply_layer(vec![RawEntry::new("server.1", "a:1:2", file(3)), RawEntry::new("server.1", "b:1:2", file(9))])
            .unwrap_err();
        assert_eq!(err.to_string(), "zoo.cfg:9: server.1 is defined twice (first at zoo.cfg:3)");
    }

    #[test]
    fn bad_server_id_names_the_line() {
        let mut s = Settings::default();
        let err = s.apply_layer(vec![RawEntry::new("server.x", "a:1:2", file(2))]).unwrap_err();
        assert!(err.to_string().starts_with("zoo.cfg:2: server.x: \"x\" is not a valid server id"), "{err}");
        let err = s.apply_layer(vec![RawEntry::new("server.300", "a:1:2", file(5))]).unwrap_err();
        assert!(err.to_string().starts_with("zoo.cfg:5: server.300: \"300\""), "{err}");
    }

    #[test]
    fn unknown_and_unsupported_keys_become_warnings() {
        let mut s = Settings::default();
        s.apply_layer(vec![
            RawEntry::new("bogus", "1", file(1)),
            RawEntry::new("quorum.auth.kerberos.servicePrincipal", "true", file(2)),
            RawEntry::new("java.awt.headless", "true", Origin::Property),
        ])
        .unwrap();
        assert_eq!(
            s.warnings,
            vec![
                ConfigWarning::UnknownKey { key: "bogus".into(), origin: file(1) },
                ConfigWarning::Unsupported { key: "quorum.auth.kerberos.servicePrincipal".into(), origin: file(2) },
            ]
        );
        assert_eq!(s.warnings[0].to_string(), "zoo.cfg:1: unknown configuration key \"bogus\" ignored");
    }
}
