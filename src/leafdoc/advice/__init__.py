"""What to do about a diagnosis: one knowledge file per label (knowledge/*.toml), validated by `schema`,
read by `knowledge`. Below inference/ and service/ in the layers: imports only errors and pydantic."""

from leafdoc.advice.knowledge import Knowledge, KnowledgeError, advice_route, shipped_knowledge

__all__ = ["Knowledge", "KnowledgeError", "advice_route", "shipped_knowledge"]
