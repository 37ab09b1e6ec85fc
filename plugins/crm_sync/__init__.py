"""Airflow-facing pieces of the CRM contact sync: hooks, operators and the shared rate-limit pool."""
