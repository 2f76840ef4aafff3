//! reconfig (op 16): the local checks, then the leader carries it out (`crate::reconfig`).
//!
//! Order as in ZooKeeper: a disabled feature answers ReconfigDisabled, a standalone server
//! Unimplemented; everything else is decided on the leader. The reply is a getData reply
//! of `/zookeeper/config` (see `write::encode_outcome`).

use std::future::Future;

use crate::consensus::{Consensus, ConsensusError, ReconfigCall};
use crate::proto::request::Request;
use crate::proto::types::{ErrorCode, Id};
use crate::tree::txn::TxnOutcome;

/// What the server may do with a reconfig request.
pub fn precheck(reconfig_enabled: bool, standalone: bool) -> Result<(), ErrorCode> {
    if !reconfig_enabled {
        Err(ErrorCode::ReconfigDisabled)
    } else if standalone {
        Err(ErrorCode::Unimplemented)
    } else {
        Ok(())
    }
}

/// Starts the reconfig at once (so it does not wait for the connection's queue) and
/// returns its outcome's future.
pub fn start(
    consensus: std::sync::Arc<Consensus>,
    session_id: i64,
    auth: Vec<Id>,
    req: Request,
) -> impl Future<Output = Result<TxnOutcome, ConsensusError>> + Send + 'static {
    let task = match req {
        Request::Reconfig { joining, leaving, new_members, cur_config_id } => {
            let call = ReconfigCall { session_id, auth, joining, leaving, new_members, cur_config_id };
            Some(tokio::spawn(async move { consensus.reconfig(call).await }))
        }
        _ => None,
    };
    async move {
        match task {
            Some(task) => task.await.map_err(|_| ConsensusError::Stopped)?,
            None => Err(ConsensusError::Remote { message: "not a reconfig request".into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_comes_before_standalone() {
        assert_eq!(precheck(false, true), Err(ErrorCode::ReconfigDisabled));
        assert_eq!(precheck(false, false), Err(ErrorCode::ReconfigDisabled));
        assert_eq!(precheck(true, true), Err(ErrorCode::Unimplemented));
        assert_eq!(precheck(true, false), Ok(()));
    }
}
