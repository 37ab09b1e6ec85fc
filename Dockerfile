# The deployment image: Airflow's official image extended with the project's pinned runtime
# requirements (Airflow documents _PIP_ADDITIONAL_REQUIREMENTS as a quick-test shortcut only).
# dags/, plugins/ and include/ are mounted by docker-compose.yaml, so code changes need no rebuild.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:0 requirements.txt constraints.txt /opt/airflow/project-requirements/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
      -r /opt/airflow/project-requirements/requirements.txt \
      -c /opt/airflow/project-requirements/constraints.txt
