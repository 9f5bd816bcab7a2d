#!/usr/bin/env python3
"""The email benchmark's SMTP server (aiosmtpd) over TCP: accepts every message, stores
nothing, and counts.

    receiver.py --spool DIR [--port 0]

Listens on 127.0.0.1, prints one JSON line {"port": N} when ready, and writes the count of
accepted messages to DIR/count every 100 messages and when it stops (SIGTERM).
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class Counter:
    def __init__(self, spool: str):
        self.spool = spool
        self.accepted = 0

    def write_count(self) -> None:
        partial = os.path.join(self.spool, "count.partial")
        with open(partial, "w") as f:
            f.write(str(self.accepted))
        os.replace(partial, os.path.join(self.spool, "count"))

    async def handle_DATA(self, server, session, envelope):
        self.accepted += 1
        if self.accepted % 100 == 0:
            self.write_count()
        return "250 2.0.0 OK: queued"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spool", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.spool, exist_ok=True)
    counter = Counter(args.spool)

    port = args.port
    if port == 0:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]

    class Quiet(Controller):
        def factory(self):
            return SMTP(self.handler, hostname="receiver.test", ident="setia bench receiver")

    controller = Quiet(counter, hostname="127.0.0.1", port=port)
    controller.start()
    print(json.dumps({"port": port}), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        threading.Event().wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        counter.write_count()
        controller.stop()


if __name__ == "__main__":
    main()
