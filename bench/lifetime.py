"""Bench servers stop by themselves: when their parent closes their stdin, or after a deadline."""
from __future__ import annotations

import os
import sys
import threading


def stop_when_orphaned(max_seconds: float) -> None:
    """Exit the process when stdin reaches EOF (the runner went away) or max_seconds pass."""
    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read1(4096):
                pass
        except (OSError, ValueError):
            pass
        os._exit(0)

    def deadline() -> None:
        sys.stderr.write(f"bench server: {max_seconds:g} s lifetime reached, exiting\n")
        os._exit(0)

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    timer = threading.Timer(max_seconds, deadline)
    timer.daemon = True
    timer.start()
