"""The Redis rate-limit pool shared by every worker and run, and retry arithmetic (no Airflow here)."""

from crm_sync.ratelimit.adapter import RateLimitedAdapter
from crm_sync.ratelimit.backoff import full_jitter, parse_retry_after, retry_delay
from crm_sync.ratelimit.errors import RateLimitBackendError, RateLimitWaitTooLong
from crm_sync.ratelimit.headers import Observation, parse_rate_headers
from crm_sync.ratelimit.limits import DEFAULT_KIND, SEARCH_KIND, Limit, hubspot_limits, salesforce_limits
from crm_sync.ratelimit.pool import Grant, RateLimitPool, WaitStats

__all__ = [
    "DEFAULT_KIND",
    "SEARCH_KIND",
    "Grant",
    "Limit",
    "Observation",
    "RateLimitBackendError",
    "RateLimitPool",
    "RateLimitWaitTooLong",
    "RateLimitedAdapter",
    "WaitStats",
    "full_jitter",
    "hubspot_limits",
    "parse_rate_headers",
    "parse_retry_after",
    "retry_delay",
    "salesforce_limits",
]
