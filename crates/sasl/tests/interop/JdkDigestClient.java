// The JDK's own DIGEST-MD5 SASL client (what ZooKeeper's Java client uses), driven over
// stdin/stdout by tests/interop.rs. Run as a single-file program: `java JdkDigestClient.java ...`.
//
// Usage: JdkDigestClient USER PASSWORD PROTOCOL SERVER_NAME [AUTHZID]
// Input lines:  "STEP <base64 token>"; output lines: "OK <base64 token>" or "ERR <message>".

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Base64;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.NameCallback;
import javax.security.auth.callback.PasswordCallback;
import javax.security.sasl.RealmCallback;
import javax.security.sasl.RealmChoiceCallback;
import javax.security.sasl.Sasl;
import javax.security.sasl.SaslClient;

public class JdkDigestClient {
    public static void main(String[] args) throws Exception {
        String user = args[0];
        char[] password = args[1].toCharArray();
        String authzid = args.length > 4 ? args[4] : null;
        SaslClient client = Sasl.createSaslClient(new String[] {"DIGEST-MD5"}, authzid, args[2], args[3], null,
                callbacks -> {
                    for (Callback cb : callbacks) {
                        if (cb instanceof NameCallback) {
                            ((NameCallback) cb).setName(user);
                        } else if (cb instanceof PasswordCallback) {
                            ((PasswordCallback) cb).setPassword(password);
                        } else if (cb instanceof RealmCallback) {
                            RealmCallback rc = (RealmCallback) cb;
                            rc.setText(rc.getDefaultText());
                        } else if (cb instanceof RealmChoiceCallback) {
                            ((RealmChoiceCallback) cb).setSelectedIndex(0);
                        }
                    }
                });
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            try {
                if (!line.startsWith("STEP ")) {
                    throw new IllegalArgumentException("unknown command " + line);
                }
                byte[] out = client.evaluateChallenge(Base64.getDecoder().decode(line.substring(5).trim()));
                System.out.println("OK " + Base64.getEncoder().encodeToString(out == null ? new byte[0] : out)
                        + (client.isComplete() ? " complete" : ""));
            } catch (Exception e) {
                System.out.println("ERR " + e.toString().replace('\n', ' '));
            }
            System.out.flush();
        }
    }
}
