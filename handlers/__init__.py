"""Socket.IO namespaces, one module per domain; each serves raw-WebSocket and Socket.IO clients."""
