"""Both wire transports, and every contact with python-socketio and python-engineio.

- `namespace.py`: what a handler sees (read its docstring first: the whole interface in one page);
- `server.py`: `PonteServer`, python-socketio's server with raw-WebSocket peers as participants, and
  what services see of it (`emit`, `share`/`on_share`, `render_error`);
- `eio.py`: Engine.IO on a WebSocket, read and written by Ponte; long-polling stays python-engineio's;
- `raw.py`: the documented raw-WebSocket endpoints;
- `manager.py`: rooms and fan-out (an emit encoded once per wire format; a big room's raw peers kept in
  lists, `Direct`); `events.py`: an event's arguments, encodings and frames; `redis.py`: the same
  across instances through Redis, publishing; `channels.py`: one Redis channel per room, subscribed while
  an instance has members there; `listener.py`: what an instance hears, and its catch-up after Redis
  came back; `history.py`, `recovery.py`: offsets and connection-state recovery; `writer.py`: bounded
  writes to one WebSocket, and a frame written to many (`write_each`);
- `cluster.py`: per-room fan-out on a Redis Cluster through sharded pub/sub (REDIS_CLUSTER_URL);
- `codecs/`: each protocol's envelope and error message, strict JSON, and the Socket.IO packet grammar.
"""
