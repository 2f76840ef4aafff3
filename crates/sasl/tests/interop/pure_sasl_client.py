"""kazoo's SASL client (pure-sasl DIGEST-MD5) driven over stdin/stdout by tests/interop.rs.

Usage: pure_sasl_client.py USER PASSWORD SERVICE HOST
Input lines:  "STEP <base64 token>" -> process a server token
              "AGAIN"               -> recompute the response (pure-sasl then sends nc=00000002)
Output lines: "OK <base64 token>" or "ERR <message>".
"""
import base64
import sys

from puresasl.client import SASLClient


def main():
    user, password, service, host = sys.argv[1:5]
    client = SASLClient(host, service=service, mechanism="DIGEST-MD5", username=user, password=password)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        try:
            if cmd == "STEP":
                out = client.process(base64.b64decode(arg))
            elif cmd == "AGAIN":
                out = client._chosen_mech.response()
            else:
                raise ValueError("unknown command " + cmd)
            print("OK " + base64.b64encode(out or b"").decode(), flush=True)
        except Exception as e:  # reported to the Rust side, which decides
            print("ERR " + repr(e).replace("\n", " "), flush=True)


if __name__ == "__main__":
    main()
