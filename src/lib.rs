//! Roost: a ZooKeeper-compatible coordination service with a built-in navigator.
//!
//! Data flows one way through the layers below:
//! client request (`server`, decoded by `proto`) -> `tree::txn::Txn` -> replicated log
//! (`consensus`, persisted by `storage`) -> `tree` apply -> `watch` fan-out -> replies.

pub mod backup;
pub mod config;
pub mod consensus;
pub mod db;
pub mod http;
pub mod migrate;
pub mod node;
pub mod proto;
pub mod reconfig;
pub mod security;
pub mod server;
pub mod session;
pub mod state;
pub mod storage;
pub mod subcommand;
pub mod tree;
pub mod watch;
