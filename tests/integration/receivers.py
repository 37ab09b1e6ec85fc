"""Real receivers a test starts on loopback: a StatsD UDP listener and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller

from tests.local_services import free_port


@dataclass
class StatsdReceiver:
    """Collects StatsD lines (`name:value|type`) sent to 127.0.0.1:`port`."""

    port: int
    lines: list[str] = field(default_factory=list)

    def values(self, name: str) -> list[float]:
        """Every value received for one metric name (prefix included)."""
        found = []
        for line in self.lines:
            metric, _, rest = line.partition(":")
            if metric == name:
                found.append(float(rest.split("|")[0]))
        return found

    def names(self) -> set[str]:
        return {line.partition(":")[0] for line in self.lines}


@contextmanager
def statsd_receiver() -> Iterator[StatsdReceiver]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    receiver = StatsdReceiver(sock.getsockname()[1])
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            receiver.lines.extend(line for line in data.decode().splitlines() if line)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


@dataclass
class SmtpReceiver:
    port: int
    mailbox: _Mailbox

    @property
    def messages(self) -> list[Message]:
        return self.mailbox.messages

    def connection(self) -> str:
        """An Airflow connection (JSON) to this server: plain SMTP, no login, a sender address."""
        extra = {"from_email": "crm-sync@localhost", "disable_tls": True, "disable_ssl": True, "timeout": 10}
        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.port, "extra": extra})


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpReceiver(controller.port, mailbox)
    finally:
        controller.stop()


def body_text(message: Message) -> str:
    """The decoded text of every part of a mail."""
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        part.get_payload(decode=True).decode(errors="replace")
        for part in parts
        if part.get_content_maintype() == "text"
    )
