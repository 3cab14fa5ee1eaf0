"""The pure model of the notification service: deciding, coalescing, preferences, delivery rules."""
