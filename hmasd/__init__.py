"""HMASD: Hierarchical Multi-Agent Skill Discovery."""
