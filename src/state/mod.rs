//! The replicated state and what listens to it, where `db::Db` is heading: the replica
//! applies each committed batch and hands its changes to event sinks; [`feed::ChangeFeed`]
//! is the HTTP port's sink.

pub mod feed;
