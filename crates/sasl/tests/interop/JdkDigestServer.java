// The JDK's DIGEST-MD5 SASL server, set up as ZooKeeper 3.8 sets it up (users from a map, every
// authorization id authorized), driven over stdin/stdout by tests/interop.rs to compare with
// roost-sasl's server.
//
// Usage: JdkDigestServer PROTOCOL SERVER_NAME USER=PASSWORD...
// Input lines:  "NEW" (a fresh server, as for a new connection) or "STEP <base64 token>"
// Output lines: "OK <base64 token> [<authorization id>]" (the id once complete) or "ERR <message>"

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.CallbackHandler;
import javax.security.auth.callback.NameCallback;
import javax.security.auth.callback.PasswordCallback;
import javax.security.sasl.AuthorizeCallback;
import javax.security.sasl.RealmCallback;
import javax.security.sasl.Sasl;
import javax.security.sasl.SaslServer;

public class JdkDigestServer {
    public static void main(String[] args) throws Exception {
        Map<String, String> users = new HashMap<>();
        for (int i = 2; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            users.put(kv[0], kv[1]);
        }
        CallbackHandler handler = callbacks -> {
            String name = null;
            for (Callback cb : callbacks) {
                if (cb instanceof NameCallback) {
                    name = ((NameCallback) cb).getDefaultName();
                    ((NameCallback) cb).setName(name);
                } else if (cb instanceof PasswordCallback) {
                    String pw = users.get(name);
                    if (pw != null) {
                        ((PasswordCallback) cb).setPassword(pw.toCharArray());
                    }
                } else if (cb instanceof RealmCallback) {
                    RealmCallback rc = (RealmCallback) cb;
                    rc.setText(rc.getDefaultText());
                } else if (cb instanceof AuthorizeCallback) {
                    ((AuthorizeCallback) cb).setAuthorized(true);
                }
            }
        };
        SaslServer server = null;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            try {
                if (line.equals("NEW")) {
                    server = Sasl.createSaslServer("DIGEST-MD5", args[0], args[1], null, handler);
                    System.out.println("OK");
                } else if (line.startsWith("STEP ")) {
                    byte[] out = server.evaluateResponse(Base64.getDecoder().decode(line.substring(5).trim()));
                    System.out.println("OK " + Base64.getEncoder().encodeToString(out == null ? new byte[0] : out)
                            + (server.isComplete() ? " " + server.getAuthorizationID() : ""));
                } else {
                    throw new IllegalArgumentException("unknown command " + line);
                }
            } catch (Exception e) {
                System.out.println("ERR " + e.toString().replace('\n', ' '));
            }
            System.out.flush();
        }
    }
}
