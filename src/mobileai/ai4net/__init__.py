"""AI for Network: closed-loop apps (one module or package per use case) and the App protocol."""
