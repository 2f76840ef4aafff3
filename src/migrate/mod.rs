//! Moving data between Apache ZooKeeper and Roost: [`zk`] reads and writes ZooKeeper's
//! on-disk files; [`import`] turns a ZooKeeper data directory into a Roost one and [`export`]
//! a stopped Roost node's state into a ZooKeeper snapshot; [`roost_dir`] is Roost's own data
//! directory seen from outside a running server. The `roost import-zookeeper` and
//! `roost export-zookeeper` commands (`crate::subcommand`) drive them.

pub mod export;
pub mod import;
pub mod roost_dir;
pub mod zk;

#[cfg(test)]
mod tests;
