"""Hooks owning the Salesforce and HubSpot connections and clients (operators own task behaviour)."""
