"""The container image's HEALTHCHECK: exit 0 when memcloud's `/readyz` answers 200.

It asks the API port of this container's own server (MEMCLOUD_API_PORT, default 11280) on
the address it binds (MEMCLOUD_HOST; a wildcard means loopback), over HTTPS when
MEMCLOUD_TLS_CERT is set. Standard library only: it runs on the image's system python3.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def readyz_url() -> str:
    host = os.environ.get("MEMCLOUD_HOST", "127.0.0.1")
    host = WILDCARDS.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    port = os.environ.get("MEMCLOUD_API_PORT", "11280")
    scheme = "https" if os.environ.get("MEMCLOUD_TLS_CERT") else "http"
    return f"{scheme}://{host}:{port}/readyz"


def main() -> int:
    # The probe asks its own server on its own address: the certificate names the public
    # host, not this one, so it is not verified (nothing secret is sent or read).
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = readyz_url()
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as answer:
            print(answer.read().decode(errors="replace"))
            return 0
    except urllib.error.HTTPError as error:  # 503 with the reasons
        print(f"{url}: {error.code} {error.read().decode(errors='replace')}")
    except OSError as error:
        print(f"{url}: {error}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
