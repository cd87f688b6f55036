"""The messaging domain: numbers, routing and message rules."""
