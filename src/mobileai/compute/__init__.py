"""Compute nodes for Network for AI: devices, edge and cloud, their queues and energy."""
