"""Agent layer: the closed loop (guardrails, approvals, audit trail) that turns app decisions
into network actions; later intents, the planner and MCP tools."""
