#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) over TCP for setia's tests, controllable for fault
injection.

    receiver.py --spool DIR [--port 0] [--replies 451,451,550,stall,...] [--count-only]

Listens on 127.0.0.1, prints one JSON line {"port": N} when ready, and answers each
message's DATA with the next entry of --replies (then 250 for ever):

    250    accept: the message is stored as DIR/NNNNNN.eml and DIR/NNNNNN.json
    4xx    a temporary failure, e.g. 451 (nothing stored)
    5xx    a permanent failure, e.g. 550 (nothing stored)
    stall  store the message as accepted, then never answer (a client that dies now has
           had its message accepted but never heard so)

Every answer is appended to DIR/log.jsonl. The JSON file of a stored message holds its
headers and its decoded text, HTML and attachment parts, so tests need no MIME parser.
--count-only stores nothing and writes the count of accepted messages to DIR/count
(for benchmarks).
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def parse(raw: bytes) -> dict:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    parsed = {
        "headers": [[k, str(v)] for k, v in message.items()],
        "text": None,
        "html": None,
        "attachments": [],
        "structure": [part.get_content_type() for part in message.walk()],
    }
    for part in message.walk():
        kind = part.get_content_type()
        if part.is_multipart():
            continue
        if kind == "text/plain" and parsed["text"] is None:
            parsed["text"] = part.get_content()
        elif kind == "text/html" and parsed["html"] is None:
            parsed["html"] = part.get_content()
        else:
            payload = part.get_payload(decode=True) or b""
            parsed["attachments"].append(
                {
                    "content_type": kind,
                    "content_id": part.get("Content-ID"),
                    "disposition": part.get_content_disposition(),
                    "size": len(payload),
                    "png_signature": payload[:8] == b"\x89PNG\r\n\x1a\n",
                }
            )
    return parsed


class Handler:
    def __init__(self, spool: str, replies: list, count_only: bool):
        self.spool = spool
        self.replies = replies
        self.count_only = count_only
        self.accepted = 0
        self.lock = threading.Lock()

    def log(self, entry: dict) -> None:
        with open(os.path.join(self.spool, "log.jsonl"), "a") as log:
            log.write(json.dumps(entry) + "\n")

    def store(self, envelope) -> None:
        self.accepted += 1
        if self.count_only:
            if self.accepted % 100 == 0:
                self.write_count()
            return
        name = os.path.join(self.spool, f"{self.accepted:06d}")
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        parsed = parse(raw)
        parsed["mail_from"] = envelope.mail_from
        parsed["rcpt_tos"] = envelope.rcpt_tos
        with open(name + ".eml.partial", "wb") as f:
            f.write(raw)
        os.replace(name + ".eml.partial", name + ".eml")
        with open(name + ".json.partial", "w") as f:
            json.dump(parsed, f)
        os.replace(name + ".json.partial", name + ".json")

    def write_count(self) -> None:
        with open(os.path.join(self.spool, "count.partial"), "w") as f:
            f.write(str(self.accepted))
        os.replace(os.path.join(self.spool, "count.partial"), os.path.join(self.spool, "count"))

    async def handle_DATA(self, server, session, envelope):
        reply = self.replies.pop(0) if self.replies else "250"
        if not self.count_only:
            self.log({"reply": reply, "rcpt_tos": envelope.rcpt_tos})
        if reply == "250":
            self.store(envelope)
            return "250 2.0.0 OK: queued"
        if reply == "stall":
            self.store(envelope)
            await asyncio.sleep(3600)
            return "250 2.0.0 OK: queued late"
        if reply.startswith("4"):
            return f"{reply} 4.3.0 Try again later (test receiver)"
        return f"{reply} 5.7.1 Rejected (test receiver)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spool", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--replies", default="")
    parser.add_argument("--count-only", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.spool, exist_ok=True)
    replies = [r.strip() for r in args.replies.split(",") if r.strip()]
    handler = Handler(args.spool, replies, args.count_only)

    port = args.port
    if port == 0:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]

    class Quiet(Controller):
        def factory(self):
            return SMTP(self.handler, hostname="receiver.test", ident="setia test receiver")

    controller = Quiet(handler, hostname="127.0.0.1", port=port)
    controller.start()
    print(json.dumps({"port": port}), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        threading.Event().wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if args.count_only:
            handler.write_count()
        controller.stop()


if __name__ == "__main__":
    main()
