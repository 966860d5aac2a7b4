"""Alembic environment and revisions of the state schema (driven by controller.state.migrate)."""
