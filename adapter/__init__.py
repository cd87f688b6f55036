"""Messaging backend for Acrobits softphone apps (Cloud Softphone, Groundwire)."""

__version__ = "0.1.0"
