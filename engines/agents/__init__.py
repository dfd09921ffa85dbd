"""Chat agents: one small interface, a router by intent, built-in, OpenAI-compatible and HTTP backends."""
