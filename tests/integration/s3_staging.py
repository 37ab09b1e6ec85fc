"""A bucket on the local S3 server as `[crm_sync] staging_base`, through an Airflow `aws` connection."""

from __future__ import annotations

from dataclasses import dataclass

import boto3

from tests.local_services import aws_connection

CONN_ID = "aws_default"
PREFIX = "staging"


@dataclass(frozen=True)
class S3Staging:
    endpoint: str
    bucket: str

    @classmethod
    def create(cls, endpoint: str, bucket: str) -> S3Staging:
        staging = cls(endpoint, bucket)
        staging.client().create_bucket(Bucket=bucket)
        return staging

    @property
    def base(self) -> str:
        """The staging base URL: the connection id rides in the user part (ObjectStoragePath's convention)."""
        return f"s3://{CONN_ID}@{self.bucket}/{PREFIX}"

    @property
    def env(self) -> dict[str, str]:
        return {"AIRFLOW_CONN_AWS_DEFAULT": aws_connection(self.endpoint), "AIRFLOW__CRM_SYNC__STAGING_BASE": self.base}

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def keys(self) -> list[str]:
        """Every object key in the bucket, below the staging prefix."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{PREFIX}/")
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))
