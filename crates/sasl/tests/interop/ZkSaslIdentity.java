// Apache ZooKeeper's own principal mapping (KerberosName and SaslServerCallbackHandler from
// zookeeper.jar), driven over stdin/stdout by tests/interop.rs to cross-check roost-sasl.
// Run as `java -cp zookeeper.jar:slf4j-api.jar [-Djava.security.krb5.realm=R -Djava.security.krb5.kdc=h] ZkSaslIdentity.java`.
//
// Input lines:  "<rules>\t<removeHost>\t<removeRealm>\t<authentication id>"
// Output lines: "<short name or ERR>\t<authorized id ZooKeeper sets, or ERR>"

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HashMap;
import javax.security.auth.callback.Callback;
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.Configuration;
import javax.security.sasl.AuthorizeCallback;
import org.apache.zookeeper.server.auth.KerberosName;
import org.apache.zookeeper.server.auth.SaslServerCallbackHandler;

public class ZkSaslIdentity {
    public static void main(String[] args) throws Exception {
        Configuration jaas = new Configuration() {
            @Override
            public AppConfigurationEntry[] getAppConfigurationEntry(String name) {
                return new AppConfigurationEntry[] {new AppConfigurationEntry("x.Y",
                        AppConfigurationEntry.LoginModuleControlFlag.REQUIRED, new HashMap<String, Object>())};
            }
        };
        SaslServerCallbackHandler handler = new SaslServerCallbackHandler(jaas);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.split("\t", -1);
            System.setProperty("zookeeper.security.auth_to_local", f[0]);
            System.setProperty("zookeeper.kerberos.removeHostFromPrincipal", f[1]);
            System.setProperty("zookeeper.kerberos.removeRealmFromPrincipal", f[2]);
            String shortName;
            try {
                KerberosName.setConfiguration();
                shortName = new KerberosName(f[3]).getShortName();
            } catch (Throwable e) {
                shortName = "ERR " + e.getClass().getSimpleName();
            }
            String id;
            try {
                AuthorizeCallback ac = new AuthorizeCallback(f[3], f[3]);
                handler.handle(new Callback[] {ac});
                id = ac.isAuthorized() ? ac.getAuthorizedID() : "ERR unauthorized";
            } catch (Throwable e) {
                id = "ERR " + e.getClass().getSimpleName();
            }
            System.out.println(shortName + "\t" + id);
            System.out.flush();
        }
    }
}
