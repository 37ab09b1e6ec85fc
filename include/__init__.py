"""Configuration and pure, Airflow-free logic of the CRM contact sync."""
