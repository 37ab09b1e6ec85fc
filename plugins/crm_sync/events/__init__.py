"""The event-driven path's way in: CRM change events, verified and parsed, on a durable Redis Streams queue.

`queue_names` holds the keys and group every reader shares (the webhook, the Salesforce feed, the trigger and
the event DAG); `queue` is the queue itself; `signature` and `hubspot_payload` are pure; `webhook_app` is the
HubSpot endpoint the plugin mounts on the api-server.
"""
