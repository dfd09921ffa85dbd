"""Domain engines behind the events: keyword executions, contract analysis, chat agents.

Nothing here imports socketio or aiohttp's server: each engine runs and is tested alone.
"""
