"""The sync state: last-agreed field values per linked pair and the retry queue, in a real database.

`policy` and `store` import no Airflow (the CLI and the benchmarks use them with a bare SQLAlchemy
URL); `hook` reaches the database through the Airflow connection `crm_sync_state_default`.
"""
