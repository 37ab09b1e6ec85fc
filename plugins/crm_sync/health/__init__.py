"""The sync-health view's data: run reports, one contact's history, the live pools and the retry queue."""
