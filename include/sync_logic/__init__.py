"""Pure decision logic of the contact sync: mapping, normalisation, reconciliation, planning.

Nothing here imports Airflow, so it is unit-testable in plain pytest and cheap to import.
"""
