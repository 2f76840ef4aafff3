"""kazoo's Kerberos SASL client (pure-sasl GSSAPI over pykerberos) driven over stdin/stdout by
tests/gssapi.rs. Credentials come from the ticket cache in KRB5CCNAME, the KDC from KRB5_CONFIG.

Usage: pure_sasl_gssapi_client.py SERVICE HOST [AUTHZID]
Input lines:  "STEP <base64 token>" -> process a server token (empty for the first step)
Output lines: "OK <base64 token>" or "ERR <message>"; "COMPLETE" after a step that completed.
"""
import base64
import sys

from puresasl.client import SASLClient


def main():
    service, host = sys.argv[1:3]
    authzid = sys.argv[3] if len(sys.argv) > 3 else None
    client = SASLClient(host, service=service, mechanism="GSSAPI", authorization_id=authzid)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        try:
            if cmd != "STEP":
                raise ValueError("unknown command " + cmd)
            out = client.process(base64.b64decode(arg))
            done = " COMPLETE" if client.complete else ""
            print("OK " + base64.b64encode(out or b"").decode() + done, flush=True)
        except Exception as e:  # reported to the Rust side, which decides
            print("ERR " + repr(e).replace("\n", " "), flush=True)


if __name__ == "__main__":
    main()
