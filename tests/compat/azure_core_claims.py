"""Client compatibility: the Azure SDK for Python's BearerTokenCredentialPolicy (azure-core)
against accessgate's Continuous Access Evaluation claims challenge.

Usage: azure_core_claims.py URL CA_PATH OLD_TOKEN FRESH_TOKEN

A fake credential hands out OLD_TOKEN first. The gateway answers 401 with
`error="insufficient_claims", claims="<base64>"`; azure-core decodes the claims itself and
asks the credential again with `claims=...`, which records them and returns FRESH_TOKEN; the
retried request must get the gateway's 200. Exactly one challenge is allowed.

On success prints the decoded claims (compact JSON) on stdout and exits 0; on any failure
prints why on stderr and exits 1. Run by tests/e2e/client_compat.rs.
"""

import json
import sys
import time

import requests
from azure.core.credentials import AccessToken
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, SansIOHTTPPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

SCOPE = "api://x/.default"


class FakeCredential:
    """A TokenCredential (get_token only, no get_token_info) that records its calls."""

    def __init__(self, old_token, fresh_token):
        self.old_token = old_token
        self.fresh_token = fresh_token
        self.calls = []
        self.claims = None

    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        self.calls.append({"scopes": list(scopes), "claims": claims, "enable_cae": enable_cae})
        expires_on = int(time.time()) + 3600
        if claims is None:
            return AccessToken(self.old_token, expires_on)
        self.claims = json.loads(claims)
        return AccessToken(self.fresh_token, expires_on)


class StatusRecorder(SansIOHTTPPolicy):
    """Sits below the bearer policy: sees every response the transport returns."""

    def __init__(self):
        super().__init__()
        self.statuses = []

    def on_response(self, request, response):
        self.statuses.append(response.http_response.status_code)


def fail(why):
    print(f"azure_core_claims: {why}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 5:
        fail("usage: azure_core_claims.py URL CA_PATH OLD_TOKEN FRESH_TOKEN")
    url, ca_path, old_token, fresh_token = sys.argv[1:]
    cred = FakeCredential(old_token, fresh_token)
    recorder = StatusRecorder()
    session = requests.Session()
    session.trust_env = False  # never route the loopback test through an HTTP(S)_PROXY
    transport = RequestsTransport(session=session, session_owner=True, connection_verify=ca_path)
    policies = [BearerTokenCredentialPolicy(cred, SCOPE, enable_cae=True), recorder]
    with Pipeline(transport=transport, policies=policies) as pipeline:
        response = pipeline.run(HttpRequest("GET", url), connection_timeout=10, read_timeout=20)
    status = response.http_response.status_code
    if status != 200:
        fail(f"final status {status}, body {response.http_response.text()!r}")
    if recorder.statuses != [401, 200]:
        fail(f"expected exactly one challenge then success, saw {recorder.statuses}")
    if len(cred.calls) != 2 or cred.calls[0]["claims"] is not None:
        fail(f"expected one plain then one claims token request, saw {cred.calls}")
    if not all(c["enable_cae"] for c in cred.calls) or any(c["scopes"] != [SCOPE] for c in cred.calls):
        fail(f"token requests did not ask for CAE tokens for {SCOPE}: {cred.calls}")
    if cred.claims is None:
        fail("the credential was never given claims")
    print(json.dumps(cred.claims, separators=(",", ":")))


if __name__ == "__main__":
    main()
