"""The HTTP API and pages (``tila api``): live state from MQTT, utilisation from the store."""
