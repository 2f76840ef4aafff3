//! Configuration: command-line flags, environment and ZooKeeper zoo.cfg files.
//!
//! Everything ends up in one validated [`Config`], built by [`Config::load`]. Sources, highest
//! precedence first (details on [`Config::load`]):
//!
//! 1. dedicated flags (`--client-port`...) and their `ROOST_*` variables (a flag beats its variable);
//! 2. `-D key=value` properties (any zoo.cfg key or ZooKeeper Java system property);
//! 3. the zoo.cfg file and `<dataDir>/myid`;
//! 4. the official Docker image's `ZOO_*` variables;
//! 5. defaults: a standalone server on 0.0.0.0:2181, HTTP on 8080, data in `./data`, server id 1,
//!    tickTime 2000 ms (ZooKeeper's sample zoo.cfg and Docker value; its no-config default is 3000).
//!
//! Typical use in `main`:
//! ```no_run
//! use clap::Parser;
//! let cli = roost::config::Cli::parse();
//! // install the tracing subscriber from `cli.log` here, so configuration warnings are visible
//! let config = roost::config::Config::load(cli, &|name| std::env::var(name).ok())?;
//! # Ok::<(), roost::config::ConfigError>(())
//! ```

mod cli;
mod conf;
mod docker_env;
mod dynamic;
mod error;
mod keys;
mod load;
mod security;
mod servers;
mod settings;
mod values;
mod whitelist;
mod zoocfg;

#[cfg(test)]
mod load_tests;

pub use cli::{Cli, Property, PropertyError, Tool};
pub use dynamic::{DynamicConfig, DynamicConfigError};
pub use error::{ConfigError, ConfigWarning, Origin, ServerSpecProblem, ValueProblem};
pub use load::{
    Config, DEFAULT_BIND, DEFAULT_CLIENT_PORT, DEFAULT_DATA_DIR, DEFAULT_GLOBAL_OUTSTANDING_LIMIT,
    DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_HTTP_PORT, DEFAULT_MAX_BUFFER, DEFAULT_MAX_CLIENT_CNXNS, DEFAULT_SNAP_COUNT,
    DEFAULT_TICK_TIME_MS,
};
pub use security::{QuorumSaslConfig, SaslConfig, Secret, SecurityConfig, StoreConfig, TlsConfig};
pub use servers::{HostPort, PeerRole, ServerSpec, MAX_SERVER_ID, MIN_SERVER_ID};
pub use whitelist::FourLetterWhitelist;
