// The JDK's own GSSAPI SASL client (what ZooKeeper's Java client uses), logged in from a key table,
// driven over stdin/stdout by tests/gssapi.rs. Run as a single-file program with
// -Djava.security.krb5.conf=<the KDC's krb5.conf>.
//
// Usage: JdkGssapiClient KEYTAB CLIENT_PRINCIPAL PROTOCOL SERVER_NAME [AUTHZID]
// Input lines:  "STEP <base64 token>" (empty for the initial response);
// output lines: "OK <base64 token>[ complete]" or "ERR <message>".

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.security.PrivilegedExceptionAction;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import javax.security.auth.Subject;
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.Configuration;
import javax.security.auth.login.LoginContext;
import javax.security.sasl.Sasl;
import javax.security.sasl.SaslClient;

public class JdkGssapiClient {
    public static void main(String[] args) throws Exception {
        String keytab = args[0];
        String principal = args[1];
        String authzid = args.length > 4 ? args[4] : null;
        Map<String, String> options = new HashMap<>();
        options.put("useKeyTab", "true");
        options.put("keyTab", keytab);
        options.put("principal", principal);
        options.put("storeKey", "false");
        options.put("useTicketCache", "false");
        options.put("doNotPrompt", "true");
        options.put("isInitiator", "true");
        Configuration config = new Configuration() {
            @Override
            public AppConfigurationEntry[] getAppConfigurationEntry(String name) {
                return new AppConfigurationEntry[] {new AppConfigurationEntry(
                        "com.sun.security.auth.module.Krb5LoginModule",
                        AppConfigurationEntry.LoginModuleControlFlag.REQUIRED, options)};
            }
        };
        LoginContext login = new LoginContext("Client", new Subject(), null, config);
        login.login();
        Subject subject = login.getSubject();
        Map<String, String> props = new HashMap<>();
        props.put(Sasl.QOP, "auth");
        SaslClient client = Subject.doAs(subject, (PrivilegedExceptionAction<SaslClient>) () ->
                Sasl.createSaslClient(new String[] {"GSSAPI"}, authzid, args[2], args[3], props, null));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            try {
                if (!line.startsWith("STEP")) {
                    throw new IllegalArgumentException("unknown command " + line);
                }
                byte[] token = Base64.getDecoder().decode(line.substring(4).trim());
                byte[] out = Subject.doAs(subject, (PrivilegedExceptionAction<byte[]>) () ->
                        client.evaluateChallenge(token));
                System.out.println("OK " + Base64.getEncoder().encodeToString(out == null ? new byte[0] : out)
                        + (client.isComplete() ? " complete" : ""));
            } catch (Exception e) {
                System.out.println("ERR " + e.toString().replace('\n', ' '));
            }
            System.out.flush();
        }
    }
}
