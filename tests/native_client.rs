//! A real ZooKeeper client (the `zookeeper-client` crate) against a real roost
//! process: what an application sees on the native port.

mod common;

use std::time::Duration;

use common::{four_letter_word, open, Server};
use zookeeper_client as zk;

async fn client(server: &Server) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&server.connect_string())
        .await
        .expect("connect")
}

#[tokio::test]
async fn create_get_set_delete_report_zookeeper_stats() {
    let server = Server::start(&[]);
    let c = client(&server).await;

    let (stat, seq) = c.create("/app", b"hello", &open()).await.unwrap();
    assert_eq!(seq.into_i64(), -1);
    assert_eq!(stat.version, 0);
    assert_eq!(stat.data_length, 5);
    assert_eq!(stat.czxid, stat.mzxid);
    assert_eq!(stat.pzxid, stat.czxid);
    assert_eq!(stat.ctime, stat.mtime);
    assert_eq!(c.get_data("/app").await.unwrap(), (b"hello".to_vec(), stat));

    let set = c.set_data("/app", b"world!", Some(0)).await.unwrap();
    assert_eq!(set.version, 1);
    assert_eq!(set.data_length, 6);
    assert!(set.mzxid > stat.mzxid);
    assert_eq!(set.czxid, stat.czxid);
    assert_eq!(c.set_data("/app", b"x", Some(0)).await.unwrap_err(), zk::Error::BadVersion);

    c.create("/app/child", b"", &open()).await.unwrap();
    let (children, parent) = c.get_children("/app").await.unwrap();
    assert_eq!(children, vec!["child".to_string()]);
    assert_eq!(parent.num_children, 1);
    assert_eq!(parent.cversion, 1);
    assert_eq!(c.delete("/app", None).await.unwrap_err(), zk::Error::NotEmpty);
    c.delete("/app/child", None).await.unwrap();
    let after = c.check_stat("/app").await.unwrap().unwrap();
    // cversion counts deletes too; pzxid moves with the child delete.
    assert_eq!(after.cversion, 2);
    assert!(after.pzxid > parent.pzxid);
    c.delete("/app", Some(1)).await.unwrap();
    assert_eq!(c.check_stat("/app").await.unwrap(), None);
    assert_eq!(c.get_data("/app").await.unwrap_err(), zk::Error::NoNode);
}

#[tokio::test]
async fn sequential_names_use_ten_digits_and_never_repeat() {
    let server = Server::start(&[]);
    let c = client(&server).await;
    c.create("/q", b"", &open()).await.unwrap();
    let seq_mode = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let (_, s0) = c.create("/q/item-", b"", &seq_mode).await.unwrap();
    let (_, s1) = c.create("/q/item-", b"", &seq_mode).await.unwrap();
    assert_eq!(s0.into_i64(), 0);
    assert_eq!(s1.into_i64(), 1);
    c.delete("/q/item-0000000001", None).await.unwrap();
    let (_, s2) = c.create("/q/item-", b"", &seq_mode).await.unwrap();
    assert_eq!(s2.into_i64(), 2);
    let mut children = c.list_children("/q").await.unwrap();
    children.sort();
    assert_eq!(children, vec!["item-0000000000", "item-0000000002"]);
}

#[tokio::test]
async fn ephemerals_vanish_with_their_session_and_watchers_hear_it() {
    let server = Server::start(&[]);
    let owner = client(&server).await;
    let observer = client(&server).await;
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let (stat, _) = owner.create("/lock", b"", &eph).await.unwrap();
    assert_eq!(stat.ephemeral_owner, owner.session_id().0);
    assert_eq!(owner.list_ephemerals("/").await.unwrap(), vec!["/lock".to_string()]);

    let (_, watcher) = observer.check_and_watch_stat("/lock").await.unwrap();
    drop(owner); // closes the session
    let event = tokio::time::timeout(Duration::from_secs(10), watcher.changed()).await.expect("event");
    assert_eq!(event.event_type, zk::EventType::NodeDeleted);
    assert_eq!(event.path, "/lock");
    assert_eq!(observer.check_stat("/lock").await.unwrap(), None);
}

#[tokio::test]
async fn one_shot_and_persistent_watches_fire_like_zookeeper() {
    let server = Server::start(&[]);
    let c = client(&server).await;
    let writer = client(&server).await;

    let (none, exists_watch) = c.check_and_watch_stat("/w").await.unwrap();
    assert!(none.is_none());
    let mut recursive = c.watch("/w", zk::AddWatchMode::PersistentRecursive).await.unwrap();

    writer.create("/w", b"1", &open()).await.unwrap();
    let e = exists_watch.changed().await;
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeCreated, "/w"));
    let e = recursive.changed().await;
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeCreated, "/w"));

    let (_, _, data_watch) = c.get_and_watch_data("/w").await.unwrap();
    let (_, _, child_watch) = c.get_and_watch_children("/w").await.unwrap();
    writer.create("/w/a", b"", &open()).await.unwrap();
    let e = child_watch.changed().await;
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeChildrenChanged, "/w"));
    // Recursive watches see the descendant's creation, never NodeChildrenChanged.
    let e = recursive.changed().await;
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeCreated, "/w/a"));

    writer.set_data("/w", b"2", None).await.unwrap();
    let e = data_watch.changed().await;
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeDataChanged, "/w"));
    let e = recursive.changed().await;
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeDataChanged, "/w"));
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(&[]);
    let c = client(&server).await;
    // Issued back to back without awaiting: the server must keep their order.
    let create = c.create("/order", b"", &open());
    let children = c.get_and_watch_children("/order");
    let child_data = c.get_data("/order/child");
    let create_child = c.create("/order/child", b"", &open());
    let (parent_stat, _) = create.await.unwrap();
    let (child_stat, _) = create_child.await.unwrap();
    assert!(child_stat.czxid > parent_stat.czxid);
    let (list, stat, watcher) = children.await.unwrap();
    assert!(list.is_empty());
    assert_eq!(stat, parent_stat);
    assert_eq!(child_data.await.unwrap_err(), zk::Error::NoNode);
    let e = watcher.changed().await;
    assert_eq!(e.event_type, zk::EventType::NodeChildrenChanged);
}

#[tokio::test]
async fn multi_is_atomic() {
    let server = Server::start(&[]);
    let c = client(&server).await;
    let mut w = c.new_multi_writer();
    w.add_create("/m", b"", &open()).unwrap();
    w.add_create("/m/a", b"", &open()).unwrap();
    w.add_set_data("/m", b"x", None).unwrap();
    let results = w.commit().await.unwrap();
    assert_eq!(results.len(), 3);

    let mut w = c.new_multi_writer();
    w.add_create("/m/b", b"", &open()).unwrap();
    w.add_delete("/missing", None).unwrap();
    let err = w.commit().await.unwrap_err();
    assert!(matches!(err, zk::MultiWriteError::OperationFailed { index: 1, source: zk::Error::NoNode }), "{err:?}");
    assert_eq!(c.check_stat("/m/b").await.unwrap(), None, "the failed multi must not create /m/b");
}

#[tokio::test]
async fn digest_acls_keep_others_out() {
    let server = Server::start(&[]);
    let alice =
        zk::Client::connector().with_auth("digest", b"alice:secret").connect(&server.connect_string()).await.unwrap();
    let creator_only = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    alice.create("/private", b"mine", &creator_only).await.unwrap();
    assert_eq!(alice.get_data("/private").await.unwrap().0, b"mine");

    let stranger = client(&server).await;
    assert_eq!(stranger.get_data("/private").await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(stranger.set_data("/private", b"x", None).await.unwrap_err(), zk::Error::NoAuth);
    // exists needs no permission: ZooKeeper 3.8 answers with the stat whatever the ACL
    // (checked against Apache ZooKeeper by tests/clients/curator, acl_exists_on_unreadable_node).
    let stat = stranger.check_stat("/private").await.unwrap().expect("exists answers with the stat");
    assert_eq!(stat.data_length, 4);
    // getACL needs READ or ADMIN.
    assert_eq!(stranger.get_acl("/private").await.unwrap_err(), zk::Error::NoAuth);
}

#[tokio::test]
async fn data_and_sessions_survive_kill_9_and_restart() {
    let mut server = Server::start(&[]);
    let c = client(&server).await;
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    c.create("/durable", b"kept", &open()).await.unwrap();
    c.create("/mine", b"", &eph).await.unwrap();
    let session = c.session().clone();

    server.kill9();
    server.spawn();

    let fresh = client(&server).await;
    assert_eq!(fresh.get_data("/durable").await.unwrap().0, b"kept");
    // The session is replicated state: it outlives the process and keeps its ephemeral.
    // The original client reconnects on its own with the same session (a second client
    // resuming that session would race it: the server keeps only the newest connection).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mine = loop {
        match c.check_stat("/mine").await {
            Err(zk::Error::ConnectionLoss) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => break other,
        }
    };
    assert!(mine.expect("the original session resumes").is_some());
    assert_eq!(c.session().id(), session.id());
}

#[tokio::test]
async fn four_letter_words_answer() {
    let server = Server::start(&["-D", "4lw.commands.whitelist=*"]);
    assert_eq!(four_letter_word(server.addr(), "ruok"), "imok");
    assert_eq!(four_letter_word(server.addr(), "isro"), "rw");
    let srvr = four_letter_word(server.addr(), "srvr");
    assert!(srvr.starts_with("Zookeeper version: 3.8"), "{srvr}");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    let envi = four_letter_word(server.addr(), "envi");
    assert!(envi.contains("zookeeper.version=3.8"), "{envi}");
    let mntr = four_letter_word(server.addr(), "mntr");
    assert!(mntr.contains("zk_znode_count\t"), "{mntr}");
}

#[tokio::test]
async fn four_letter_words_obey_the_whitelist() {
    let server = Server::start(&[]);
    assert_eq!(four_letter_word(server.addr(), "ruok"), "ruok is not executed because it is not in the whitelist.\n");
    assert!(four_letter_word(server.addr(), "srvr").contains("Mode: standalone"));
}
