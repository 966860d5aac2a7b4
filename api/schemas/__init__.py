"""Pydantic models of what the API accepts and returns (apart from the ORM models)."""
