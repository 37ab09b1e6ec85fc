"""Local HTTP(S) sandboxes of the Salesforce and HubSpot APIs, spoken to by the real, unpatched clients."""
