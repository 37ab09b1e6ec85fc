"""Local HubSpot CRM v3 contacts sandbox (plain HTTP), spoken to by the real hubspot-api-client."""
