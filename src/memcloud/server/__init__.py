"""The asyncio side: listeners, connections, flow control, and the process that runs them."""
