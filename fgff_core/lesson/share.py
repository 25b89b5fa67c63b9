"""The teacher's share link: the lesson's address as the students' browsers can open it.

A teacher who opens the app on the machine that serves it sees ``http://localhost:8501/learn``; that address,
handed to a class, points each student at their own computer. The link is built from the address the teacher's
browser used (``st.context.url``, else the request's ``Host`` header), and a loopback host in it is replaced by
this machine's network address, with a sentence saying so. No Streamlit here.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit, urlunsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


class ShareLink(NamedTuple):
    """The link, and a sentence when its host is not the one the teacher's browser used (else None)."""

    url: str
    note: str | None = None


def network_address() -> str | None:
    """This machine's address on its network (the interface a connection out would leave by), or None when it has
    none. Connecting a UDP socket sends nothing; it only picks the route."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.254.254.254", 1))
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address in LOOPBACK_HOSTS or address.startswith("127.") else address


def share_link(page_url: str | None, host_header: str | None, params: Mapping[str, str],
               lan_address: str | None = None, page_path: str = "/learn") -> ShareLink:
    """The lesson link for ``params``: the scheme, host, port and path of ``page_url`` (the teacher's browser's
    address, without its query), else ``host_header`` with ``page_path``; a loopback host (localhost, 127.0.0.1,
    ::1) becomes ``lan_address``, keeping the port. Without either address the link is relative
    (``/learn?...``)."""
    query = urlencode(dict(params))
    parts = urlsplit(page_url or "")
    if not parts.netloc and host_header:
        parts = urlsplit(f"http://{host_header.strip()}{page_path}")
    if not parts.netloc:
        return ShareLink(f"{page_path}?{query}")
    host, port = parts.hostname or "", parts.port
    netloc, note = parts.netloc, None
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        if lan_address:
            netloc = f"{lan_address}:{port}" if port else lan_address
            note = (f"This browser opened the app as {host}, an address only this computer can use, so the link "
                    f"names this computer's network address, {lan_address}, instead.")
        else:
            note = (f"This link names {host}, which only this computer can open, and no network address of this "
                    "computer was found: put the address students reach it at in its place.")
    return ShareLink(urlunsplit((parts.scheme or "http", netloc, parts.path or page_path, query, "")), note)
