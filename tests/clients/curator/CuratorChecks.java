// Curator + ZooKeeper Java client checks against one running server or ensemble.
//
// Started by run.py (never by hand in CI). Arguments:
//   --servers h:p[,h:p...]   the members, in member order (member i = i-th entry)
//   --only a,b               run only these checks (names as printed)
// Protocol on stdout (everything else goes to stderr, together with the client libraries' log):
//   PLAN name name ...                     the checks this run will report, in order
//   RESULT PASS|FAIL name seconds [reason]
//   CTL kill|start|restart|ensure <port>   asks the driver to act on the member serving <port>;
//                                          the driver answers one line on stdin: "OK" or "ERR ..."
// Every check gets its own path (/cc/<name>), its own clients, and a deadline; when the deadline
// passes its thread is interrupted and its clients closed, and the run goes on with the next.

import java.io.BufferedReader;
import java.io.Closeable;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Pattern;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.api.transaction.OperationType;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.cache.NodeCache;
import org.apache.curator.framework.recipes.cache.TreeCache;
import org.apache.curator.framework.recipes.cache.TreeCacheEvent;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.queue.DistributedPriorityQueue;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.utils.ZookeeperFactory;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.Watcher.Event.EventType;
import org.apache.zookeeper.Watcher.Event.KeeperState;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

public final class CuratorChecks {

    static final int SESSION_MS = 15000;
    static final int CONNECT_MS = 10000;
    static final PrintStream OUT = System.out;
    static final PrintStream LOG = System.err;
    static final BufferedReader CTL_IN = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));

    static List<String> servers = new ArrayList<>();
    static String connect;

    // ---------------------------------------------------------------------------------------
    // Plumbing: a ZooKeeper handle that tells which server it is connected to, and a log of the
    // connection states every handle of one Curator client went through.

    /** ZooKeeper with the protected remote-address accessor made visible. */
    static final class Zk extends ZooKeeper {
        Zk(String cs, int timeout, Watcher w, boolean ro, ZKClientConfig cfg) throws java.io.IOException {
            super(cs, timeout, w, ro, cfg);
        }

        int remotePort() {
            SocketAddress a = testableRemoteSocketAddress();
            return a instanceof InetSocketAddress ? ((InetSocketAddress) a).getPort() : -1;
        }
    }

    /** Every connection-state event (type None) the client's handles delivered, in order. */
    static final class StateLog {
        private final List<KeeperState> states = new ArrayList<>();

        synchronized void add(KeeperState s) {
            states.add(s);
            notifyAll();
        }

        synchronized int size() {
            return states.size();
        }

        synchronized int count(KeeperState s, int from) {
            int n = 0;
            for (int i = from; i < states.size(); i++) if (states.get(i) == s) n++;
            return n;
        }

        synchronized List<KeeperState> since(int from) {
            return new ArrayList<>(states.subList(Math.min(from, states.size()), states.size()));
        }

        /** Waits until `s` appears at index >= from. */
        synchronized boolean await(KeeperState s, int from, long ms) throws InterruptedException {
            long end = System.nanoTime() + ms * 1_000_000L;
            while (true) {
                for (int i = from; i < states.size(); i++) if (states.get(i) == s) return true;
                long left = (end - System.nanoTime()) / 1_000_000L;
                if (left <= 0) return false;
                wait(left);
            }
        }
    }

    static final class Client implements Closeable {
        final CuratorFramework cf;
        final StateLog states = new StateLog();
        final List<ConnectionState> curatorStates = new CopyOnWriteArrayList<>();
        final String connectString;

        Client(String cs, boolean tracker, String auth, int sessionMs) {
            connectString = cs;
            ZookeeperFactory factory = new ZookeeperFactory() {
                @Override
                public ZooKeeper newZooKeeper(String c, int t, Watcher w, boolean ro) throws Exception {
                    return newZooKeeper(c, t, w, ro, new ZKClientConfig());
                }

                @Override
                public ZooKeeper newZooKeeper(String c, int t, Watcher w, boolean ro, ZKClientConfig cfg) throws Exception {
                    Watcher wrapped = ev -> {
                        if (ev.getType() == EventType.None) states.add(ev.getState());
                        w.process(ev);
                    };
                    return new Zk(c, t, wrapped, ro, cfg == null ? new ZKClientConfig() : cfg);
                }
            };
            CuratorFrameworkFactory.Builder b = CuratorFrameworkFactory.builder()
                    .connectString(cs)
                    .sessionTimeoutMs(sessionMs)
                    .connectionTimeoutMs(CONNECT_MS)
                    .retryPolicy(new RetryNTimes(60, 250))
                    .zookeeperFactory(factory)
                    .ensembleTracker(tracker);
            if (auth != null) b.authorization("digest", auth.getBytes(StandardCharsets.UTF_8));
            cf = b.build();
            cf.getConnectionStateListenable().addListener((c, s) -> curatorStates.add(s));
        }

        Zk zk() throws Exception {
            return (Zk) cf.getZookeeperClient().getZooKeeper();
        }

        long session() throws Exception {
            return zk().getSessionId();
        }

        int port() throws Exception {
            return zk().remotePort();
        }

        @Override
        public void close() {
            cf.close();
        }
    }

    /** Per-check context: base path and everything to close when the check ends. */
    static final class Ctx {
        final String name;
        final String base;
        final List<AutoCloseable> owned = new CopyOnWriteArrayList<>();

        Ctx(String name) {
            this.name = name;
            this.base = "/cc/" + name;
        }

        Client client() throws Exception {
            return client(connect, true, null);
        }

        Client client(String cs, boolean tracker, String auth) throws Exception {
            return client(cs, tracker, auth, SESSION_MS);
        }

        Client client(String cs, boolean tracker, String auth, int sessionMs) throws Exception {
            Client c = new Client(cs, tracker, auth, sessionMs);
            owned.add(c);
            c.cf.start();
            ok(c.cf.blockUntilConnected(CONNECT_MS, TimeUnit.MILLISECONDS), "client did not connect to %s within %d ms", cs, CONNECT_MS);
            return c;
        }

        /** A client that only knows one server, so it stays on it. */
        Client pinned(String hostPort) throws Exception {
            return client(hostPort, false, null);
        }

        <T extends AutoCloseable> T own(T t) {
            owned.add(t);
            return t;
        }

        void closeAll() {
            List<AutoCloseable> list = new ArrayList<>(owned);
            Collections.reverse(list);
            for (AutoCloseable c : list) {
                try {
                    c.close();
                } catch (Throwable t) {
                    // best effort: the check is over
                }
            }
            owned.clear();
        }
    }

    interface Body {
        void run(Ctx c) throws Exception;
    }

    record Check(String name, int timeoutSec, int minSize, Body body) {
    }

    // ---------------------------------------------------------------------------------------
    // Assertions

    static final class CheckFailed extends RuntimeException {
        CheckFailed(String m) {
            super(m);
        }
    }

    static void ok(boolean cond, String fmt, Object... args) {
        if (!cond) throw new CheckFailed(String.format(fmt, args));
    }

    static void eq(Object expected, Object actual, String what) {
        if (!java.util.Objects.equals(expected, actual))
            throw new CheckFailed(what + ": expected <" + expected + "> but was <" + actual + ">");
    }

    interface Cond {
        boolean get() throws Exception;
    }

    static void eventually(long ms, String what, Cond cond) throws Exception {
        long end = System.nanoTime() + ms * 1_000_000L;
        while (!cond.get()) {
            if (System.nanoTime() > end) throw new CheckFailed("timed out after " + ms + " ms waiting for: " + what);
            Thread.sleep(50);
        }
    }

    interface Action {
        void run() throws Exception;
    }

    static <E extends Exception> E expect(Class<E> type, String what, Action a) throws Exception {
        try {
            a.run();
        } catch (Exception e) {
            if (type.isInstance(e)) return type.cast(e);
            throw new CheckFailed(what + ": expected " + type.getSimpleName() + " but got " + e);
        }
        throw new CheckFailed(what + ": expected " + type.getSimpleName() + " but the call succeeded");
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String s(byte[] d) {
        return d == null ? null : new String(d, StandardCharsets.UTF_8);
    }

    /** ZooKeeper promises each client its own writes in order, not other clients' writes at once:
     * a client on another member may read before that member has applied a write it saw
     * acknowledged elsewhere. sync() makes the client's member catch up with the leader first,
     * which is what a program must do before such a read. */
    static void syncFor(CuratorFramework cf, String path) throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        AtomicInteger rc = new AtomicInteger(-99);
        cf.getZookeeperClient().getZooKeeper().sync(path, (code, p, ctx) -> {
            rc.set(code);
            done.countDown();
        }, null);
        ok(done.await(10, TimeUnit.SECONDS), "sync(%s) did not complete", path);
        eq(0, rc.get(), "sync result code");
    }

    static void sleep(long ms) throws InterruptedException {
        Thread.sleep(ms);
    }

    static void note(String fmt, Object... args) {
        LOG.println("[check] " + String.format(fmt, args));
    }

    // ---------------------------------------------------------------------------------------
    // Driver control

    static synchronized String ctl(String cmd) throws Exception {
        OUT.println("CTL " + cmd);
        OUT.flush();
        String reply = CTL_IN.readLine();
        if (reply == null) throw new CheckFailed("driver closed the control channel");
        if (!reply.startsWith("OK")) throw new CheckFailed("driver: " + reply);
        return reply;
    }

    static String hostPortOf(int port) {
        for (String s : servers) if (s.endsWith(":" + port)) return s;
        throw new CheckFailed("not a member port: " + port);
    }

    static String otherThan(int port) {
        for (String s : servers) if (!s.endsWith(":" + port)) return s;
        throw new CheckFailed("no member other than " + port);
    }

    static String allBut(int port) {
        List<String> l = new ArrayList<>();
        for (String s : servers) if (!s.endsWith(":" + port)) l.add(s);
        return String.join(",", l);
    }

    /** Ends a client's session from outside, as Curator's test KillSession used to: a second
     * handle attaches to the same session id and password and closes it. */
    static void killSession(Client c, String hostPort) throws Exception {
        ZooKeeper zk = c.zk();
        long id = zk.getSessionId();
        byte[] pw = zk.getSessionPasswd();
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper killer = new ZooKeeper(hostPort, SESSION_MS, e -> {
            if (e.getState() == KeeperState.SyncConnected) connected.countDown();
        }, id, pw);
        try {
            ok(connected.await(10, TimeUnit.SECONDS), "second handle on session 0x%x did not connect to %s", id, hostPort);
        } finally {
            killer.close();
        }
    }

    // ---------------------------------------------------------------------------------------
    // Basic node operations

    static void crudBasic(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        String p = c.base + "/x/y";
        a.create().creatingParentsIfNeeded().forPath(p, b("v1"));
        Stat st = new Stat();
        eq("v1", s(a.getData().storingStatIn(st).forPath(p)), "data after create");
        eq(0, st.getVersion(), "version after create");
        Stat created = new Stat();
        a.create().storingStatIn(created).forPath(c.base + "/x/z", b("zz"));
        ok(created.getCzxid() != 0 && created.getCzxid() == created.getMzxid(), "create2 stat zxids %s", created);
        eq(0, created.getVersion(), "create2 stat version");
        eq(2, created.getDataLength(), "create2 stat dataLength");
        a.create().orSetData().forPath(c.base + "/x/z", b("set"));
        eq("set", s(a.getData().forPath(c.base + "/x/z")), "create().orSetData() on an existing node");
        Stat st2 = a.setData().withVersion(0).forPath(p, b("v2"));
        eq(1, st2.getVersion(), "version after setData");
        expect(KeeperException.BadVersionException.class, "setData with a stale version",
                () -> a.setData().withVersion(0).forPath(p, b("v3")));
        expect(KeeperException.NodeExistsException.class, "create of an existing node",
                () -> a.create().forPath(p));
        expect(KeeperException.NotEmptyException.class, "delete of a node with children",
                () -> a.delete().forPath(c.base + "/x"));
        expect(KeeperException.BadVersionException.class, "delete with a wrong version",
                () -> a.delete().withVersion(7).forPath(p));
        a.delete().withVersion(1).forPath(p);
        ok(a.checkExists().forPath(p) == null, "node still exists after delete");
        expect(KeeperException.NoNodeException.class, "getData of a deleted node", () -> a.getData().forPath(p));
        expect(KeeperException.NoNodeException.class, "create under a missing parent",
                () -> a.create().forPath(c.base + "/missing/child"));
        a.delete().deletingChildrenIfNeeded().forPath(c.base);
        ok(a.checkExists().forPath(c.base) == null, "deletingChildrenIfNeeded left the node");
    }

    static final Pattern SEQ = Pattern.compile(".*/n-(\\d{10})$");

    static void sequentialNodes(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        a.create().creatingParentsIfNeeded().forPath(c.base);
        List<Long> seqs = new ArrayList<>();
        List<String> paths = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            String p = a.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(c.base + "/n-", b("" + i));
            var m = SEQ.matcher(p);
            ok(m.matches(), "sequential name %s does not end in a 10-digit counter", p);
            seqs.add(Long.parseLong(m.group(1)));
            paths.add(p);
        }
        ok(seqs.get(0) < seqs.get(1) && seqs.get(1) < seqs.get(2), "counters not increasing: %s", seqs);
        for (String p : paths) a.delete().forPath(p);
        String p = a.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(c.base + "/n-");
        var m = SEQ.matcher(p);
        ok(m.matches() && Long.parseLong(m.group(1)) > seqs.get(2), "counter reused after deletes: %s after %s", p, seqs);
    }

    static void ephemeralSequential(Ctx c) throws Exception {
        Client a = c.client();
        Client bcl = c.client();
        bcl.cf.create().creatingParentsIfNeeded().forPath(c.base);
        String p1 = a.cf.create().withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath(c.base + "/e-", b("1"));
        String p2 = a.cf.create().withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath(c.base + "/e-", b("2"));
        ok(!p1.equals(p2) && p1.matches(".*/e-\\d{10}") && p2.matches(".*/e-\\d{10}"), "bad names %s %s", p1, p2);
        long sid = a.session();
        syncFor(bcl.cf, c.base);
        for (String p : List.of(p1, p2)) {
            Stat st = bcl.cf.checkExists().forPath(p);
            ok(st != null, "other client does not see %s", p);
            eq(sid, st.getEphemeralOwner(), "ephemeralOwner of " + p);
        }
        expect(KeeperException.NoChildrenForEphemeralsException.class, "child of an ephemeral",
                () -> a.cf.create().forPath(p1 + "/child"));
        a.close();
        eventually(5000, "ephemerals gone after their session closed",
                () -> bcl.cf.getChildren().forPath(c.base).isEmpty());
    }

    static void getChildrenUnordered(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        a.create().creatingParentsIfNeeded().forPath(c.base);
        List<String> names = new ArrayList<>();
        for (int i = 0; i < 25; i++) names.add("k" + Integer.toHexString(i * 7919 % 1000) + "-" + i);
        Collections.shuffle(names, new Random(7));
        for (String n : names) a.create().forPath(c.base + "/" + n);
        List<String> got = a.getChildren().forPath(c.base);
        eq(names.size(), got.size(), "number of children (duplicates?)");
        eq(new TreeSet<>(names), new TreeSet<>(got), "set of children");
        Stat st = a.checkExists().forPath(c.base);
        eq(names.size(), st.getNumChildren(), "numChildren in stat");
    }

    /** A write through one member is visible on another after sync(); pinned clients. */
    static void syncRead(Ctx c) throws Exception {
        Client w = c.pinned(servers.get(0));
        Client r = c.pinned(servers.get(servers.size() - 1));
        String p = c.base + "/v";
        w.cf.create().creatingParentsIfNeeded().forPath(p, b("0"));
        for (int i = 1; i <= 10; i++) {
            w.cf.setData().forPath(p, b("" + i));
            CountDownLatch done = new CountDownLatch(1);
            AtomicInteger rc = new AtomicInteger(-99);
            r.zk().sync(p, (code, path, ctx) -> {
                rc.set(code);
                done.countDown();
            }, null);
            ok(done.await(10, TimeUnit.SECONDS), "sync did not complete");
            eq(0, rc.get(), "sync result code");
            eq("" + i, s(r.cf.getData().forPath(p)), "read after sync on " + r.connectString);
        }
    }

    /** ZooKeeper 3.6 calls: getEphemerals(prefix) and getAllChildrenNumber(path). */
    static void ephemeralsAndChildCount(Ctx c) throws Exception {
        Client a = c.client();
        CuratorFramework o = c.client().cf;
        a.cf.create().creatingParentsIfNeeded().forPath(c.base + "/t/u");
        a.cf.create().withMode(CreateMode.EPHEMERAL).forPath(c.base + "/t/e1");
        a.cf.create().withMode(CreateMode.EPHEMERAL).forPath(c.base + "/t/u/e2");
        o.create().withMode(CreateMode.EPHEMERAL).forPath(c.base + "/t/other");
        eq(new TreeSet<>(List.of(c.base + "/t/e1", c.base + "/t/u/e2")), new TreeSet<>(a.zk().getEphemerals(c.base)),
                "getEphemerals(prefix) of the session");
        eq(List.of(), a.zk().getEphemerals(c.base + "/nothing-here"), "getEphemerals of an unused prefix");
        syncFor(a.cf, c.base);
        eq(4, a.zk().getAllChildrenNumber(c.base + "/t"), "getAllChildrenNumber (all descendants)");
        expect(KeeperException.NoNodeException.class, "getAllChildrenNumber of a missing node",
                () -> a.zk().getAllChildrenNumber(c.base + "/missing"));
    }

    /** ZooKeeper 3.6 read-only multi: each read answered on its own, a missing node is an error
     * result without failing the others. */
    static void multiRead(Ctx c) throws Exception {
        Client a = c.client();
        String p = c.base + "/r";
        a.cf.create().creatingParentsIfNeeded().forPath(p + "/k1", b("one"));
        a.cf.create().forPath(p + "/k2");
        List<OpResult> res = a.zk().multi(List.of(org.apache.zookeeper.Op.getChildren(p),
                org.apache.zookeeper.Op.getData(p + "/k1"), org.apache.zookeeper.Op.getData(p + "/missing")));
        eq(3, res.size(), "number of results");
        ok(res.get(0) instanceof OpResult.GetChildrenResult, "result 0: %s", res.get(0));
        eq(new TreeSet<>(List.of("k1", "k2")), new TreeSet<>(((OpResult.GetChildrenResult) res.get(0)).getChildren()), "children");
        ok(res.get(1) instanceof OpResult.GetDataResult, "result 1: %s", res.get(1));
        eq("one", s(((OpResult.GetDataResult) res.get(1)).getData()), "data");
        eq(0, ((OpResult.GetDataResult) res.get(1)).getStat().getVersion(), "stat version");
        ok(res.get(2) instanceof OpResult.ErrorResult, "result 2: %s", res.get(2));
        eq(KeeperException.Code.NONODE.intValue(), ((OpResult.ErrorResult) res.get(2)).getErr(), "missing node's error");
    }

    static ZooKeeper openZk(Ctx c, String cs, int sessionMs) throws Exception {
        CountDownLatch l = new CountDownLatch(1);
        ZooKeeper z = new ZooKeeper(cs, sessionMs, e -> {
            if (e.getState() == KeeperState.SyncConnected) l.countDown();
        });
        c.own(z::close);
        ok(l.await(10, TimeUnit.SECONDS), "raw ZooKeeper handle did not connect to %s", cs);
        return z;
    }

    static void statFields(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        String p = c.base + "/s";
        long before = System.currentTimeMillis();
        a.create().creatingParentsIfNeeded().forPath(p, b("abc"));
        Stat s0 = a.checkExists().forPath(p);
        ok(Math.abs(s0.getCtime() - before) < 60000, "ctime %d is far from the client's clock %d", s0.getCtime(), before);
        eq(s0.getCtime(), s0.getMtime(), "mtime after create");
        eq(s0.getCzxid(), s0.getMzxid(), "mzxid after create");
        eq(s0.getCzxid(), s0.getPzxid(), "pzxid of a node that never had children");
        eq(0, s0.getVersion(), "version");
        eq(0, s0.getCversion(), "cversion");
        eq(0, s0.getAversion(), "aversion");
        eq(0L, s0.getEphemeralOwner(), "ephemeralOwner of a persistent node");
        eq(3, s0.getDataLength(), "dataLength");
        eq(0, s0.getNumChildren(), "numChildren");
        sleep(5);
        Stat s1 = a.setData().forPath(p, b("abcdef"));
        ok(s1.getMzxid() > s0.getMzxid(), "mzxid did not grow: %d -> %d", s0.getMzxid(), s1.getMzxid());
        ok(s1.getMtime() >= s0.getMtime(), "mtime went back");
        eq(s0.getCtime(), s1.getCtime(), "ctime after setData");
        eq(s0.getCzxid(), s1.getCzxid(), "czxid after setData");
        eq(s0.getPzxid(), s1.getPzxid(), "pzxid after setData");
        eq(1, s1.getVersion(), "version after setData");
        eq(6, s1.getDataLength(), "dataLength after setData");
        a.create().forPath(p + "/c1");
        Stat c2 = new Stat();
        a.create().storingStatIn(c2).forPath(p + "/c2");
        a.delete().forPath(p + "/c2");
        Stat s2 = a.checkExists().forPath(p);
        eq(3, s2.getCversion(), "cversion after two child creates and one delete");
        eq(1, s2.getNumChildren(), "numChildren");
        ok(s2.getPzxid() > c2.getCzxid(), "pzxid %d does not follow the child delete (c2 czxid %d)", s2.getPzxid(), c2.getCzxid());
        eq(s1.getMzxid(), s2.getMzxid(), "mzxid after child changes");
        eq(1, s2.getVersion(), "version after child changes");
        Stat s3 = a.setACL().withVersion(0).withACL(ZooDefs.Ids.OPEN_ACL_UNSAFE).forPath(p);
        eq(1, s3.getAversion(), "aversion after setACL");
        eq(s2.getMzxid(), s3.getMzxid(), "mzxid after setACL");
        expect(KeeperException.BadVersionException.class, "setACL with a stale aversion",
                () -> a.setACL().withVersion(0).withACL(ZooDefs.Ids.OPEN_ACL_UNSAFE).forPath(p));
    }

    static void largeNodeData(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        String p = c.base + "/big";
        byte[] big = new byte[1_000_000];
        new Random(5).nextBytes(big);
        a.create().creatingParentsIfNeeded().forPath(p, big);
        syncFor(o, p);
        ok(Arrays.equals(big, o.getData().forPath(p)), "1,000,000-byte value read back differs");
        big[12345] ^= 1;
        a.setData().forPath(p, big);
        syncFor(o, p);
        ok(Arrays.equals(big, o.getData().forPath(p)), "1,000,000-byte value after setData differs");
        eq(1_000_000, o.checkExists().forPath(p).getDataLength(), "dataLength");
    }

    /** A chroot in the connect string: the client sends full paths and must get relative ones back
     * (create results, watch events, multi results). */
    static void chrootConnectString(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        String root = c.base + "/app";
        a.create().creatingParentsIfNeeded().forPath(root);
        ZooKeeper z = openZk(c, connect + root, SESSION_MS);
        eq("/x", z.create("/x", b("1"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT), "create result path");
        String seq = z.create("/s-", b(""), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL);
        ok(seq.matches("/s-\\d{10}"), "sequential create result path %s", seq);
        ok(a.checkExists().forPath(root + "/x") != null, "node not under the chroot");
        Events rec = new Events(), once = new Events();
        z.addWatch("/", rec, AddWatchMode.PERSISTENT_RECURSIVE);
        z.getData("/x", once, null);
        a.setData().forPath(root + "/x", b("2"));
        once.awaitCount(1, 5000);
        rec.awaitCount(1, 5000);
        eq(List.of("NodeDataChanged /x"), once.describe(), "data watch event path");
        List<OpResult> res = z.multi(List.of(org.apache.zookeeper.Op.create("/m", b(""), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                org.apache.zookeeper.Op.setData("/x", b("3"), -1)));
        // The 3.8 Java client leaves the chroot on multi create results (later clients strip it), so
        // both forms are accepted; the server must send the node's full path either way.
        String mp = ((OpResult.CreateResult) res.get(0)).getPath();
        ok(mp.equals("/m") || mp.equals(root + "/m"), "multi create result path %s", mp);
        rec.awaitCount(3, 5000);
        eq(List.of("NodeDataChanged /x", "NodeCreated /m", "NodeDataChanged /x"), rec.describe(), "recursive watch event paths");
        eq(new TreeSet<>(List.of("m", "x", seq.substring(1))), new TreeSet<>(z.getChildren("/", false)), "children of the chroot");
    }

    /** ZooKeeper's ordering promise: a client sees the watch event for a change before it sees
     * the changed data in a read. Async reads run on the same event thread as watchers. */
    static void watchEventBeforeNewData(Ctx c) throws Exception {
        Client a = c.client();
        CuratorFramework o = c.client().cf;
        String p = c.base + "/d";
        a.cf.create().creatingParentsIfNeeded().forPath(p, b("0"));
        ZooKeeper z = a.zk();
        for (int i = 1; i <= 20; i++) {
            java.util.concurrent.atomic.AtomicBoolean fired = new java.util.concurrent.atomic.AtomicBoolean();
            z.getData(p, e -> fired.set(true), null);
            o.setData().forPath(p, b("" + i));
            String want = "" + i;
            long end = System.nanoTime() + 5_000_000_000L;
            while (true) {
                BlockingQueue<String> reply = new LinkedBlockingQueue<>();
                z.getData(p, false, (rc, path, ctx, data, stat) ->
                        reply.add(s(data) + (fired.get() ? "|fired" : "|not-fired")), null);
                String r = reply.poll(5, TimeUnit.SECONDS);
                ok(r != null, "async getData did not answer");
                if (r.startsWith(want + "|")) {
                    ok(r.endsWith("|fired"), "round %d: read returned the new data before the watch event was delivered", i);
                    break;
                }
                ok(System.nanoTime() < end, "round %d: new value never read (last %s)", i, r);
            }
        }
    }

    static void sessionTimeoutNegotiation(Ctx c) throws Exception {
        int[][] cases = {{1000, 4000}, {9000, 9000}, {100000, 40000}};
        for (int[] cs : cases) {
            ZooKeeper z = openZk(c, connect, cs[0]);
            eq(cs[1], z.getSessionTimeout(), "negotiated timeout for " + cs[0] + " ms (tickTime 2000: min 4000, max 40000)");
            z.close();
        }
    }

    /** A client process dies (SIGKILL): the server ends its session after the session timeout,
     * deletes its ephemeral and notifies watchers; not much earlier, not much later. */
    static void crashedClientSessionTimesOut(Ctx c) throws Exception {
        CuratorFramework o = c.client().cf;
        o.create().creatingParentsIfNeeded().forPath(c.base);
        String p = c.base + "/eph";
        String java = ProcessHandle.current().info().command().orElse("java");
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "CuratorChecks", "--hold", connect, p, "4000");
        pb.redirectError(ProcessBuilder.Redirect.INHERIT);
        Process proc = pb.start();
        c.own(() -> proc.destroyForcibly());
        BufferedReader r = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8));
        String ready = r.readLine();
        ok(ready != null && ready.startsWith("READY "), "holder process said %s", ready);
        String[] parts = ready.split(" ");
        long sid = Long.parseLong(parts[1], 16);
        eq(4000, Integer.parseInt(parts[2]), "holder's negotiated session timeout");
        syncFor(o, p);
        Stat st = o.checkExists().forPath(p);
        ok(st != null && st.getEphemeralOwner() == sid, "holder's ephemeral: %s", st);
        Events ev = new Events(), cev = new Events();
        o.checkExists().usingWatcher(ev).forPath(p);
        o.getChildren().usingWatcher(cev).forPath(c.base);
        long t0 = System.nanoTime();
        proc.destroyForcibly();
        ok(proc.waitFor(10, TimeUnit.SECONDS), "holder process did not die");
        ev.awaitCount(1, 20000);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        note("ephemeral of the killed client (session timeout 4000 ms) deleted %d ms after the kill", ms);
        cev.awaitCount(1, 3000);
        eq(List.of("NodeDeleted " + p), ev.describe(), "exists watch on the ephemeral");
        eq(List.of("NodeChildrenChanged " + c.base), cev.describe(), "child watch on its parent");
        ok(ms >= 2000, "session ended %d ms after its client died, well before its 4000 ms timeout", ms);
        ok(ms <= 10000, "session ended only %d ms after its client died (timeout 4000 ms)", ms);
    }

    /** Holder mode for crashedClientSessionTimesOut: create an ephemeral, report, wait to be killed. */
    static void hold(String cs, String path, int sessionMs) throws Exception {
        CountDownLatch l = new CountDownLatch(1);
        ZooKeeper z = new ZooKeeper(cs, sessionMs, e -> {
            if (e.getState() == KeeperState.SyncConnected) l.countDown();
        });
        if (!l.await(10, TimeUnit.SECONDS)) System.exit(3);
        z.create(path, b("held"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        OUT.println("READY " + Long.toHexString(z.getSessionId()) + " " + z.getSessionTimeout());
        OUT.flush();
        Thread.sleep(120_000); // killed long before this
        System.exit(4);
    }

    /** With 3 members, /zookeeper/config (Curator's getConfig(), zkCli's `config`) lists them
     * even without dynamic reconfiguration. */
    static void ensembleConfig(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        String cfg = s(a.getConfig().forEnsemble());
        Set<String> ids = new TreeSet<>();
        for (String line : cfg.split("\n")) {
            var m = Pattern.compile("^server\\.(\\d+)=127\\.0\\.0\\.1:\\d+:\\d+(:participant)?(;.*)?$").matcher(line.trim());
            if (m.matches()) ids.add(m.group(1));
        }
        eq(Set.of("1", "2", "3"), ids, "server ids in /zookeeper/config (content: " + cfg.replace("\n", "\\n") + ")");
        ok(cfg.contains("version="), "no version line in /zookeeper/config: %s", cfg);
    }

    // ---------------------------------------------------------------------------------------
    // Transactions (multi)

    static void txnAllOrNothing(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        a.create().creatingParentsIfNeeded().forPath(c.base + "/existing");
        List<CuratorOp> ops = List.of(
                a.transactionOp().create().forPath(c.base + "/a", b("a")),
                a.transactionOp().create().forPath(c.base + "/b", b("b")),
                a.transactionOp().create().forPath(c.base + "/existing"),
                a.transactionOp().create().forPath(c.base + "/c"));
        KeeperException e = expect(KeeperException.NodeExistsException.class, "multi with a failing create",
                () -> a.transaction().forOperations(ops));
        List<OpResult> results = e.getResults();
        ok(results != null && results.size() == 4, "multi failure results: %s", results);
        int[] want = {0, 0, KeeperException.Code.NODEEXISTS.intValue(), KeeperException.Code.RUNTIMEINCONSISTENCY.intValue()};
        for (int i = 0; i < 4; i++) {
            ok(results.get(i) instanceof OpResult.ErrorResult, "result %d is %s, not an ErrorResult", i, results.get(i));
            eq(want[i], ((OpResult.ErrorResult) results.get(i)).getErr(), "error code of op " + i);
        }
        for (String n : List.of("a", "b", "c"))
            ok(a.checkExists().forPath(c.base + "/" + n) == null, "%s was created by a failed multi", n);
    }

    static void txnResults(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        a.create().creatingParentsIfNeeded().forPath(c.base, b("0"));
        a.create().forPath(c.base + "/old");
        List<CuratorTransactionResult> res = a.transaction().forOperations(
                a.transactionOp().create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(c.base + "/s-", b("x")),
                a.transactionOp().setData().forPath(c.base, b("1")),
                a.transactionOp().delete().forPath(c.base + "/old"),
                a.transactionOp().check().withVersion(1).forPath(c.base));
        eq(4, res.size(), "number of results");
        eq(OperationType.CREATE, res.get(0).getType(), "op 0 type");
        ok(res.get(0).getResultPath() != null && res.get(0).getResultPath().matches(Pattern.quote(c.base) + "/s-\\d{10}"),
                "create result path %s", res.get(0).getResultPath());
        eq(OperationType.SET_DATA, res.get(1).getType(), "op 1 type");
        ok(res.get(1).getResultStat() != null, "setData result has no stat");
        eq(1, res.get(1).getResultStat().getVersion(), "setData result version");
        eq(OperationType.DELETE, res.get(2).getType(), "op 2 type");
        eq(OperationType.CHECK, res.get(3).getType(), "op 3 type");
        eq("x", s(a.getData().forPath(res.get(0).getResultPath())), "created node data");
        ok(a.checkExists().forPath(c.base + "/old") == null, "deleted node still exists");
    }

    static void multiCreateModes(Ctx c) throws Exception {
        Client a = c.client();
        CuratorFramework o = c.client().cf;
        CuratorFramework cf = a.cf;
        cf.create().creatingParentsIfNeeded().forPath(c.base);
        String b0 = c.base;
        List<CuratorTransactionResult> res = cf.transaction().forOperations(
                cf.transactionOp().create().withMode(CreateMode.EPHEMERAL).forPath(b0 + "/eph", b("e")),
                cf.transactionOp().create().withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath(b0 + "/eseq-", b("s")),
                cf.transactionOp().create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(b0 + "/pseq-"),
                cf.transactionOp().create().withMode(CreateMode.CONTAINER).forPath(b0 + "/ct"),
                cf.transactionOp().create().forPath(b0 + "/ct/child"),
                cf.transactionOp().create().withTtl(1000).withMode(CreateMode.PERSISTENT_WITH_TTL).forPath(b0 + "/ttl"));
        eq(6, res.size(), "results");
        String eseq = res.get(1).getResultPath();
        ok(eseq.matches(Pattern.quote(b0) + "/eseq-\\d{10}"), "ephemeral sequential result %s", eseq);
        ok(res.get(2).getResultPath().matches(Pattern.quote(b0) + "/pseq-\\d{10}"), "sequential result %s", res.get(2).getResultPath());
        long sid = a.session();
        syncFor(o, b0);
        eq(sid, o.checkExists().forPath(b0 + "/eph").getEphemeralOwner(), "owner of the multi's ephemeral");
        eq(sid, o.checkExists().forPath(eseq).getEphemeralOwner(), "owner of the multi's ephemeral sequential");
        a.close();
        eventually(5000, "the multi's ephemerals gone with the session", () ->
                o.checkExists().forPath(b0 + "/eph") == null && o.checkExists().forPath(eseq) == null);
        eventually(15000, "the multi's TTL node removed", () -> o.checkExists().forPath(b0 + "/ttl") == null);
        o.delete().forPath(b0 + "/ct/child");
        eventually(15000, "the multi's container removed once emptied", () -> o.checkExists().forPath(b0 + "/ct") == null);
    }

    static void multiWithCheck(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        String p = c.base + "/m";
        a.create().creatingParentsIfNeeded().forPath(p, b("a"));
        a.transaction().forOperations(
                a.transactionOp().check().withVersion(0).forPath(p),
                a.transactionOp().setData().forPath(p, b("b")),
                a.transactionOp().create().forPath(p + "/child"));
        eq("b", s(a.getData().forPath(p)), "data after a passing check");
        ok(a.checkExists().forPath(p + "/child") != null, "child not created");
        KeeperException e = expect(KeeperException.BadVersionException.class, "multi with a stale check",
                () -> a.transaction().forOperations(
                        a.transactionOp().check().withVersion(0).forPath(p),
                        a.transactionOp().setData().forPath(p, b("c")),
                        a.transactionOp().delete().forPath(p + "/child")));
        eq(KeeperException.Code.BADVERSION.intValue(), ((OpResult.ErrorResult) e.getResults().get(0)).getErr(), "check's error");
        eq("b", s(a.getData().forPath(p)), "data after a failed check (must be unchanged)");
        ok(a.checkExists().forPath(p + "/child") != null, "child deleted by a failed multi");
        expect(KeeperException.NoNodeException.class, "check on a missing node",
                () -> a.transaction().forOperations(a.transactionOp().check().forPath(c.base + "/nope")));
    }

    // ---------------------------------------------------------------------------------------
    // Watches

    static final class Events implements Watcher {
        final List<WatchedEvent> list = new CopyOnWriteArrayList<>();

        @Override
        public void process(WatchedEvent e) {
            if (e.getType() != EventType.None) list.add(e);
        }

        List<String> describe() {
            List<String> out = new ArrayList<>();
            for (WatchedEvent e : list) out.add(e.getType() + " " + e.getPath());
            return out;
        }

        void awaitCount(int n, long ms) throws Exception {
            eventually(ms, n + " watch event(s), have " + describe(), () -> list.size() >= n);
        }
    }

    static void watchDataOnce(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        String p = c.base + "/d";
        a.create().creatingParentsIfNeeded().forPath(p, b("0"));
        Events ev = new Events();
        a.getData().usingWatcher(ev).forPath(p);
        o.setData().forPath(p, b("1"));
        ev.awaitCount(1, 5000);
        o.setData().forPath(p, b("2"));
        o.delete().forPath(p);
        sleep(300);
        eq(List.of("NodeDataChanged " + p), ev.describe(), "events of a one-shot data watch");
    }

    static void watchExistsOnce(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        String p = c.base + "/e";
        a.create().creatingParentsIfNeeded().forPath(c.base);
        Events ev = new Events();
        ok(a.checkExists().usingWatcher(ev).forPath(p) == null, "node exists already");
        o.create().forPath(p, b("x"));
        ev.awaitCount(1, 5000);
        o.setData().forPath(p, b("y"));
        o.delete().forPath(p);
        sleep(300);
        eq(List.of("NodeCreated " + p), ev.describe(), "events of a one-shot exists watch on a missing node");
        Events ev2 = new Events();
        o.create().forPath(p, b("x"));
        syncFor(a, p);
        ok(a.checkExists().usingWatcher(ev2).forPath(p) != null, "exists after create (and sync)");
        o.delete().forPath(p);
        ev2.awaitCount(1, 5000);
        sleep(300);
        eq(List.of("NodeDeleted " + p), ev2.describe(), "events of a one-shot exists watch on a present node");
    }

    static void watchChildrenOnce(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        a.create().creatingParentsIfNeeded().forPath(c.base);
        Events ev = new Events();
        ok(a.getChildren().usingWatcher(ev).forPath(c.base).isEmpty(), "children present");
        o.create().forPath(c.base + "/c1");
        ev.awaitCount(1, 5000);
        o.create().forPath(c.base + "/c2");
        o.setData().forPath(c.base + "/c1", b("data changes are not child changes"));
        o.delete().forPath(c.base + "/c1");
        sleep(300);
        eq(List.of("NodeChildrenChanged " + c.base), ev.describe(), "events of a one-shot child watch");
        // A child watch on a node that is deleted fires NodeDeleted.
        String q = c.base + "/q";
        o.create().forPath(q);
        syncFor(a, q);
        Events ev2 = new Events();
        a.getChildren().usingWatcher(ev2).forPath(q);
        o.delete().forPath(q);
        ev2.awaitCount(1, 5000);
        sleep(300);
        eq(List.of("NodeDeleted " + q), ev2.describe(), "child watch on a deleted node");
    }

    static void watchPersistent(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        String p = c.base + "/p";
        a.create().creatingParentsIfNeeded().forPath(p, b("0"));
        Events ev = new Events();
        a.watchers().add().withMode(AddWatchMode.PERSISTENT).usingWatcher(ev).forPath(p);
        for (int i = 1; i <= 3; i++) {
            o.setData().forPath(p, b("" + i));
            ev.awaitCount(i, 5000);
        }
        o.create().forPath(p + "/c");
        ev.awaitCount(4, 5000);
        o.create().forPath(p + "/c/g"); // grandchild: not this watch's business
        o.setData().forPath(p + "/c", b("child data"));
        o.delete().forPath(p + "/c/g");
        o.delete().forPath(p + "/c");
        ev.awaitCount(5, 5000);
        o.delete().forPath(p);
        ev.awaitCount(6, 5000);
        o.create().forPath(p);
        ev.awaitCount(7, 5000);
        sleep(300);
        eq(List.of("NodeDataChanged " + p, "NodeDataChanged " + p, "NodeDataChanged " + p,
                "NodeChildrenChanged " + p, "NodeChildrenChanged " + p, "NodeDeleted " + p, "NodeCreated " + p),
                ev.describe(), "events of a persistent watch");
    }

    static void watchPersistentRecursive(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        String p = c.base + "/r";
        a.create().creatingParentsIfNeeded().forPath(p);
        Events ev = new Events();
        a.watchers().add().withMode(AddWatchMode.PERSISTENT_RECURSIVE).usingWatcher(ev).forPath(p);
        o.create().forPath(p + "/a");
        ev.awaitCount(1, 5000);
        o.create().forPath(p + "/a/b", b("0"));
        ev.awaitCount(2, 5000);
        o.setData().forPath(p + "/a/b", b("1"));
        ev.awaitCount(3, 5000);
        o.delete().forPath(p + "/a/b");
        ev.awaitCount(4, 5000);
        o.setData().forPath(p, b("top"));
        ev.awaitCount(5, 5000);
        o.create().forPath(c.base + "/sibling"); // outside the watched subtree
        sleep(300);
        eq(List.of("NodeCreated " + p + "/a", "NodeCreated " + p + "/a/b", "NodeDataChanged " + p + "/a/b",
                "NodeDeleted " + p + "/a/b", "NodeDataChanged " + p),
                ev.describe(), "events of a persistent recursive watch (no NodeChildrenChanged)");
    }

    static void watchRemove(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        String p = c.base + "/w";
        a.create().creatingParentsIfNeeded().forPath(p, b("0"));
        Events pers = new Events();
        a.watchers().add().withMode(AddWatchMode.PERSISTENT).usingWatcher(pers).forPath(p);
        o.setData().forPath(p, b("1"));
        pers.awaitCount(1, 5000);
        a.watchers().remove(pers).forPath(p);
        Events once = new Events();
        a.getData().usingWatcher(once).forPath(p);
        a.watchers().remove(once).ofType(Watcher.WatcherType.Data).forPath(p);
        o.setData().forPath(p, b("2"));
        sleep(500);
        eq(List.of("NodeDataChanged " + p, "PersistentWatchRemoved " + p), pers.describe(),
                "persistent watch events (removed after the first)");
        eq(List.of("DataWatchRemoved " + p), once.describe(), "one-shot watch after removeWatches");
        expect(KeeperException.NoWatcherException.class, "removing a watch that is not there",
                () -> a.watchers().remove(once).ofType(Watcher.WatcherType.Data).forPath(p));
    }

    // ---------------------------------------------------------------------------------------
    // ACLs

    static final String ALICE = "alice:secret";

    static List<ACL> aliceOnly() throws Exception {
        return List.of(new ACL(ZooDefs.Perms.ALL, new Id("digest", DigestAuthenticationProvider.generateDigest(ALICE))));
    }

    static void aclDigestAuth(Ctx c) throws Exception {
        CuratorFramework alice = c.client(connect, true, ALICE).cf;
        String p = c.base + "/secret";
        alice.create().creatingParentsIfNeeded().forPath(c.base);
        alice.create().withACL(aliceOnly()).forPath(p, b("s"));
        eq("s", s(alice.getData().forPath(p)), "owner reads");
        alice.setData().forPath(p, b("t"));
        List<ACL> acl = alice.getACL().forPath(p);
        eq(aliceOnly(), acl, "ACL read back");
        alice.create().withACL(ZooDefs.Ids.CREATOR_ALL_ACL).forPath(c.base + "/creator", b("c"));
        List<ACL> cacl = alice.getACL().forPath(c.base + "/creator");
        eq(aliceOnly(), cacl, "CREATOR_ALL_ACL expands to the creator's digest identity");
        // Adding the credentials mid-session (addauth) grants access on the same session.
        Client late = c.client();
        syncFor(late.cf, p);
        expect(KeeperException.NoAuthException.class, "read before addauth", () -> late.cf.getData().forPath(p));
        late.zk().addAuthInfo("digest", b(ALICE));
        syncFor(late.cf, p);
        eq("t", s(late.cf.getData().forPath(p)), "read after addauth");
    }

    static void aclNoAuthOthers(Ctx c) throws Exception {
        CuratorFramework alice = c.client(connect, true, ALICE).cf;
        CuratorFramework anon = c.client().cf;
        CuratorFramework wrong = c.client(connect, true, "alice:wrong").cf;
        String p = c.base + "/secret";
        alice.create().creatingParentsIfNeeded().forPath(c.base);
        alice.create().withACL(aliceOnly()).forPath(p, b("s"));
        alice.create().withACL(ZooDefs.Ids.READ_ACL_UNSAFE).forPath(c.base + "/readonly", b("r"));
        for (CuratorFramework x : List.of(anon, wrong)) {
            syncFor(x, c.base);
            expect(KeeperException.NoAuthException.class, "getData without rights", () -> x.getData().forPath(p));
            expect(KeeperException.NoAuthException.class, "setData without rights", () -> x.setData().forPath(p, b("x")));
            expect(KeeperException.NoAuthException.class, "create child without rights", () -> x.create().forPath(p + "/c"));
            expect(KeeperException.NoAuthException.class, "getChildren without rights", () -> x.getChildren().forPath(p));
        }
        // world:anyone READ only: everyone reads, nobody writes.
        String ro = c.base + "/readonly";
        eq("r", s(anon.getData().forPath(ro)), "read of a world-readable node");
        expect(KeeperException.NoAuthException.class, "write of a read-only node", () -> anon.setData().forPath(ro, b("x")));
        expect(KeeperException.NoAuthException.class, "setACL without ADMIN",
                () -> anon.setACL().withACL(ZooDefs.Ids.OPEN_ACL_UNSAFE).forPath(ro));
        eq("s", s(alice.getData().forPath(p)), "owner still reads");
    }

    static void aclExistsUnreadable(Ctx c) throws Exception {
        CuratorFramework alice = c.client(connect, true, ALICE).cf;
        CuratorFramework anon = c.client().cf;
        String p = c.base + "/hidden";
        alice.create().creatingParentsIfNeeded().forPath(c.base);
        alice.create().withACL(aliceOnly()).forPath(p, b("12345"));
        alice.setData().forPath(p, b("123456"));
        Stat own = alice.checkExists().forPath(p);
        syncFor(anon, p);
        Stat st = anon.checkExists().forPath(p); // exists needs no permission
        ok(st != null, "exists on an unreadable node returned null");
        eq(own.getVersion(), st.getVersion(), "version seen by the unauthorised client");
        eq(6, st.getDataLength(), "dataLength seen by the unauthorised client");
        eq(List.of("hidden"), anon.getChildren().forPath(c.base), "listing of the open parent");
    }

    // ---------------------------------------------------------------------------------------
    // Container and TTL nodes (the server runs with extendedTypesEnabled and a 1 s container check)

    static void containerNode(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        a.create().creatingParentsIfNeeded().forPath(c.base);
        String ct = c.base + "/ct";
        String never = c.base + "/never-had-children";
        a.create().withMode(CreateMode.CONTAINER).forPath(ct);
        a.create().withMode(CreateMode.CONTAINER).forPath(never);
        a.create().forPath(ct + "/child");
        sleep(2500);
        ok(a.checkExists().forPath(ct) != null, "container with a child was removed");
        a.delete().forPath(ct + "/child");
        eventually(15000, "empty container removed", () -> a.checkExists().forPath(ct) == null);
        sleep(2500);
        ok(a.checkExists().forPath(never) != null, "a container that never had children was removed");
    }

    static void ttlNode(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        a.create().creatingParentsIfNeeded().forPath(c.base);
        String p = c.base + "/ttl";
        a.create().withTtl(1000).withMode(CreateMode.PERSISTENT_WITH_TTL).forPath(p, b("t"));
        String sp = a.create().withTtl(1000).withMode(CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL).forPath(c.base + "/sttl-");
        ok(sp.matches(".*/sttl-\\d{10}"), "sequential TTL name %s", sp);
        Stat st = a.checkExists().forPath(p);
        ok(st != null, "TTL node not created");
        String keep = c.base + "/ttl-with-child";
        a.create().withTtl(1000).withMode(CreateMode.PERSISTENT_WITH_TTL).forPath(keep);
        a.create().forPath(keep + "/child");
        eventually(15000, "TTL node removed after its TTL", () -> a.checkExists().forPath(p) == null);
        eventually(15000, "sequential TTL node removed after its TTL", () -> a.checkExists().forPath(sp) == null);
        ok(a.checkExists().forPath(keep) != null, "a TTL node with a child was removed");
    }

    // ---------------------------------------------------------------------------------------
    // Locks and semaphores

    static void mutexExclusive(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        String p = c.base + "/lock";
        InterProcessMutex ma = new InterProcessMutex(a, p);
        InterProcessMutex mb = new InterProcessMutex(o, p);
        ok(ma.acquire(5, TimeUnit.SECONDS), "A could not acquire a free lock");
        ok(ma.isAcquiredInThisProcess(), "A does not think it holds the lock");
        ok(!mb.acquire(1, TimeUnit.SECONDS), "B acquired a lock A holds");
        syncFor(a, p);
        eq(1, ma.getParticipantNodes().size(), "lock nodes after B gave up");
        ma.release();
        ok(mb.acquire(5, TimeUnit.SECONDS), "B could not acquire after A released");
        ok(!ma.acquire(500, TimeUnit.MILLISECONDS), "A acquired a lock B holds");
        mb.release();
        eventually(3000, "no lock nodes left", () -> ma.getParticipantNodes().isEmpty());
    }

    static void mutexReentrant(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        String p = c.base + "/lock";
        InterProcessMutex ma = new InterProcessMutex(a, p);
        InterProcessMutex mb = new InterProcessMutex(o, p);
        ok(ma.acquire(5, TimeUnit.SECONDS), "first acquire");
        ok(ma.acquire(5, TimeUnit.SECONDS), "re-entrant acquire");
        eq(1, ma.getParticipantNodes().size(), "lock nodes for a re-entered lock");
        ma.release();
        ok(!mb.acquire(700, TimeUnit.MILLISECONDS), "B acquired while A still holds one level");
        ma.release();
        ok(mb.acquire(5, TimeUnit.SECONDS), "B could not acquire after A's last release");
        mb.release();
    }

    static void mutexContend(Ctx c) throws Exception {
        String p = c.base + "/lock";
        String counter = c.base + "/counter";
        Client a = c.client();
        Client o = c.client();
        a.cf.create().creatingParentsIfNeeded().forPath(counter, b("0"));
        AtomicInteger holders = new AtomicInteger();
        AtomicInteger overlaps = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(6);
        c.own(pool::shutdownNow);
        List<Future<?>> fs = new ArrayList<>();
        for (int t = 0; t < 6; t++) {
            CuratorFramework cf = (t % 2 == 0 ? a : o).cf;
            fs.add(pool.submit(() -> {
                InterProcessMutex m = new InterProcessMutex(cf, p);
                for (int i = 0; i < 5; i++) {
                    ok(m.acquire(20, TimeUnit.SECONDS), "acquire timed out");
                    try {
                        if (holders.incrementAndGet() > 1) overlaps.incrementAndGet();
                        int v = Integer.parseInt(s(cf.getData().forPath(counter)));
                        Thread.sleep(2);
                        cf.setData().forPath(counter, b("" + (v + 1)));
                    } finally {
                        holders.decrementAndGet();
                        m.release();
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : fs) f.get();
        eq(0, overlaps.get(), "times two holders overlapped");
        eq("30", s(a.cf.getData().forPath(counter)), "counter after 30 locked read-modify-writes");
    }

    static void mutexReleaseOnClose(Ctx c) throws Exception {
        Client a = c.client();
        CuratorFramework o = c.client().cf;
        String p = c.base + "/lock";
        InterProcessMutex ma = new InterProcessMutex(a.cf, p);
        InterProcessMutex mb = new InterProcessMutex(o, p);
        ok(ma.acquire(5, TimeUnit.SECONDS), "A acquire");
        ExecutorService pool = Executors.newSingleThreadExecutor();
        c.own(pool::shutdownNow);
        Future<Boolean> got = pool.submit(() -> mb.acquire(20, TimeUnit.SECONDS));
        sleep(500);
        ok(!got.isDone(), "B got the lock while A held it");
        long t0 = System.nanoTime();
        a.close(); // ends A's session; its lock node is ephemeral
        ok(got.get(10, TimeUnit.SECONDS), "B did not get the lock after A's session closed");
        note("B acquired %d ms after A's close", (System.nanoTime() - t0) / 1_000_000);
        pool.submit(() -> {
            mb.release(); // a mutex is owned by the thread that acquired it
            return null;
        }).get(10, TimeUnit.SECONDS);
    }

    static void semaphoreLeases(Ctx c) throws Exception {
        Client a = c.client();
        CuratorFramework o = c.client().cf;
        String p = c.base + "/sem";
        InterProcessSemaphoreV2 sa = new InterProcessSemaphoreV2(a.cf, p, 3);
        InterProcessSemaphoreV2 sb = new InterProcessSemaphoreV2(o, p, 3);
        Collection<Lease> la = sa.acquire(2, 5, TimeUnit.SECONDS);
        ok(la != null && la.size() == 2, "A could not take 2 of 3 leases");
        Lease lb = sb.acquire(5, TimeUnit.SECONDS);
        ok(lb != null, "B could not take the third lease");
        ok(sb.acquire(1, TimeUnit.SECONDS) == null, "B took a fourth lease of three");
        eq(3, sb.getParticipantNodes().size(), "lease nodes");
        Lease first = la.iterator().next();
        sa.returnLease(first);
        Lease lb2 = sb.acquire(5, TimeUnit.SECONDS);
        ok(lb2 != null, "B could not take a returned lease");
        a.close(); // A's remaining lease goes with its session
        Lease lb3 = sb.acquire(10, TimeUnit.SECONDS);
        ok(lb3 != null, "B could not take the lease of A's closed session");
        ok(sb.acquire(500, TimeUnit.MILLISECONDS) == null, "more than 3 leases");
        sb.returnAll(List.of(lb, lb2, lb3));
        eventually(3000, "no lease nodes left", () -> sb.getParticipantNodes().isEmpty());
    }

    static void readWriteLock(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework b2 = c.client().cf;
        CuratorFramework w = c.client().cf;
        String p = c.base + "/rw";
        InterProcessReadWriteLock la = new InterProcessReadWriteLock(a, p);
        InterProcessReadWriteLock lb = new InterProcessReadWriteLock(b2, p);
        InterProcessReadWriteLock lw = new InterProcessReadWriteLock(w, p);
        ok(la.readLock().acquire(5, TimeUnit.SECONDS), "reader A");
        ok(lb.readLock().acquire(5, TimeUnit.SECONDS), "reader B (read locks are shared)");
        ok(!lw.writeLock().acquire(700, TimeUnit.MILLISECONDS), "writer got in with two readers");
        la.readLock().release();
        lb.readLock().release();
        ok(lw.writeLock().acquire(5, TimeUnit.SECONDS), "writer after readers left");
        ok(!la.readLock().acquire(700, TimeUnit.MILLISECONDS), "reader got in with a writer");
        ok(lw.readLock().acquire(5, TimeUnit.SECONDS), "writer could not take the read lock (downgrade)");
        lw.writeLock().release();
        ok(la.readLock().acquire(5, TimeUnit.SECONDS), "reader after the writer downgraded");
        ok(!lb.writeLock().acquire(500, TimeUnit.MILLISECONDS), "second writer got in with readers");
        la.readLock().release();
        lw.readLock().release();
        ok(lb.writeLock().acquire(5, TimeUnit.SECONDS), "writer B after everyone left");
        lb.writeLock().release();
    }

    // ---------------------------------------------------------------------------------------
    // Leader election

    static int leaderIndex(List<LeaderLatch> latches) {
        int idx = -1;
        for (int i = 0; i < latches.size(); i++) {
            if (latches.get(i).getState() == LeaderLatch.State.STARTED && latches.get(i).hasLeadership()) {
                if (idx >= 0) return -2;
                idx = i;
            }
        }
        return idx;
    }

    static void leaderLatchOne(Ctx c) throws Exception {
        String p = c.base + "/latch";
        List<LeaderLatch> latches = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            LeaderLatch l = c.own(new LeaderLatch(c.client().cf, p, "id" + i));
            latches.add(l);
            l.start();
        }
        eventually(10000, "one leader among 3", () -> leaderIndex(latches) >= 0);
        sleep(500);
        int li = leaderIndex(latches);
        ok(li >= 0, "leadership count changed: %d", li);
        for (LeaderLatch l : latches) {
            eq("id" + li, l.getLeader().getId(), "leader as seen by " + l.getId());
            eq(3, l.getParticipants().size(), "participants seen by " + l.getId());
        }
    }

    static void leaderLatchReelection(Ctx c) throws Exception {
        String p = c.base + "/latch";
        List<Client> clients = new ArrayList<>();
        List<LeaderLatch> latches = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            Client cl = c.client();
            clients.add(cl);
            LeaderLatch l = c.own(new LeaderLatch(cl.cf, p, "id" + i));
            latches.add(l);
            l.start();
        }
        eventually(10000, "first leader", () -> leaderIndex(latches) >= 0);
        int first = leaderIndex(latches);
        // The leader's process goes away: its session closes and its latch node with it.
        clients.get(first).close();
        List<LeaderLatch> rest = new ArrayList<>(latches);
        rest.remove(first);
        eventually(10000, "a new leader after the leader's session closed", () -> leaderIndex(rest) >= 0);
        int second = leaderIndex(rest);
        eq(rest.get(second).getId(), rest.get(1 - second).getLeader().getId(), "leader seen by the other");
        // The new leader steps down politely (latch.close()): the last one takes over.
        rest.get(second).close();
        LeaderLatch last = rest.get(1 - second);
        ok(last.await(10, TimeUnit.SECONDS), "last latch never became leader");
        eq(1, last.getParticipants().size(), "participants left");
    }

    static void leaderSelector(Ctx c) throws Exception {
        String p = c.base + "/sel";
        AtomicInteger active = new AtomicInteger();
        AtomicInteger maxActive = new AtomicInteger();
        List<String> terms = new CopyOnWriteArrayList<>();
        for (int i = 0; i < 3; i++) {
            String id = "s" + i;
            LeaderSelector sel = new LeaderSelector(c.client().cf, p, new LeaderSelectorListenerAdapter() {
                @Override
                public void takeLeadership(CuratorFramework client) throws Exception {
                    int now = active.incrementAndGet();
                    maxActive.accumulateAndGet(now, Math::max);
                    terms.add(id);
                    try {
                        Thread.sleep(150);
                    } finally {
                        active.decrementAndGet();
                    }
                }
            });
            sel.setId(id);
            sel.autoRequeue();
            c.own(sel);
            sel.start();
        }
        eventually(20000, "9 terms of leadership", () -> terms.size() >= 9);
        eq(1, maxActive.get(), "most leaders at the same time");
        eq(Set.of("s0", "s1", "s2"), new HashSet<>(terms), "selectors that led");
    }

    // ---------------------------------------------------------------------------------------
    // Queues

    static final QueueSerializer<String> STRINGS = new QueueSerializer<>() {
        @Override
        public byte[] serialize(String item) {
            return b(item);
        }

        @Override
        public String deserialize(byte[] bytes) {
            return s(bytes);
        }
    };

    static QueueConsumer<String> collector(List<String> sink) {
        return new QueueConsumer<>() {
            @Override
            public void consumeMessage(String message) {
                sink.add(message);
            }

            @Override
            public void stateChanged(CuratorFramework client, ConnectionState newState) {
            }
        };
    }

    static void distributedQueue(Ctx c) throws Exception {
        String p = c.base + "/q";
        DistributedQueue<String> producer = c.own(QueueBuilder.builder(c.client().cf, null, STRINGS, p).buildQueue());
        producer.start();
        List<String> sent = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            sent.add("m" + i);
            producer.put("m" + i);
        }
        List<String> got = new CopyOnWriteArrayList<>();
        DistributedQueue<String> consumer = c.own(QueueBuilder.builder(c.client().cf, collector(got), STRINGS, p).buildQueue());
        consumer.start();
        eventually(10000, "20 items consumed, have " + got.size(), () -> got.size() >= 20);
        sleep(300);
        eq(sent, got, "consumed items (FIFO, each once)");
        eventually(3000, "queue nodes deleted", () -> c.client().cf.getChildren().forPath(p).isEmpty());
    }

    static void distributedPriorityQueue(Ctx c) throws Exception {
        String p = c.base + "/pq";
        DistributedPriorityQueue<String> producer = c.own(QueueBuilder.builder(c.client().cf, null, STRINGS, p).buildPriorityQueue(0));
        producer.start();
        List<Integer> prios = new ArrayList<>();
        for (int i = 0; i < 10; i++) prios.add(i * 3 - 10);
        Collections.shuffle(prios, new Random(11));
        for (int pr : prios) producer.put("p" + pr, pr);
        // put() creates its node in the background: a consumer started before every put has
        // landed sees the first items alone and rightly consumes them first (seen on
        // Apache ZooKeeper under load, "p-10, p-7, p2, ...").
        if (!producer.flushPuts(10, TimeUnit.SECONDS)) throw new CheckFailed("puts not flushed within 10 s");
        List<String> got = new CopyOnWriteArrayList<>();
        DistributedPriorityQueue<String> consumer = c.own(QueueBuilder.builder(c.client().cf, collector(got), STRINGS, p).buildPriorityQueue(0));
        consumer.start();
        eventually(10000, "10 items consumed, have " + got.size(), () -> got.size() >= 10);
        List<Integer> sorted = new ArrayList<>(prios);
        Collections.sort(sorted);
        List<String> want = new ArrayList<>();
        for (int pr : sorted) want.add("p" + pr);
        eq(want, got, "consumption order (lowest priority value first)");
    }

    static void distributedQueueTwoConsumers(Ctx c) throws Exception {
        String p = c.base + "/q";
        List<String> got1 = new CopyOnWriteArrayList<>();
        List<String> got2 = new CopyOnWriteArrayList<>();
        c.own(QueueBuilder.builder(c.client().cf, collector(got1), STRINGS, p).buildQueue()).start();
        c.own(QueueBuilder.builder(c.client().cf, collector(got2), STRINGS, p).buildQueue()).start();
        DistributedQueue<String> producer = c.own(QueueBuilder.builder(c.client().cf, null, STRINGS, p).buildQueue());
        producer.start();
        Set<String> sent = new HashSet<>();
        for (int i = 0; i < 30; i++) {
            sent.add("x" + i);
            producer.put("x" + i);
        }
        eventually(15000, "30 items consumed", () -> got1.size() + got2.size() >= 30);
        sleep(500);
        List<String> all = new ArrayList<>(got1);
        all.addAll(got2);
        eq(30, all.size(), "items consumed in total (none twice)");
        eq(sent, new HashSet<>(all), "items consumed");
    }

    // ---------------------------------------------------------------------------------------
    // Barriers

    static void barrier(Ctx c) throws Exception {
        String p = c.base + "/barrier";
        DistributedBarrier setter = new DistributedBarrier(c.client().cf, p);
        setter.setBarrier();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        c.own(pool::shutdownNow);
        List<Future<Boolean>> waits = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            DistributedBarrier w = new DistributedBarrier(c.client().cf, p);
            waits.add(pool.submit(() -> w.waitOnBarrier(20, TimeUnit.SECONDS)));
        }
        sleep(700);
        for (Future<Boolean> f : waits) ok(!f.isDone(), "a waiter passed a barrier that is set");
        setter.removeBarrier();
        for (Future<Boolean> f : waits) ok(f.get(10, TimeUnit.SECONDS), "waiter not released by removeBarrier");
        ok(new DistributedBarrier(c.client().cf, p).waitOnBarrier(1, TimeUnit.SECONDS), "a removed barrier still blocks");
    }

    static void doubleBarrier(Ctx c) throws Exception {
        String p = c.base + "/dbl";
        ExecutorService pool = Executors.newFixedThreadPool(3);
        c.own(pool::shutdownNow);
        List<DistributedDoubleBarrier> members = new ArrayList<>();
        for (int i = 0; i < 3; i++) members.add(new DistributedDoubleBarrier(c.client().cf, p, 3));
        List<Future<Boolean>> enters = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            DistributedDoubleBarrier m = members.get(i);
            enters.add(pool.submit(() -> m.enter(20, TimeUnit.SECONDS)));
        }
        sleep(800);
        for (Future<Boolean> f : enters) ok(!f.isDone(), "entered with 2 of 3 members");
        enters.add(pool.submit(() -> members.get(2).enter(20, TimeUnit.SECONDS)));
        for (Future<Boolean> f : enters) ok(f.get(10, TimeUnit.SECONDS), "enter did not complete with 3 members");
        List<Future<Boolean>> leaves = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            DistributedDoubleBarrier m = members.get(i);
            leaves.add(pool.submit(() -> m.leave(20, TimeUnit.SECONDS)));
        }
        sleep(800);
        for (Future<Boolean> f : leaves) ok(!f.isDone(), "left while a member was still inside");
        leaves.add(pool.submit(() -> members.get(2).leave(20, TimeUnit.SECONDS)));
        for (Future<Boolean> f : leaves) ok(f.get(10, TimeUnit.SECONDS), "leave did not complete");
    }

    // ---------------------------------------------------------------------------------------
    // Caches

    static String await(BlockingQueue<String> q, String what) throws Exception {
        String e = q.poll(5, TimeUnit.SECONDS);
        if (e == null) throw new CheckFailed("no cache event within 5 s; expected " + what);
        return e;
    }

    static void curatorCache(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        a.create().creatingParentsIfNeeded().forPath(c.base + "/pre", b("p"));
        BlockingQueue<String> ev = new LinkedBlockingQueue<>();
        CountDownLatch init = new CountDownLatch(1);
        CuratorCache cache = c.own(CuratorCache.build(a, c.base));
        cache.listenable().addListener(CuratorCacheListener.builder()
                .forCreates(d -> ev.add("CREATE " + d.getPath() + " " + s(d.getData())))
                .forChanges((old, d) -> ev.add("CHANGE " + d.getPath() + " " + s(old.getData()) + "->" + s(d.getData())))
                .forDeletes(d -> ev.add("DELETE " + d.getPath()))
                .forInitialized(init::countDown)
                .build());
        cache.start();
        ok(init.await(10, TimeUnit.SECONDS), "cache never initialised");
        Set<String> initial = new HashSet<>();
        ev.drainTo(initial);
        eq(Set.of("CREATE " + c.base + " ", "CREATE " + c.base + "/pre p"), initial, "initial events");
        String n = c.base + "/a";
        o.create().forPath(n, b("1"));
        eq("CREATE " + n + " 1", await(ev, "create"), "event for create");
        o.setData().forPath(n, b("2"));
        eq("CHANGE " + n + " 1->2", await(ev, "change"), "event for setData");
        eq("2", cache.get(n).map(d -> s(d.getData())).orElse(null), "cached data");
        o.delete().forPath(n);
        eq("DELETE " + n, await(ev, "delete"), "event for delete");
        ok(cache.get(n).isEmpty(), "deleted node still cached");
        eq(2, cache.size(), "cache size");
    }

    static void treeCache(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        a.create().creatingParentsIfNeeded().forPath(c.base + "/x/y", b("0"));
        BlockingQueue<String> ev = new LinkedBlockingQueue<>();
        TreeCache cache = c.own(TreeCache.newBuilder(a, c.base).build());
        cache.getListenable().addListener((cl, e) -> {
            if (e.getType() == TreeCacheEvent.Type.INITIALIZED) ev.add("INITIALIZED");
            else if (e.getData() != null) ev.add(e.getType() + " " + e.getData().getPath());
        });
        cache.start();
        List<String> initial = new ArrayList<>();
        while (true) {
            String e = await(ev, "initial events");
            if (e.equals("INITIALIZED")) break;
            initial.add(e);
        }
        eq(Set.of("NODE_ADDED " + c.base, "NODE_ADDED " + c.base + "/x", "NODE_ADDED " + c.base + "/x/y"),
                new HashSet<>(initial), "initial events");
        o.create().forPath(c.base + "/x/z");
        eq("NODE_ADDED " + c.base + "/x/z", await(ev, "added"), "event for a grandchild create");
        o.setData().forPath(c.base + "/x/y", b("1"));
        eq("NODE_UPDATED " + c.base + "/x/y", await(ev, "updated"), "event for setData");
        eq("1", s(cache.getCurrentData(c.base + "/x/y").getData()), "cached data");
        o.delete().forPath(c.base + "/x/z");
        eq("NODE_REMOVED " + c.base + "/x/z", await(ev, "removed"), "event for delete");
        eq(Set.of("y"), cache.getCurrentChildren(c.base + "/x").keySet(), "cached children");
    }

    @SuppressWarnings("deprecation")
    static void nodeCache(Ctx c) throws Exception {
        CuratorFramework a = c.client().cf;
        CuratorFramework o = c.client().cf;
        String n = c.base + "/n";
        a.create().creatingParentsIfNeeded().forPath(c.base);
        NodeCache cache = c.own(new NodeCache(a, n));
        BlockingQueue<String> ev = new LinkedBlockingQueue<>();
        cache.getListenable().addListener(() -> {
            ChildData d = cache.getCurrentData();
            ev.add(d == null ? "<none>" : s(d.getData()));
        });
        cache.start(true);
        ok(cache.getCurrentData() == null, "missing node cached");
        o.create().forPath(n, b("a"));
        eq("a", await(ev, "create"), "cached data after create");
        o.setData().forPath(n, b("b"));
        eq("b", await(ev, "update"), "cached data after setData");
        o.delete().forPath(n);
        eq("<none>", await(ev, "delete"), "cached data after delete");
    }

    // ---------------------------------------------------------------------------------------
    // PersistentNode, shared counters

    static void persistentNodeRecreated(Ctx c) throws Exception {
        Client a = c.client();
        CuratorFramework o = c.client().cf;
        String p = c.base + "/pn";
        PersistentNode pn = c.own(new PersistentNode(a.cf, CreateMode.EPHEMERAL, false, p, b("alive")));
        pn.start();
        ok(pn.waitForInitialCreate(10, TimeUnit.SECONDS), "PersistentNode not created");
        long s1 = a.session();
        syncFor(o, p);
        eq(s1, o.checkExists().forPath(p).getEphemeralOwner(), "owner of the ephemeral");
        killSession(a, hostPortOf(a.port()));
        eventually(20000, "node re-created by a new session", () -> {
            Stat st = o.checkExists().forPath(p);
            return st != null && st.getEphemeralOwner() != s1 && st.getEphemeralOwner() == a.session();
        });
        eq("alive", s(o.getData().forPath(p)), "data of the re-created node");
        ok(a.states.count(KeeperState.Expired, 0) >= 1, "client never saw Expired: %s", a.states.since(0));
    }

    static void sharedCountCas(Ctx c) throws Exception {
        String p = c.base + "/count";
        SharedCount ca = c.own(new SharedCount(c.client().cf, p, 0));
        SharedCount cb = c.own(new SharedCount(c.client().cf, p, 0));
        List<Integer> seenByB = new CopyOnWriteArrayList<>();
        cb.addListener(new SharedCountListener() {
            @Override
            public void countHasChanged(SharedCountReader r, int n) {
                seenByB.add(n);
            }

            @Override
            public void stateChanged(CuratorFramework client, ConnectionState s) {
            }
        });
        ca.start();
        cb.start();
        VersionedValue<Integer> va = ca.getVersionedValue();
        VersionedValue<Integer> vb = cb.getVersionedValue();
        eq(0, va.getValue(), "seed");
        ok(ca.trySetCount(va, 5), "A's CAS from the current version failed");
        eventually(5000, "B's listener sees 5", () -> seenByB.contains(5));
        eq(5, cb.getCount(), "B's count");
        ok(!cb.trySetCount(vb, 7), "B's CAS with a stale version succeeded");
        eq(5, ca.getCount(), "count after a failed CAS");
        ok(cb.trySetCount(cb.getVersionedValue(), 7), "B's CAS with a fresh version failed");
        eventually(5000, "A sees 7", () -> ca.getCount() == 7);
    }

    static void atomicLong(Ctx c) throws Exception {
        String p = c.base + "/long";
        List<DistributedAtomicLong> counters = new ArrayList<>();
        List<CuratorFramework> clients = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            clients.add(c.client().cf);
            counters.add(new DistributedAtomicLong(clients.get(i), p, new RetryNTimes(200, 5)));
        }
        ExecutorService pool = Executors.newFixedThreadPool(4);
        c.own(pool::shutdownNow);
        List<Future<?>> fs = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            DistributedAtomicLong ctr = counters.get(t % 2);
            fs.add(pool.submit(() -> {
                for (int i = 0; i < 10; i++) {
                    AtomicValue<Long> v = ctr.increment();
                    ok(v.succeeded(), "increment did not succeed");
                    ok(v.postValue() == v.preValue() + 1, "post %d after pre %d", v.postValue(), v.preValue());
                }
                return null;
            }));
        }
        for (Future<?> f : fs) f.get();
        syncFor(clients.get(1), p);
        eq(40L, counters.get(1).get().postValue(), "value after 40 increments");
        ok(counters.get(0).compareAndSet(40L, 100L).succeeded(), "CAS 40->100");
        syncFor(clients.get(1), p);
        ok(!counters.get(1).compareAndSet(40L, 1L).succeeded(), "CAS from a stale value succeeded");
        eq(100L, counters.get(1).get().postValue(), "value after CAS");
    }

    // ---------------------------------------------------------------------------------------
    // Sessions, reconnects, failover

    static void sessionExpiry(Ctx c, boolean otherMember) throws Exception {
        Client a = c.client();
        CuratorFramework o = c.client().cf;
        String p = c.base + "/eph";
        a.cf.create().creatingParentsIfNeeded().withMode(CreateMode.EPHEMERAL).forPath(p, b("e"));
        long s1 = a.session();
        int port = a.port();
        int mark = a.states.size();
        String via = otherMember ? otherThan(port) : hostPortOf(port);
        note("client 0x%x on port %d; ending its session through %s", s1, port, via);
        killSession(a, via);
        ok(a.states.await(KeeperState.Expired, mark, 20000), "client never saw Expired; states: %s", a.states.since(mark));
        eventually(10000, "the expired session's ephemeral is gone", () -> o.checkExists().forPath(p) == null);
        eventually(10000, "Curator reports LOST", () -> a.curatorStates.contains(ConnectionState.LOST));
        ok(a.cf.blockUntilConnected(15, TimeUnit.SECONDS), "Curator did not reconnect after expiry");
        long s2 = a.session();
        ok(s2 != s1 && s2 != 0, "same session id after expiry: 0x%x", s2);
        a.cf.create().withMode(CreateMode.EPHEMERAL).forPath(p, b("again"));
        syncFor(o, p);
        eq(s2, o.checkExists().forPath(p).getEphemeralOwner(), "owner of the new ephemeral");
    }

    /** Watches of every kind survive a reconnect to a restarted (standalone) or surviving
     * (ensemble) server; the session is kept; the connection does not cycle. */
    static void reconnectWithWatches(Ctx c) throws Exception {
        reconnectWithWatches(c, false);
    }

    static void reconnectWithWatches(Ctx c, boolean graceful) throws Exception {
        Client a = c.client();
        String d = c.base + "/data", missing = c.base + "/missing", parent = c.base + "/parent", pers = c.base + "/pers";
        a.cf.create().creatingParentsIfNeeded().forPath(d, b("0"));
        a.cf.create().forPath(parent);
        a.cf.create().forPath(pers, b("0"));
        Events dataW = new Events(), existsW = new Events(), childW = new Events(), persW = new Events();
        a.cf.getData().usingWatcher(dataW).forPath(d);
        ok(a.cf.checkExists().usingWatcher(existsW).forPath(missing) == null, "missing node exists");
        a.cf.getChildren().usingWatcher(childW).forPath(parent);
        a.cf.watchers().add().withMode(AddWatchMode.PERSISTENT).usingWatcher(persW).forPath(pers);
        long sid = a.session();
        int port = a.port();
        int mark = a.states.size();
        boolean ensemble = servers.size() > 1;
        note("session 0x%x on port %d; %s%s", sid, port, graceful ? "graceful (SIGTERM) " : "SIGKILL ",
                ensemble ? "stop of that member" : "restart of the server");
        try {
            ctl((ensemble ? (graceful ? "stop " : "kill ") : (graceful ? "graceful-restart " : "restart ")) + port);
            ok(a.states.await(KeeperState.Disconnected, mark, 10000), "no Disconnected event");
            ok(a.states.await(KeeperState.SyncConnected, mark, 30000), "no reconnect within 30 s; states: %s", a.states.since(mark));
            eq(sid, a.session(), "session id after reconnect");
            eventually(10000, "a request succeeds after reconnect", () -> a.cf.checkExists().forPath(d) != null);
            if (ensemble) ok(a.port() != port, "client reports the killed member's port %d", port);
            // Changes made after the reconnect, from a client that did not exist before it.
            CuratorFramework o = c.client().cf;
            o.setData().forPath(d, b("1"));
            o.create().forPath(missing);
            o.create().forPath(parent + "/child");
            o.setData().forPath(pers, b("1"));
            o.setData().forPath(pers, b("2"));
            dataW.awaitCount(1, 10000);
            existsW.awaitCount(1, 10000);
            childW.awaitCount(1, 10000);
            persW.awaitCount(2, 10000);
            sleep(3000); // room for a reconnect loop to show
            eq(List.of("NodeDataChanged " + d), dataW.describe(), "data watch events");
            eq(List.of("NodeCreated " + missing), existsW.describe(), "exists watch events");
            eq(List.of("NodeChildrenChanged " + parent), childW.describe(), "child watch events");
            eq(List.of("NodeDataChanged " + pers, "NodeDataChanged " + pers), persW.describe(), "persistent watch events");
            List<KeeperState> seen = a.states.since(mark);
            int connects = a.states.count(KeeperState.SyncConnected, mark);
            note("connection states after the outage: %s", seen);
            ok(a.states.count(KeeperState.Expired, mark) == 0, "session expired: %s", seen);
            ok(connects <= 2, "%d SyncConnected events (reconnect loop?): %s", connects, seen);
            ok(seen.get(seen.size() - 1) == KeeperState.SyncConnected, "not connected at the end: %s", seen);
            eq(sid, a.session(), "session id at the end");
        } finally {
            if (ensemble) ctl("start " + port);
        }
    }

    /** A client with 2,000 data watches on long paths (several SetWatches packets of at most
     * 128 KB) keeps all of them across a reconnect. */
    static void reconnectWithManyWatches(Ctx c) throws Exception {
        Client a = c.client();
        ZooKeeper z = a.zk();
        String dir = c.base + "/" + "d".repeat(40);
        a.cf.create().creatingParentsIfNeeded().forPath(dir);
        int n = 2000;
        List<String> paths = new ArrayList<>();
        for (int i = 0; i < n; i++) paths.add(dir + "/a-node-with-a-fairly-long-name-so-that-setwatches-needs-several-packets-" + i);
        CountDownLatch created = new CountDownLatch(n);
        AtomicInteger createErrors = new AtomicInteger();
        for (String p : paths)
            z.create(p, b("0"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, (rc, path, ctx, name) -> {
                if (rc != 0) createErrors.incrementAndGet();
                created.countDown();
            }, null);
        ok(created.await(30, TimeUnit.SECONDS), "creates did not finish");
        eq(0, createErrors.get(), "create errors");
        Set<String> fired = java.util.concurrent.ConcurrentHashMap.newKeySet();
        Watcher w = e -> {
            if (e.getType() == EventType.NodeDataChanged) fired.add(e.getPath());
        };
        CountDownLatch watched = new CountDownLatch(n);
        for (String p : paths) z.getData(p, w, (rc, path, ctx, data, stat) -> watched.countDown(), null);
        ok(watched.await(30, TimeUnit.SECONDS), "watch registration did not finish");
        long sid = a.session();
        int port = a.port();
        int mark = a.states.size();
        boolean ensemble = servers.size() > 1;
        try {
            ctl((ensemble ? "kill " : "restart ") + port);
            ok(a.states.await(KeeperState.SyncConnected, mark, 30000), "no reconnect; states: %s", a.states.since(mark));
            eq(sid, a.session(), "session id after reconnect");
            CuratorFramework o = c.client().cf;
            ZooKeeper oz = o.getZookeeperClient().getZooKeeper();
            CountDownLatch set = new CountDownLatch(n);
            for (String p : paths) oz.setData(p, b("1"), -1, (rc, path, ctx, stat) -> set.countDown(), null);
            ok(set.await(30, TimeUnit.SECONDS), "setData calls did not finish");
            eventually(20000, "all " + n + " watches fired (have " + fired.size() + ")", () -> fired.size() >= n);
            sleep(1000);
            List<KeeperState> seen = a.states.since(mark);
            note("connection states: %s", seen);
            ok(a.states.count(KeeperState.SyncConnected, mark) <= 2, "reconnect cycles: %s", seen);
            ok(seen.get(seen.size() - 1) == KeeperState.SyncConnected, "not connected at the end: %s", seen);
        } finally {
            if (ensemble) ctl("start " + port);
        }
    }

    /** 3 members: a client pinned to one member loses it; meanwhile its watched nodes change
     * through the other members; when the member is back the client reconnects with its session
     * and the one-shot watches fire for what it missed (SetWatches with the client's last zxid). */
    static void missedEventsAfterReconnect(Ctx c) throws Exception {
        String hp = servers.get(0);
        int port = Integer.parseInt(hp.substring(hp.lastIndexOf(':') + 1));
        Client a = c.client(hp, false, null, 30000);
        CuratorFramework o = c.client(allBut(port), false, null).cf;
        String d = c.base + "/data", gone = c.base + "/gone", missing = c.base + "/missing", parent = c.base + "/parent",
                pers = c.base + "/pers";
        a.cf.create().creatingParentsIfNeeded().forPath(d, b("0"));
        a.cf.create().forPath(gone);
        a.cf.create().forPath(parent);
        a.cf.create().forPath(pers);
        Events dataW = new Events(), goneW = new Events(), existsW = new Events(), childW = new Events(), persW = new Events();
        a.cf.getData().usingWatcher(dataW).forPath(d);
        a.cf.getData().usingWatcher(goneW).forPath(gone);
        ok(a.cf.checkExists().usingWatcher(existsW).forPath(missing) == null, "missing exists");
        a.cf.getChildren().usingWatcher(childW).forPath(parent);
        a.cf.watchers().add().withMode(AddWatchMode.PERSISTENT).usingWatcher(persW).forPath(pers);
        long sid = a.session();
        int mark = a.states.size();
        try {
            ctl("kill " + port);
            ok(a.states.await(KeeperState.Disconnected, mark, 10000), "no Disconnected");
            syncFor(o, c.base);
            o.setData().forPath(d, b("1"));
            o.delete().forPath(gone);
            o.create().forPath(missing);
            o.create().forPath(parent + "/child");
            ctl("start " + port);
            ok(a.states.await(KeeperState.SyncConnected, mark, 30000), "no reconnect; states: %s", a.states.since(mark));
            eq(sid, a.session(), "session id after reconnect");
            dataW.awaitCount(1, 10000);
            goneW.awaitCount(1, 10000);
            existsW.awaitCount(1, 10000);
            childW.awaitCount(1, 10000);
            eq(List.of("NodeDataChanged " + d), dataW.describe(), "missed data change");
            eq(List.of("NodeDeleted " + gone), goneW.describe(), "missed delete");
            eq(List.of("NodeCreated " + missing), existsW.describe(), "missed create");
            eq(List.of("NodeChildrenChanged " + parent), childW.describe(), "missed child change");
            int before = persW.list.size();
            o.setData().forPath(pers, b("after"));
            persW.awaitCount(before + 1, 10000);
            eq("NodeDataChanged " + pers, persW.describe().get(persW.list.size() - 1), "persistent watch after reconnect");
        } finally {
            ctl("start " + port);
        }
    }

    /** 3 members: the member a client is on goes down and the client cannot reach another one
     * (its connect string names only that member). The session times out on the rest of the
     * ensemble (ephemeral deleted, watchers told); when the member is back the client learns
     * that its session expired. */
    static void sessionExpiresWhilePartitioned(Ctx c) throws Exception {
        String hp = servers.get(1);
        int port = Integer.parseInt(hp.substring(hp.lastIndexOf(':') + 1));
        StateLog states = new StateLog();
        CountDownLatch l = new CountDownLatch(1);
        ZooKeeper z = new ZooKeeper(hp, 4000, e -> {
            if (e.getType() == EventType.None) states.add(e.getState());
            if (e.getState() == KeeperState.SyncConnected) l.countDown();
        });
        c.own(z::close);
        ok(l.await(10, TimeUnit.SECONDS), "pinned handle did not connect");
        eq(4000, z.getSessionTimeout(), "negotiated timeout");
        CuratorFramework o = c.client(allBut(port), false, null).cf;
        o.create().creatingParentsIfNeeded().forPath(c.base);
        String p = c.base + "/eph";
        z.create(p, b("x"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        syncFor(o, p);
        Events ev = new Events();
        ok(o.checkExists().usingWatcher(ev).forPath(p) != null, "ephemeral not visible");
        int mark = states.size();
        try {
            long t0 = System.nanoTime();
            ctl("kill " + port);
            ev.awaitCount(1, 25000);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            note("ephemeral of the cut-off session (timeout 4000 ms) deleted %d ms after its member died", ms);
            eq(List.of("NodeDeleted " + p), ev.describe(), "watch on the cut-off session's ephemeral");
            ok(ms >= 2000, "session ended %d ms after its member died, well before its 4000 ms timeout", ms);
            ctl("start " + port);
            ok(states.await(KeeperState.Expired, mark, 20000), "client never told its session expired; states: %s",
                    states.since(mark));
        } finally {
            ctl("start " + port);
        }
    }

    /** 3 members: a member restarts while the client writes elsewhere; the client then moves to
     * that member (updateServerList). The member must not serve the client a state older than
     * what the client has already seen: its own last write is readable at once. */
    static void readYourWritesAfterMovingMember(Ctx c) throws Exception {
        // Both are followers, so the ensemble keeps its leader throughout.
        int leader = Integer.parseInt(ctl("leader 0").split(" ")[1]);
        List<String> followers = new ArrayList<>();
        for (String x : servers) if (!x.endsWith(":" + leader)) followers.add(x);
        String home = followers.get(0), lagging = followers.get(1);
        int lagPort = Integer.parseInt(lagging.substring(lagging.lastIndexOf(':') + 1));
        StateLog states = new StateLog();
        CountDownLatch l = new CountDownLatch(1);
        ZooKeeper z = new ZooKeeper(home, 30000, e -> {
            if (e.getType() == EventType.None) states.add(e.getState());
            if (e.getState() == KeeperState.SyncConnected) l.countDown();
        });
        c.own(z::close);
        ok(l.await(10, TimeUnit.SECONDS), "handle did not connect");
        String dir = c.base;
        CuratorFramework setup = c.client().cf;
        setup.create().creatingParentsIfNeeded().forPath(dir);
        try {
            ctl("kill " + lagPort);
            byte[] payload = new byte[8000];
            int n = 300;
            CountDownLatch done = new CountDownLatch(n);
            AtomicInteger errs = new AtomicInteger();
            for (int i = 0; i < n; i++)
                z.create(dir + "/n" + i, payload, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, (rc, path, ctx, name) -> {
                    if (rc != 0) errs.incrementAndGet();
                    done.countDown();
                }, null);
            ok(done.await(30, TimeUnit.SECONDS), "writes did not finish");
            eq(0, errs.get(), "write errors");
            String last = dir + "/last";
            z.create(last, b("mine"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            int mark = states.size();
            ctl("start " + lagPort);
            z.updateServerList(lagging); // the client must move: its member is not in the new list
            // updateServerList only closes the socket; a request wakes the send thread so the move
            // happens now rather than at the next ping (its own result is ConnectionLoss).
            z.exists(last, false, (rc, path, ctx, stat) -> { }, null);
            ok(states.await(KeeperState.SyncConnected, mark, 30000), "no reconnect to the restarted member; states: %s",
                    states.since(mark));
            Stat st = z.exists(last, false);
            ok(st != null, "the restarted member served the client a state without the client's own last write");
            eq(n + 1, z.getChildren(dir, false).size(), "children seen on the restarted member");
        } finally {
            ctl("start " + lagPort);
        }
    }

    /** 3 members: kill -9 the member the client is on; session, ephemeral and lock survive. */
    static void failoverKill9(Ctx c) throws Exception {
        Client a = c.client();
        String eph = c.base + "/eph", data = c.base + "/data", lock = c.base + "/lock";
        a.cf.create().creatingParentsIfNeeded().withMode(CreateMode.EPHEMERAL).forPath(eph, b("e"));
        a.cf.create().forPath(data, b("0"));
        InterProcessMutex ma = new InterProcessMutex(a.cf, lock);
        ok(ma.acquire(5, TimeUnit.SECONDS), "A acquire");
        long sid = a.session();
        int port = a.port();
        Client o = c.client(allBut(port), false, null); // observer on the members that stay up
        InterProcessMutex mo = new InterProcessMutex(o.cf, lock);
        int mark = a.states.size();
        note("session 0x%x on port %d; kill -9 of that member", sid, port);
        try {
            ctl("kill " + port);
            ok(a.states.await(KeeperState.Disconnected, mark, 10000), "no Disconnected event");
            ok(a.states.await(KeeperState.SyncConnected, mark, 30000), "no reconnect within 30 s; states: %s", a.states.since(mark));
            eq(sid, a.session(), "session id after failover");
            ok(a.port() != port, "still on the killed member?");
            for (int i = 1; i <= 5; i++) a.cf.setData().forPath(data, b("" + i));
            syncFor(o.cf, data);
            eq("5", s(o.cf.getData().forPath(data)), "observer reads A's writes");
            Stat st = o.cf.checkExists().forPath(eph);
            ok(st != null, "A's ephemeral vanished in the failover");
            eq(sid, st.getEphemeralOwner(), "ephemeral owner");
            ok(ma.isAcquiredInThisProcess(), "A lost its lock");
            ok(!mo.acquire(1500, TimeUnit.MILLISECONDS), "observer acquired the lock A holds");
            ma.release();
            ok(mo.acquire(10, TimeUnit.SECONDS), "observer could not acquire after A released");
            mo.release();
            List<KeeperState> seen = a.states.since(mark);
            note("connection states after the kill: %s", seen);
            ok(a.states.count(KeeperState.Expired, mark) == 0, "session expired: %s", seen);
            ok(a.states.count(KeeperState.SyncConnected, mark) <= 2, "reconnect cycles: %s", seen);
            ok(!a.curatorStates.contains(ConnectionState.LOST), "Curator reported LOST: %s", a.curatorStates);
            a.close();
            eventually(5000, "the ephemeral is deleted when the failed-over session closes",
                    () -> o.cf.checkExists().forPath(eph) == null);
        } finally {
            ctl("start " + port);
        }
    }

    /** 3 members: the leader loses both followers (kill -9). It must stop serving: its client is
     * disconnected and no new session is accepted. When the followers come back the client
     * reconnects with the same session. */
    static void quorumLoss(Ctx c) throws Exception {
        int leader = Integer.parseInt(ctl("leader 0").split(" ")[1]);
        Client a = c.client(hostPortOf(leader), false, null, 40000); // pinned; the longest session allowed
        String p = c.base + "/v";
        a.cf.create().creatingParentsIfNeeded().forPath(p, b("1"));
        long sid = a.session();
        int mark = a.states.size();
        List<Integer> others = new ArrayList<>();
        for (String hp : servers) {
            int port = Integer.parseInt(hp.substring(hp.lastIndexOf(':') + 1));
            if (port != leader) others.add(port);
        }
        note("session 0x%x on the leader (port %d); kill -9 of %s", sid, leader, others);
        try {
            long t0 = System.nanoTime();
            for (int port : others) ctl("kill " + port);
            ok(a.states.await(KeeperState.Disconnected, mark, 15000),
                    "the leader kept serving its client 15 s after losing both followers; states: %s", a.states.since(mark));
            note("client disconnected %d ms after the kills", (System.nanoTime() - t0) / 1_000_000);
            CountDownLatch fresh = new CountDownLatch(1);
            ZooKeeper probe = new ZooKeeper(hostPortOf(leader), 10000, e -> {
                if (e.getState() == KeeperState.SyncConnected) fresh.countDown();
            });
            try {
                ok(!fresh.await(3, TimeUnit.SECONDS), "a member without a quorum accepted a new session");
            } finally {
                probe.close();
            }
            for (int port : others) ctl("start " + port);
            ok(a.states.await(KeeperState.SyncConnected, mark, 30000), "no reconnect after the quorum came back; states: %s",
                    a.states.since(mark));
            eq(sid, a.session(), "session id after the outage");
            eq("1", s(a.cf.getData().forPath(p)), "data after the outage");
            a.cf.setData().forPath(p, b("2"));
            ok(a.states.count(KeeperState.Expired, mark) == 0, "session expired: %s", a.states.since(mark));
        } finally {
            for (int port : others) ctl("start " + port);
        }
    }

    // ---------------------------------------------------------------------------------------

    static List<Check> checks() {
        List<Check> l = new ArrayList<>();
        l.add(new Check("crud_basic", 30, 1, CuratorChecks::crudBasic));
        l.add(new Check("sequential_nodes", 30, 1, CuratorChecks::sequentialNodes));
        l.add(new Check("ephemeral_sequential", 30, 1, CuratorChecks::ephemeralSequential));
        l.add(new Check("getchildren_order_independent", 30, 1, CuratorChecks::getChildrenUnordered));
        l.add(new Check("sync_then_read", 30, 1, CuratorChecks::syncRead));
        l.add(new Check("ephemerals_and_all_children_number", 30, 1, CuratorChecks::ephemeralsAndChildCount));
        l.add(new Check("multi_read", 30, 1, CuratorChecks::multiRead));
        l.add(new Check("stat_fields", 30, 1, CuratorChecks::statFields));
        l.add(new Check("large_node_data", 30, 1, CuratorChecks::largeNodeData));
        l.add(new Check("chroot_connect_string", 30, 1, CuratorChecks::chrootConnectString));
        l.add(new Check("watch_event_before_new_data", 30, 1, CuratorChecks::watchEventBeforeNewData));
        l.add(new Check("ensemble_config", 30, 3, CuratorChecks::ensembleConfig));
        l.add(new Check("txn_all_or_nothing", 30, 1, CuratorChecks::txnAllOrNothing));
        l.add(new Check("txn_results", 30, 1, CuratorChecks::txnResults));
        l.add(new Check("multi_with_check", 30, 1, CuratorChecks::multiWithCheck));
        l.add(new Check("multi_create_modes", 40, 1, CuratorChecks::multiCreateModes));
        l.add(new Check("watch_getdata_once", 30, 1, CuratorChecks::watchDataOnce));
        l.add(new Check("watch_exists_once", 30, 1, CuratorChecks::watchExistsOnce));
        l.add(new Check("watch_getchildren_once", 30, 1, CuratorChecks::watchChildrenOnce));
        l.add(new Check("watch_persistent", 30, 1, CuratorChecks::watchPersistent));
        l.add(new Check("watch_persistent_recursive", 30, 1, CuratorChecks::watchPersistentRecursive));
        l.add(new Check("watch_remove", 30, 1, CuratorChecks::watchRemove));
        l.add(new Check("acl_digest_auth", 30, 1, CuratorChecks::aclDigestAuth));
        l.add(new Check("acl_noauth_for_others", 30, 1, CuratorChecks::aclNoAuthOthers));
        l.add(new Check("acl_exists_on_unreadable_node", 30, 1, CuratorChecks::aclExistsUnreadable));
        l.add(new Check("container_node", 40, 1, CuratorChecks::containerNode));
        l.add(new Check("ttl_node", 40, 1, CuratorChecks::ttlNode));
        l.add(new Check("mutex_exclusive", 30, 1, CuratorChecks::mutexExclusive));
        l.add(new Check("mutex_reentrant", 30, 1, CuratorChecks::mutexReentrant));
        l.add(new Check("mutex_two_clients_contend", 60, 1, CuratorChecks::mutexContend));
        l.add(new Check("mutex_release_on_session_close", 30, 1, CuratorChecks::mutexReleaseOnClose));
        l.add(new Check("semaphore_v2_leases", 30, 1, CuratorChecks::semaphoreLeases));
        l.add(new Check("read_write_lock", 30, 1, CuratorChecks::readWriteLock));
        l.add(new Check("leader_latch_one_leader", 30, 1, CuratorChecks::leaderLatchOne));
        l.add(new Check("leader_latch_reelection", 30, 1, CuratorChecks::leaderLatchReelection));
        l.add(new Check("leader_selector", 40, 1, CuratorChecks::leaderSelector));
        l.add(new Check("distributed_queue", 30, 1, CuratorChecks::distributedQueue));
        l.add(new Check("distributed_priority_queue", 30, 1, CuratorChecks::distributedPriorityQueue));
        l.add(new Check("distributed_queue_two_consumers", 30, 1, CuratorChecks::distributedQueueTwoConsumers));
        l.add(new Check("barrier", 30, 1, CuratorChecks::barrier));
        l.add(new Check("double_barrier", 30, 1, CuratorChecks::doubleBarrier));
        l.add(new Check("curator_cache_events", 30, 1, CuratorChecks::curatorCache));
        l.add(new Check("tree_cache_events", 30, 1, CuratorChecks::treeCache));
        l.add(new Check("node_cache_events", 30, 1, CuratorChecks::nodeCache));
        l.add(new Check("shared_count_cas", 30, 1, CuratorChecks::sharedCountCas));
        l.add(new Check("distributed_atomic_long", 40, 1, CuratorChecks::atomicLong));
        l.add(new Check("persistent_node_recreated_after_expiry", 40, 1, CuratorChecks::persistentNodeRecreated));
        l.add(new Check("session_timeout_negotiation", 30, 1, CuratorChecks::sessionTimeoutNegotiation));
        l.add(new Check("crashed_client_session_times_out", 40, 1, CuratorChecks::crashedClientSessionTimesOut));
        l.add(new Check("session_expiry", 40, 1, c -> sessionExpiry(c, false)));
        l.add(new Check("session_expiry_via_other_member", 40, 3, c -> sessionExpiry(c, true)));
        l.add(new Check("reconnect_with_watches", 75, 1, CuratorChecks::reconnectWithWatches));
        l.add(new Check("reconnect_with_watches_graceful", 75, 1, c -> reconnectWithWatches(c, true)));
        l.add(new Check("reconnect_with_2000_watches", 90, 1, CuratorChecks::reconnectWithManyWatches));
        l.add(new Check("missed_events_fire_after_reconnect", 75, 3, CuratorChecks::missedEventsAfterReconnect));
        l.add(new Check("session_expires_while_partitioned", 75, 3, CuratorChecks::sessionExpiresWhilePartitioned));
        l.add(new Check("read_your_writes_after_moving_member", 75, 3, CuratorChecks::readYourWritesAfterMovingMember));
        l.add(new Check("failover_kill9_connected_member", 75, 3, CuratorChecks::failoverKill9));
        l.add(new Check("quorum_loss_leader_stops_serving", 90, 3, CuratorChecks::quorumLoss));
        return l;
    }

    static String oneLine(Throwable t) {
        String m = t instanceof CheckFailed ? t.getMessage() : t.getClass().getName() + ": " + t.getMessage();
        return m == null ? "" : m.replace('\n', ' ').replace('\r', ' ');
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 4 && args[0].equals("--hold")) {
            hold(args[1], args[2], Integer.parseInt(args[3]));
            return;
        }
        Set<String> only = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--servers" -> servers = Arrays.asList(args[++i].split(","));
                case "--only" -> only = new HashSet<>(Arrays.asList(args[++i].split(",")));
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        connect = String.join(",", servers);
        List<Check> plan = new ArrayList<>();
        for (Check ch : checks())
            if (servers.size() >= ch.minSize() && (only == null || only.contains(ch.name()))) plan.add(ch);
        StringBuilder sb = new StringBuilder("PLAN");
        for (Check ch : plan) sb.append(' ').append(ch.name());
        OUT.println(sb);
        OUT.flush();

        // The checks' own root, created once.
        Ctx setup = new Ctx("setup");
        try {
            setup.client().cf.create().creatingParentsIfNeeded().forPath("/cc");
        } catch (KeeperException.NodeExistsException e) {
            // fine
        } catch (Throwable t) {
            LOG.println("[check] setup: could not create /cc: " + t); // every check will say why
        } finally {
            setup.closeAll();
        }

        for (Check ch : plan) {
            Ctx ctx = new Ctx(ch.name());
            AtomicReference<Throwable> error = new AtomicReference<>();
            LOG.println("=== BEGIN " + ch.name());
            LOG.flush();
            long t0 = System.nanoTime();
            Thread th = new Thread(() -> {
                try {
                    ch.body().run(ctx);
                } catch (Throwable t) {
                    error.set(t);
                }
            }, "check-" + ch.name());
            th.setDaemon(true);
            th.start();
            th.join(ch.timeoutSec() * 1000L);
            boolean timedOut = th.isAlive();
            if (timedOut) {
                StringWriter sw = new StringWriter();
                for (StackTraceElement e : th.getStackTrace()) sw.append("    at ").append(e.toString()).append('\n');
                LOG.println("[check] " + ch.name() + " timed out; its thread was at:\n" + sw);
                th.interrupt();
            }
            ctx.closeAll();
            if (timedOut) th.join(5000);
            double secs = (System.nanoTime() - t0) / 1e9;
            Throwable err = error.get();
            String status;
            String reason = "";
            if (timedOut) {
                status = "FAIL";
                reason = "timed out after " + ch.timeoutSec() + " s";
            } else if (err != null) {
                status = "FAIL";
                reason = oneLine(err);
                StringWriter sw = new StringWriter();
                err.printStackTrace(new PrintWriter(sw));
                LOG.println("[check] " + ch.name() + " failed: " + sw);
            } else {
                status = "PASS";
            }
            LOG.println("=== END " + ch.name() + " " + status);
            LOG.flush();
            OUT.printf("RESULT %s %s %.2f %s%n", status, ch.name(), secs, reason);
            OUT.flush();
            if (servers.size() > 1) {
                try {
                    ctl("ensure 0");
                } catch (Exception e) {
                    LOG.println("[check] ensure failed: " + e);
                }
            }
        }
        OUT.println("DONE");
        OUT.flush();
        System.exit(0);
    }
}
