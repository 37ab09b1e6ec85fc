"""Operators of the contact sync: each owns one task's behaviour; hooks own the CRM clients."""
