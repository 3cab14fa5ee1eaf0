"""Use cases of the notification service; they depend on store protocols only."""
