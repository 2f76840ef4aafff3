//! One module per family of client requests.

pub mod auth;
pub mod read;
pub mod reconfig;
pub mod watch;
pub mod write;
