"""The app-facing Acrobits web services (Send, Fetch); nothing here knows providers."""
