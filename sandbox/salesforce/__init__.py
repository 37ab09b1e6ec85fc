"""The Salesforce sandbox. The environment variables below configure the org's link field; they are read
once, when `sandbox.salesforce.schema` is imported (the CLI sets them from its flags first)."""

LINK_FIELD_ENV = "SANDBOX_SALESFORCE_LINK_FIELD"
LINK_ATTRIBUTES_ENV = "SANDBOX_SALESFORCE_LINK_FIELD_ATTRIBUTES"
