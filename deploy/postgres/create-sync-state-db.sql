-- Run once by the postgres image on an empty data volume: the sync-state database
-- (connection crm_sync_state_default) lives beside Airflow's metadata database.
CREATE DATABASE crm_sync_state OWNER airflow;
