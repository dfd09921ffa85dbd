"""What the bench servers and the load tool share: the token secret, the event, the payload."""
from __future__ import annotations

import json
import resource
import subprocess
import time
from datetime import datetime, timezone
from typing import Any

SECRET = "x" * 32  # the bench servers' JWT secret (HS256); never a real key
SUB = "bench"  # every load client is this user, so all of them are in room `user:bench`
ROOM = f"user:{SUB}"
NAMESPACE = "/omni"
EVENT = "NOTIFICACAO_GERAL"
HEARTBEAT = 60.0  # transport ping interval, seconds: the same on every server (see README)


def payload(marker: str) -> dict[str, Any]:
    """The fan-out payload (about 200 bytes); `marker` makes each emit recognisable."""
    return {"tipo": "info", "titulo": "Benchmark", "marca": marker,
            "mensagem": "Notificação de carga para todos os clientes da sala " + "x" * 64,
            "prioridade": "normal"}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def make_token(sub: str = SUB, ttl: float = 6 * 3600) -> str:
    """A token like tests/conftest.py's make_token, signed with SECRET."""
    import jwt
    now = int(time.time())
    claims = {"sub": sub, "scope": "executions notifications monitoring chat investigations",
              "iat": now, "exp": now + int(ttl)}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def raise_nofile() -> int:
    """Raise the open-file soft limit to the hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def stop_process(process: subprocess.Popen[Any]) -> None:
    """End a bench server: close its stdin (it exits on EOF), then terminate, then kill, 10 s each."""
    if process.poll() is not None:
        return
    try:
        assert process.stdin is not None
        process.stdin.close()
    except OSError:
        pass
    for end in (None, process.terminate, process.kill):
        if end is not None:
            end()
        try:
            process.wait(10)
            return
        except subprocess.TimeoutExpired:
            continue
