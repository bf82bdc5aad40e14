"""MedAlign Desktop: review a local medical LLM's answers and align it with clinicians' judgement, offline."""

__version__ = "0.1.0"
