//! Every member applies a reconfigured ensemble to itself, as a ZooKeeper server does
//! when it activates a new configuration (`QuorumPeer.processReconfig`): it dials its peers
//! at the configuration's quorum addresses, and listens on its own quorum and client
//! addresses from it. Connections accepted on a port it leaves stay open (ZooKeeper keeps
//! existing client connections too); new ones must use the new port.
//!
//! The initial configuration changes nothing here: until the first reconfig a member keeps
//! the addresses of its own zoo.cfg (see `consensus::network::Peers`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use crate::config::DynamicConfig;
use crate::consensus::Consensus;
use crate::db::Db;

/// Moves the client listener to the given `host:port`.
pub type ClientRebind = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> + Send + Sync>;

/// How often the installed configuration is looked at (a cheap comparison of its bytes).
const FOLLOW_EVERY: Duration = Duration::from_millis(100);

/// Runs until the consensus layer is gone.
pub async fn follow_forever(db: Arc<Db>, consensus: Weak<Consensus>, my_id: u64, rebind_client: ClientRebind) {
    let mut seen = Bytes::new();
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let Some(consensus) = consensus.upgrade() else { return };
        let data = db.read(|t| t.config_data());
        if data == seen {
            continue;
        }
        seen = data.clone();
        match DynamicConfig::parse(&String::from_utf8_lossy(&data)) {
            Ok(config) if config.is_reconfigured() => apply(&config, &consensus, my_id, &rebind_client).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "/zookeeper/config does not parse; addresses left as they are"),
        }
    }
}

async fn apply(config: &DynamicConfig, consensus: &Consensus, my_id: u64, rebind_client: &ClientRebind) {
    let peers = config.servers.values().filter(|s| s.id != my_id).map(|s| (s.id, s.quorum_addr().to_string()));
    consensus.set_peer_addresses(peers.collect());
    let Some(me) = config.servers.get(&my_id) else { return };
    // A failed bind is not retried: ZooKeeper would not retry either, and the old port
    // keeps serving until the operator fixes the configuration.
    if let Err(e) = consensus.listen_quorum(&me.quorum_addr().to_string()).await {
        tracing::error!(error = %e, "cannot move the quorum port as reconfigured");
    }
    if let Some(client) = &me.client_addr {
        if let Err(e) = rebind_client(client.to_string()).await {
            tracing::error!(error = %e, addr = %client, "cannot move the client port as reconfigured");
        }
    }
}
