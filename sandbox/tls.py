"""A private CA and loopback server certificate, so the sandbox speaks real, verified HTTPS.

simple-salesforce forces https:// for instance URLs, so the Salesforce sandbox must serve TLS that
`requests` verifies. `requests` lets REQUESTS_CA_BUNDLE win over `session.verify`, so the bundle we
write holds the system CAs plus ours: pointing that variable at it breaks no other HTTPS traffic.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import certifi
import trustme

BUNDLE_MARKER = "# crm-sync sandbox CA bundle"


def _system_ca_file() -> Path:
    """The CA file requests would use now, skipping any sandbox bundle left in the environment."""
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            text = Path(value).read_text(errors="replace")
            if BUNDLE_MARKER not in text:
                return Path(value)
    return Path(certifi.where())


def make_tls(directory: str | os.PathLike[str], extra_hosts: list[str] | None = None) -> tuple[ssl.SSLContext, str]:
    """Create a CA and a cert for 127.0.0.1/localhost (and `extra_hosts`); return the server context and
    the CA bundle path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="crm-sync sandbox")
    cert = ca.issue_cert("127.0.0.1", "localhost", *(extra_hosts or []))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)

    ca_pem = ca.cert_pem.bytes().decode()
    (out / "ca.pem").write_text(ca_pem)
    system = _system_ca_file().read_text()
    bundle = out / "bundle.pem"
    bundle.write_text(f"{system.rstrip()}\n{BUNDLE_MARKER}\n{ca_pem}")
    return context, str(bundle)
